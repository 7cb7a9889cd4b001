// At -lv 4 (which Slotwise passes for the load's placement lines) llama-server lists every prompt of
// its host prompt cache, a line each, once or twice a request, after a "cache state" line
// (tools/server/server-task.cpp server_prompt_cache::update). Its log queue holds LOG_QUEUE_LINES lines
// and blocks the thread that logs once full (common/log.cpp common_log::add), so past that many cached
// prompts each request's listing makes inference wait for the log's reader. The instance (instance.ts)
// says so once per process, with the remedy; the measurements are in daemon/memory/design.md. Only a
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

/** The warning a line of `model`'s llama-server calls for: a "cache state" line reporting `threshold` prompts or more; else undefined. */
export function cacheListingWarningOf(line: string, model: string, threshold = LOG_QUEUE_LINES): string | undefined {
  const prompts = cachedPromptsOf(line);
  return prompts !== undefined && prompts >= threshold ? cacheListingWarning(prompts, model) : undefined;
}

/** The daemon log's warning: what happens, why it costs, and the ways out. */
export function cacheListingWarning(prompts: number, model: string): string {
  return (
    `llama-server's prompt cache holds ${prompts} prompts, and at -lv 4 it logs every one on every request, ` +
    `past its ${LOG_QUEUE_LINES}-line log queue, which slows its requests down. Its next start runs at -lv 3 where ` +
    `the placement this load recorded cannot change (gpuLayers a number or "all", a host with no GPU, or "auto" ` +
    `that put every layer on the host's one GPU, with as much free again: ` +
    `\`slotwise restart ${model}\` starts it now); else ` +
    `add "-lv", "3" to this model's "args" (status then shows no layer placement or buffers), or lower its promptCacheMiB`
  );
}
