// Polls one ready instance's /slots and /metrics on a fixed cadence and reports slots and tokens/s.
// Runs only while the instance is ready. The cadence is deliberately not tied to requests starting
// or ending: the daemon's own slot use is exact from its leases (daemon/scheduler/slot-table.ts),
// and a poll woken at those moments reads every slot idle (it aliases). The poll is for what the
// daemon cannot see: clients talking to llama-server directly, and drift.
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
  /** The replica's key (llama-server's LLAMA_API_KEY). */
  apiKey?: string;
  signal: AbortSignal;
  /** /slots every this many ms. Default 250: a foreign client shows within two polls. */
  intervalMs?: number;
  metricsIntervalMs?: number;
  onResult: (r: ScrapeResult) => void;
  onError: (err: Error) => void;
}

export async function scrapeLoop(opts: ScrapeOptions): Promise<void> {
  const intervalMs = opts.intervalMs ?? 250;
  const metricsMs = opts.metricsIntervalMs ?? 1000;
  let lastMetricsAt = 0;
  let lastTokens: { at: number; total: number } | undefined;
  let tokensPerSecond: number | undefined;
  let requestsDeferred: number | undefined;
  let tokensPredictedTotal: number | undefined;
  while (!opts.signal.aborted) {
    const startedAt = Date.now();
    try {
      const slots = await getSlots(opts.url, { signal: opts.signal, timeoutMs: 3000, apiKey: opts.apiKey });
      const busy = slots.some((s) => s.busy);
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
    try {
      // Start to start, so the cadence stays fixed however long a poll took.
      await sleep(Math.max(0, intervalMs - (Date.now() - startedAt)), undefined, { signal: opts.signal });
    } catch {
      return; // stopped by the caller
    }
  }
}
