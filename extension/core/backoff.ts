// Reconnect delays: exponential growth with jitter so many windows do not reconnect in lockstep.

export interface BackoffOptions {
  /** First delay in ms. Default 250. */
  initialMs?: number;
  /** Cap in ms. Default 10 000. */
  maxMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Fraction of the delay that is random, 0..1. Default 0.5 ("equal jitter"). */
  jitter?: number;
}

/** Delay before reconnect attempt `attempt` (0-based): min(max, initial·factor^attempt), less up to `jitter` of it. */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = opts.initialMs ?? 250;
  const max = opts.maxMs ?? 10_000;
  const factor = opts.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5));
  const base = Math.min(max, initial * factor ** Math.max(0, attempt));
  return Math.round(base * (1 - jitter * random()));
}
