// Polls one ready instance's /slots (250 ms while a slot is busy, 1 s when idle) and /metrics
// (every second) and reports slots and tokens/s. Runs only while the instance is ready.
import { setTimeout as sleep } from 'node:timers/promises';
import type { SlotStatus } from '../../shared/protocol';
import { getMetrics, getSlots } from './llama-client';

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
  url: string;
  apiKey?: string;
  signal: AbortSignal;
  busyIntervalMs?: number;
  idleIntervalMs?: number;
  metricsIntervalMs?: number;
  onResult: (r: ScrapeResult) => void;
  onError: (err: Error) => void;
  /** Lets the scheduler ask for an immediate poll (e.g. right after it dispatched or a request ended). */
  wake?: { on(listener: () => void): () => void };
}

export async function scrapeLoop(opts: ScrapeOptions): Promise<void> {
  const busyMs = opts.busyIntervalMs ?? 250;
  const idleMs = opts.idleIntervalMs ?? 1000;
  const metricsMs = opts.metricsIntervalMs ?? 1000;
  let lastMetricsAt = 0;
  let lastTokens: { at: number; total: number } | undefined;
  let tokensPerSecond: number | undefined;
  let requestsDeferred: number | undefined;
  let tokensPredictedTotal: number | undefined;
  let wakeUp: (() => void) | undefined;
  const unsubscribe = opts.wake?.on(() => wakeUp?.());
  try {
    while (!opts.signal.aborted) {
      let busy = false;
      try {
        const slots = await getSlots(opts.url, { signal: opts.signal, timeoutMs: 3000, apiKey: opts.apiKey });
        busy = slots.some((s) => s.busy);
        const now = Date.now();
        if (now - lastMetricsAt >= metricsMs) {
          lastMetricsAt = now;
          const m = await getMetrics(opts.url, { signal: opts.signal, timeoutMs: 3000, apiKey: opts.apiKey });
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
      } catch (err) {
        if (opts.signal.aborted) return;
        opts.onError(err as Error);
      }
      const wait = new AbortController();
      wakeUp = () => wait.abort();
      const onAbort = (): void => wait.abort();
      opts.signal.addEventListener('abort', onAbort, { once: true });
      try {
        await sleep(busy ? busyMs : idleMs, undefined, { signal: wait.signal });
      } catch {
        // woken early by the scheduler or stopped by the caller; the loop condition decides which
      } finally {
        opts.signal.removeEventListener('abort', onAbort);
        wakeUp = undefined;
      }
    }
  } finally {
    unsubscribe?.();
  }
}
