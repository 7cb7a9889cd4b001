// Detects a ready llama-server that is alive but frozen (SIGSTOP, a hung GPU, a deadlock): its
// process never exits, so the exit-based crash path never fires and its requests would wait forever.
// Two signs, either one is enough: requests in flight with no progress, or no answer at all (/health,
// /slots, response bytes) for the timeout.
import { setTimeout as sleep } from 'node:timers/promises';
import { getHealth } from './llama-client';
import type { LlamaTarget } from './endpoint';

export interface StallWatchOptions {
  /** The instance's base URL or endpoint (endpoint.ts). */
  target: LlamaTarget;
  /** No progress (or no /health answer) for this long, ms, is a stall. */
  timeoutMs: number;
  /** Ends the watch (the instance left `ready`). */
  signal: AbortSignal;
  /** Requests the daemon has in flight on this instance now. */
  inFlight(): number;
  /** Epoch ms of the last sign of progress: upstream bytes, advancing tokens, a request starting. */
  lastProgressAt(): number;
  /** Called at most once, with a one-line reason. */
  onStall(reason: string): void;
}

export async function watchForStall(opts: StallWatchOptions): Promise<void> {
  const tickMs = Math.max(50, Math.min(1000, Math.floor(opts.timeoutMs / 4)));
  let healthAt = Date.now();
  let probing = false;
  // /health is answered by llama-server's HTTP thread, not its inference loop: a slow generation
  // never delays it, so silence there means the whole process is stuck.
  const probe = async (): Promise<void> => {
    probing = true;
    try {
      const h = await getHealth(opts.target, { timeoutMs: opts.timeoutMs, signal: opts.signal });
      if (h.kind !== 'down') healthAt = Date.now();
    } catch {
      // aborted: the watch is over
    } finally {
      probing = false;
    }
  };
  // Any answer from the process is a sign of life: response bytes and /slots answers (lastProgressAt)
  // need both its HTTP thread and its loop. So /health is asked only after a quiet spell, not every
  // tick: an idle instance's polls answer often enough, and a probe is a connection llama-server accepts.
  const probeAfterMs = Math.max(tickMs, Math.floor(opts.timeoutMs / 4));
  while (!opts.signal.aborted) {
    const aliveAt = Math.max(healthAt, opts.lastProgressAt());
    if (!probing && Date.now() - aliveAt >= probeAfterMs) void probe();
    try {
      await sleep(tickMs, undefined, { signal: opts.signal });
    } catch {
      return; // aborted
    }
    const progressAt = opts.lastProgressAt();
    const reason = stallReason(Date.now(), { healthAt: Math.max(healthAt, progressAt), progressAt, inFlight: opts.inFlight(), timeoutMs: opts.timeoutMs });
    if (reason) {
      opts.onStall(reason);
      return;
    }
  }
}

/** Pure: the stall verdict at `now`, or undefined while the instance counts as alive. */
export function stallReason(now: number, s: { healthAt: number; progressAt: number; inFlight: number; timeoutMs: number }): string | undefined {
  const stuck = s.inFlight > 0 && now - s.progressAt > s.timeoutMs;
  const deaf = now - s.healthAt > s.timeoutMs;
  if (!stuck && !deaf) return undefined;
  // Whichever tripped first, name the requests it strands: that is what the user saw.
  const parts = s.inFlight > 0 ? [`${s.inFlight} request(s) in flight made no progress for ${now - s.progressAt} ms`] : [];
  if (deaf) parts.push(`/health did not answer for ${now - s.healthAt} ms`);
  return parts.join(', ');
}
