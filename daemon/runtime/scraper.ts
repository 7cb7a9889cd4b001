// Polls one ready instance's /slots and /metrics and reports slots and tokens/s. Runs only while the
// instance is ready. The cadence is deliberately not tied to requests starting or ending: the daemon's
// own slot use is exact from its leases (daemon/scheduler/slot-table.ts), and a poll woken at those
// moments reads every slot idle (it aliases). The poll is for what the daemon cannot see: clients
// talking to llama-server directly, and drift.
//
// While the instance is in use (requests in flight, a busy slot in the last poll, or either within
// IDLE_AFTER_MS) the cadence is `intervalMs`, start to start. Once it has been quiet that long it drops
// to `idleIntervalMs`: each poll is a connection llama-server accepts and a request its loop answers,
// so an idle one was woken 5 times a second for nothing, 6 with the stall watchdog's /health probe
// (with both cut, an idle stand-in upstream went from 5.1 to 0.8 ms of CPU a second on the 2-core VM). A
// request starting (wake()) brings the next poll to at most `intervalMs` away; not to now, so it
// lands mid-request rather than on the dispatch. recheck() is the one poll on demand: queued work
// held back by slots the last poll read busy with no lease (a client of llama-server's own, or a
// stale read of one that has ended) asks whether they are free now, at most every RECHECK_MIN_MS.
import type { SlotStatus } from '../../shared/protocol';
import { getMetrics, getSlots } from './llama-client';
import type { LlamaTarget } from './endpoint';

export interface ScrapeResult {
  slots: SlotStatus[];
  /** Generated tokens/s since the previous metrics scrape, when known. */
  tokensPerSecond?: number;
  /** `llamacpp:tokens_predicted_total`. */
  tokensPredictedTotal?: number;
  /** `llamacpp:requests_deferred`: requests waiting inside llama-server (e.g. sent by someone else). */
  requestsDeferred?: number;
}

export interface ScrapeOptions {
  /** The instance's base URL or endpoint (endpoint.ts). */
  target: LlamaTarget;
  /** The replica's key (llama-server's LLAMA_API_KEY). */
  apiKey?: string;
  signal: AbortSignal;
  /** /slots every this many ms while in use. Default 250: a foreign client shows within two polls. */
  intervalMs?: number;
  /** /slots every this many ms once quiet for `idleAfterMs`. Default IDLE_INTERVAL_MS. */
  idleIntervalMs?: number;
  /** Quiet this long (nothing in flight, no busy slot polled) before the idle cadence. Default IDLE_AFTER_MS. */
  idleAfterMs?: number;
  /** Requests of the daemon's in flight on the instance now. */
  inFlight?: () => number;
  metricsIntervalMs?: number;
  onResult: (r: ScrapeResult) => void;
  onError: (err: Error) => void;
}

/** The idle cadence: a client talking to an idle llama-server directly shows within about two of these. */
export const IDLE_INTERVAL_MS = 2000;
/** Quiet for this long before polls slow down: an editor's completions a few seconds apart keep the fine cadence. */
export const IDLE_AFTER_MS = 10_000;

export interface ScrapeHandle {
  /** Resolves when the loop has stopped (its signal aborted). */
  done: Promise<void>;
  /** A request started: the next poll comes within the active cadence. */
  wake(): void;
  /** Requests wait for slots the last poll read busy: poll now (a poll in flight answers instead), at most every RECHECK_MIN_MS. */
  recheck(): void;
}

/**
 * The least time between two poll starts that recheck() brings about. Under a client of llama-server's
 * own that keeps its slots busy while the daemon's requests wait, rechecks run at this pace (20 polls a
 * second) instead of the active cadence's 4.
 */
export const RECHECK_MIN_MS = 50;

