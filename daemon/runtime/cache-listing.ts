// At -lv 4 (which Slotwise passes for the load's placement lines) llama-server lists every prompt of
// its host prompt cache, a line each, once or twice a request, after a "cache state" line
// (tools/server/server-task.cpp server_prompt_cache::update). Its log queue holds LOG_QUEUE_LINES lines
// and blocks the thread that logs once full (common/log.cpp common_log::add), so past that many cached
// prompts each request's listing makes inference wait for the log's reader. The instance (instance.ts)
// relaunches it at -lv 3 once the placement is recorded (RELAUNCH_AT_PROMPTS), or, where that cannot help,
// says so once per process with the remedy; the measurements are in daemon/memory/design.md. Only a
// process at -lv 4 lists: a first load, or one whose placement llama-server fits anew (memory/calibration.ts recordedPlacement).

/** The capacity of llama-server's log queue (common/log.cpp, common_log's default). */
export const LOG_QUEUE_LINES = 512;

const CACHE_STATE = / - cache state: (\d+) prompts,/;

/** The number of prompts a "cache state" line of llama-server reports; undefined for any other line. */
export function cachedPromptsOf(line: string): number | undefined {
  if (!line.includes(' - cache state: ')) return undefined; // most lines: no regex
  const m = CACHE_STATE.exec(line);
  return m ? Number(m[1]) : undefined;
}

/**
 * Cached prompts at which a `-lv 4` process whose placement an earlier load recorded is relaunched at
 * `-lv 3` (instance.ts): half the log queue. Only many short prompts fill a cache this far (its size
 * is slot contexts' worth of tokens, memory/prompt-cache.ts), so the model is one that reloads fast,
 * while each request's listing already costs it hundreds of lines.
 */
export const RELAUNCH_AT_PROMPTS = LOG_QUEUE_LINES / 2;

/** Why a process that lists its cache stays at -lv 4: the user's args chose the verbosity, or its placement may differ at the next start. */
export type ListingKept = 'args' | 'placement';

/** The daemon log's warning: what happens, why it costs, and the ways out. */
export function cacheListingWarning(prompts: number, kept: ListingKept): string {
  const cost =
    `llama-server's prompt cache holds ${prompts} prompts, and at -lv 4 it logs every one on every request, ` +
    `past its ${LOG_QUEUE_LINES}-line log queue, which slows its requests down`;
  if (kept === 'args') return `${cost}: this model's "args" set its log verbosity; drop that (Slotwise runs it at -lv 3 once a load recorded its placement) or lower its promptCacheMiB`;
  return (
    `${cost}: its placement may differ at the next start (gpuLayers "auto" on a GPU whose free memory differs), so a restart would ` +
    `list again; add "-lv", "3" to this model's "args" (status then shows no layer placement or buffers), or lower its promptCacheMiB`
  );
}
