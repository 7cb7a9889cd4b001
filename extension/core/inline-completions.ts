// Inline code completions from the daemon's POST /infill, without `vscode`: the text window around the
// cursor, the request body, which model to use, and the per-editor request loop (debounce, then one
// request; a newer request for the same editor aborts the older one, newest wins).
import type { Snapshot } from '../../shared/protocol';
import type { Endpoint } from './endpoint';

export interface CompletionSettings {
  enabled: boolean;
  /** Empty: the first model that can infill. */
  model: string;
  debounceMs: number;
  maxTokens: number;
}

/** Lines of context sent before and after the cursor: enough for local structure, small enough to prefill fast. */
export const PREFIX_LINES = 64;
export const SUFFIX_LINES = 16;

export interface Position {
  line: number;
  character: number;
}

/** The document as the window needs it (vscode's TextDocument fits). */
export interface LinesLike {
  lineCount: number;
  lineAt(line: number): { text: string };
}

export interface InfillWindow {
  /** Up to `prefixLines` lines before the cursor line, plus that line up to the cursor. */
  prefix: string;
  /** The cursor line after the cursor, plus up to `suffixLines` lines after it. */
  suffix: string;
}

export function infillWindow(doc: LinesLike, pos: Position, prefixLines = PREFIX_LINES, suffixLines = SUFFIX_LINES): InfillWindow {
  const cur = doc.lineAt(pos.line).text;
  const before: string[] = [];
  for (let i = Math.max(0, pos.line - prefixLines); i < pos.line; i++) before.push(doc.lineAt(i).text);
  before.push(cur.slice(0, pos.character));
  const after = [cur.slice(pos.character)];
  for (let i = pos.line + 1; i < Math.min(doc.lineCount, pos.line + 1 + suffixLines); i++) after.push(doc.lineAt(i).text);
  return { prefix: before.join('\n'), suffix: after.join('\n') };
}

/** The /infill body: non-streaming, `n_predict` capped; the slot's prompt cache makes the next keystroke's request cheap. */
export function infillBody(model: string, w: InfillWindow, maxTokens: number): Record<string, unknown> {
  return { model, input_prefix: w.prefix, input_suffix: w.suffix, n_predict: maxTokens, stream: false, cache_prompt: true };
}

/** The configured model, else the first model that can fill in the middle (a completion model with FIM tokens). */
export function pickCompletionModel(snap: Snapshot | undefined, configured: string): string | undefined {
  if (configured) return configured;
  return snap?.models.find((m) => m.info?.canInfill === true && (m.kind ?? 'completion') === 'completion')?.name;
}

/** The status bar's marker and tooltip line while completions are on. */
export function completionsBadge(settings: CompletionSettings, model: string | undefined): { text: string; tooltip: string } | undefined {
  if (!settings.enabled) return undefined;
  return {
    text: '$(sparkle)',
    tooltip: model
      ? `$(sparkle) Inline completions: on, model **${model}** — **Slotwise: Toggle Inline Completions** turns them off`
      : '$(sparkle) Inline completions: on, but no model can fill in the middle — set `slotwise.completions.model`',
  };
}

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal }) => Promise<{
  ok: boolean;
  status: number;
  json(): Promise<unknown>;
  text(): Promise<string>;
}>;

export interface CompleterOptions {
  fetch: FetchLike;
  endpoint: () => Endpoint | undefined;
  settings: () => CompletionSettings;
  model: () => string | undefined;
  /** Failed requests (not cancellations) go here. */
  onError?: (message: string) => void;
}

/** What one completion needs: the editor it is for (newest wins per editor) and the text around the cursor. */
export interface CompletionRequest {
  /** The document URI: requests for the same key supersede each other; also sent as X-Slotwise-Session. */
  session: string;
  window: InfillWindow;
  /** The caller's cancellation (vscode's CancellationToken, adapted). */
  signal?: AbortSignal;
}

export class InlineCompleter {
  #opts: CompleterOptions;
  /** The request in flight (or debouncing) per session. */
  #inFlight = new Map<string, AbortController>();

  constructor(opts: CompleterOptions) {
    this.#opts = opts;
  }

  /** Sessions with a request debouncing or in flight. */
  get pending(): number {
    return this.#inFlight.size;
  }

  /** The completion text, or undefined when off, superseded, cancelled, or the request failed. */
  async complete(req: CompletionRequest): Promise<string | undefined> {
    const settings = this.#opts.settings();
    if (!settings.enabled) return undefined;
    this.#inFlight.get(req.session)?.abort();
    const ctl = new AbortController();
    this.#inFlight.set(req.session, ctl);
    const onOuterAbort = (): void => ctl.abort();
    if (req.signal?.aborted) ctl.abort();
    req.signal?.addEventListener('abort', onOuterAbort, { once: true });
    try {
      // Typing fast: each keystroke restarts the wait, so only the pause sends a request.
      if (!(await delay(settings.debounceMs, ctl.signal))) return undefined;
      const ep = this.#opts.endpoint();
      const model = this.#opts.model();
      if (!ep || !model) return undefined;
      const res = await this.#opts.fetch(`${ep.url}/infill`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${ep.token}`, 'Content-Type': 'application/json', 'X-Slotwise-Session': req.session },
        body: JSON.stringify(infillBody(model, req.window, settings.maxTokens)),
        signal: ctl.signal,
      });
      // 409: the daemon dropped it for a newer request of this session (another window on the same file): expected, not an error.
      if (res.status === 409) return undefined;
      if (!res.ok) {
        this.#opts.onError?.(`/infill answered ${res.status}: ${errorMessage(await res.text())}`);
        return undefined;
      }
      const body = (await res.json()) as { content?: unknown };
      if (ctl.signal.aborted) return undefined;
      return typeof body.content === 'string' && body.content !== '' ? body.content : undefined;
    } catch (err) {
      if (!ctl.signal.aborted) this.#opts.onError?.(`/infill failed: ${(err as Error).message}`);
      return undefined;
    } finally {
      req.signal?.removeEventListener('abort', onOuterAbort);
      if (this.#inFlight.get(req.session) === ctl) this.#inFlight.delete(req.session);
    }
  }

  /** Aborts every pending request (completions turned off, extension deactivated). */
  cancelAll(): void {
    for (const ctl of this.#inFlight.values()) ctl.abort();
    this.#inFlight.clear();
  }
}

/** Resolves true after `ms`, false at once when aborted first. */
function delay(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The daemon's `{error: {code, message}}` as "CODE: message", else the text's first 200 characters. */
function errorMessage(text: string): string {
  try {
    const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
    if (e?.message) return e.code ? `${e.code}: ${e.message}` : e.message;
  } catch {
    // not JSON: show it as it came
  }
  return text.slice(0, 200);
}
