// The daemon's own event-loop delay, for /metrics: a 10 ms timer that records how late each tick
// fired. It is the one cheap clock the daemon's thread cannot fake (everything it runs delays it);
// nothing is added per request. `slotwise bench` reads it to measure the daemon in its own process.
import { performance } from 'node:perf_hooks';

/** Period of the timer, ms: what a tick is late by is the delay; an idle loop reads ~0. */
export const LOOP_LAG_PERIOD_MS = 10;

/**
 * Starts the timer; `observe` gets each tick's delay in seconds. Unref'd: it never keeps the process
 * up. Returns a stop function.
 */
export function startLoopLag(observe: (seconds: number) => void, periodMs = LOOP_LAG_PERIOD_MS): () => void {
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    observe(Math.max(0, now - last - periodMs) / 1000);
    last = now;
  }, periodMs);
  timer.unref();
  return () => clearInterval(timer);
}