export function scrapeLoop(opts: ScrapeOptions): ScrapeHandle {
  const intervalMs = opts.intervalMs ?? 250;
  const idleIntervalMs = Math.max(intervalMs, opts.idleIntervalMs ?? IDLE_INTERVAL_MS);
  const idleAfterMs = opts.idleAfterMs ?? IDLE_AFTER_MS;
  let activeAt = Date.now(); // a fresh instance is polled finely at first: it was just loaded, likely for use
  // The pending wait between polls: wake() may bring it forward.
  let timer: NodeJS.Timeout | undefined;
  let dueAt = 0;
  let fire: (() => void) | undefined;
  // recheck(): when the last poll started, and an ask that came while a poll was in flight.
  let lastStartAt = -Infinity;
  let recheckAsked = false;
  /** How long until a recheck may start a poll: RECHECK_MIN_MS after the last one started. */
  const recheckDelay = (): number => Math.max(0, lastStartAt + RECHECK_MIN_MS - Date.now());
  const wait = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (opts.signal.aborted) return resolve();
      if (recheckAsked) ms = Math.min(ms, recheckDelay());
      recheckAsked = false;
      const onAbort = (): void => fire?.();
      fire = () => {
        clearTimeout(timer);
        fire = undefined;
        opts.signal.removeEventListener('abort', onAbort);
        resolve();
      };
      opts.signal.addEventListener('abort', onAbort, { once: true });
      dueAt = Date.now() + ms;
      timer = setTimeout(fire, ms);
    });
  /** Brings the pending wait's end forward to `ms` from now (never later); no wait pending: a poll is in flight. */
  const bringForward = (ms: number): void => {
    const now = Date.now();
    if (!fire || dueAt <= now + ms) return;
    clearTimeout(timer);
    dueAt = now + ms;
    timer = setTimeout(fire, ms);
  };
  const wake = (): void => {
    activeAt = Date.now();
    bringForward(intervalMs);
  };
  // Asked while a poll is in flight: that poll may have read the slots before they freed, so the next
  // one comes at the recheck pace too.
  const recheck = (): void => {
    if (fire) bringForward(recheckDelay());
    else recheckAsked = true;
  };
  const cadence = (busy: boolean): number => {
    const now = Date.now();
    if (busy || (opts.inFlight?.() ?? 0) > 0) activeAt = now;
    return now - activeAt >= idleAfterMs ? idleIntervalMs : intervalMs;
  };
  const done = poll(opts, cadence, wait, (at) => (lastStartAt = at));
  return { done, wake, recheck };
}

/** The poll loop; `next(busy)` says the cadence after a poll that saw (or not) a busy slot. */
async function poll(opts: ScrapeOptions, next: (busy: boolean) => number, wait: (ms: number) => Promise<void>, started: (at: number) => void): Promise<void> {
  const metricsMs = opts.metricsIntervalMs ?? 1000;
  let lastMetricsAt = 0;
  let lastTokens: { at: number; total: number } | undefined;
  let tokensPerSecond: number | undefined;
  let requestsDeferred: number | undefined;
  let tokensPredictedTotal: number | undefined;
  while (!opts.signal.aborted) {
    const startedAt = Date.now();
    started(startedAt);
    let cadence: number;
    try {
      const slots = await getSlots(opts.target, { signal: opts.signal, timeoutMs: 3000, apiKey: opts.apiKey });
      const busy = slots.some((s) => s.busy);
      const now = Date.now();
      if (now - lastMetricsAt >= metricsMs) {
        lastMetricsAt = now;
        const m = await getMetrics(opts.target, { signal: opts.signal, timeoutMs: 3000, apiKey: opts.apiKey });
        const total = m.get('tokens_predicted_total');
        requestsDeferred = m.get('requests_deferred');
        if (total !== undefined) {
          if (lastTokens && now > lastTokens.at) tokensPerSecond = ((total - lastTokens.total) * 1000) / (now - lastTokens.at);
          lastTokens = { at: now, total };
          tokensPredictedTotal = total;
        }
      }
      if (!busy && tokensPerSecond !== undefined && lastTokens && now - lastTokens.at > 2 * metricsMs) tokensPerSecond = 0;
      opts.onResult({ slots, tokensPerSecond, tokensPredictedTotal, requestsDeferred });
      cadence = next(busy);
    } catch (err) {
      if (opts.signal.aborted) return;
      opts.onError(err as Error);
      cadence = next(false); // a failing instance is no busier for it; the exit handler reports a dead one
    }
    // Start to start, so the cadence stays fixed however long a poll took.
    await wait(Math.max(0, cadence - (Date.now() - startedAt)));
  }
}
