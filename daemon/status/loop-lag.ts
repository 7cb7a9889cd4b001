// The daemon's own event-loop delay, for /metrics: a 10 ms timer that records how late each tick
// fired. It is the one cheap clock the daemon's thread cannot fake (everything it runs delays it);
// nothing is added per request. `slotwise bench` reads it to measure the daemon in its own process.
//
// The timer runs only while the daemon has work (a request running or waiting) and for a short
// linger after: a 10 ms timer that ran all the time woke an idle daemon 100 times a second, and
// that was about a third of its idle CPU (5 of 15 ms a second on the 2-core test VM). An idle loop's
// delay is ~0 and delays nothing anyone waits on, so an idle daemon records no ticks.

/** Period of the timer, ms: what a tick is late by is the delay; an idle loop reads ~0. */
export const LOOP_LAG_PERIOD_MS = 10;
/** How long the timer keeps running once there is no work, ms: a gap between requests keeps it going. */
export const LOOP_LAG_LINGER_MS = 5_000;

export interface LoopLagOptions {
  /** Whether the daemon has work now; checked at each tick. */
  active: () => boolean;
  periodMs?: number;
  lingerMs?: number;
}

export interface LoopLag {
  /** Work may have begun: starts the timer if there is work and it does not run. Cheap enough to call on every scheduler event. */
  wake(): void;
  /** Whether the timer runs now. */
  readonly running: boolean;
  /** For good: a later wake() does nothing (the daemon is closing). */
  stop(): void;
}

/**
 * `observe` gets each tick's delay in seconds while the timer runs. The timer is unref'd: it never
 * keeps the process up. It starts on a `wake()` that finds work (and at once when there is work
 * already) and stops itself after `lingerMs` of ticks that found none.
 */
export function startLoopLag(observe: (seconds: number) => void, opts: LoopLagOptions): LoopLag {
  const periodMs = opts.periodMs ?? LOOP_LAG_PERIOD_MS;
  const lingerMs = opts.lingerMs ?? LOOP_LAG_LINGER_MS;
  let timer: NodeJS.Timeout | undefined;
  let last = 0;
  let idleSince: number | undefined;
  let stopped = false;
  const halt = (): void => {
    clearInterval(timer);
    timer = undefined;
  };
  const tick = (): void => {
    const now = performance.now();
    observe(Math.max(0, now - last - periodMs) / 1000);
    last = now;
    if (opts.active()) idleSince = undefined;
    else if (idleSince === undefined) idleSince = now;
    else if (now - idleSince >= lingerMs) halt();
  };
  const wake = (): void => {
    if (timer || stopped || !opts.active()) return; // an event without work (a model became ready) starts no linger
    // Measured from now: the idle time before is not a delay.
    last = performance.now();
    idleSince = undefined;
    timer = setInterval(tick, periodMs);
    timer.unref();
  };
  wake();
  return {
    wake,
    get running() {
      return timer !== undefined;
    },
    stop() {
      stopped = true;
      halt();
    },
  };
}
