// The loop-lag timer runs only while the daemon has work (daemon/status/loop-lag.ts): an idle
// daemon must not wake 100 times a second, and a busy one must be measured.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startLoopLag } from '../../daemon/status/loop-lag';

describe('startLoopLag', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('takes no ticks while there is no work, and ticks once woken', () => {
    let busy = false;
    const seen: number[] = [];
    const lag = startLoopLag((s) => seen.push(s), { active: () => busy, periodMs: 10, lingerMs: 100 });
    vi.advanceTimersByTime(1_000);
    expect(lag.running).toBe(false);
    expect(seen).toEqual([]);
    lag.wake(); // an event without work (a model became ready): no timer, no linger
    expect(lag.running).toBe(false);
    busy = true;
    lag.wake();
    expect(lag.running).toBe(true);
    vi.advanceTimersByTime(50);
    expect(seen.length).toBe(5);
    // The second before the wake was idle, not late: the first tick reads no delay.
    expect(seen[0]).toBe(0);
    lag.stop();
  });

  it('keeps ticking while there is work and stops itself a linger after the work ended', () => {
    let busy = true;
    const seen: number[] = [];
    const lag = startLoopLag((s) => seen.push(s), { active: () => busy, periodMs: 10, lingerMs: 100 });
    expect(lag.running).toBe(true); // work already there at start
    vi.advanceTimersByTime(1_000);
    expect(lag.running).toBe(true);
    expect(seen.length).toBe(100);
    busy = false;
    vi.advanceTimersByTime(90);
    expect(lag.running).toBe(true); // a gap between requests keeps it going
    vi.advanceTimersByTime(30);
    expect(lag.running).toBe(false);
    const ticks = seen.length;
    vi.advanceTimersByTime(1_000);
    expect(seen.length).toBe(ticks);
    lag.stop();
  });

  it('work that comes back within the linger resets it', () => {
    let busy = true;
    const lag = startLoopLag(() => {}, { active: () => busy, periodMs: 10, lingerMs: 100 });
    busy = false;
    vi.advanceTimersByTime(80);
    busy = true;
    vi.advanceTimersByTime(20);
    busy = false;
    vi.advanceTimersByTime(80);
    expect(lag.running).toBe(true); // 80 ms idle since the work ended, under the linger
    vi.advanceTimersByTime(40);
    expect(lag.running).toBe(false);
    lag.stop();
  });

  it('reports how late a tick fired (real clock)', async () => {
    vi.useRealTimers();
    const seen: number[] = [];
    const lag = startLoopLag((s) => seen.push(s), { active: () => true, periodMs: 10 });
    await sleep(25);
    const end = performance.now() + 40;
    while (performance.now() < end) {
      // the daemon's thread busy for 40 ms: the tick due meanwhile fires at least 30 ms late
    }
    await sleep(25);
    lag.stop();
    expect(Math.max(...seen)).toBeGreaterThanOrEqual(0.025);
  });

  it('stays stopped after stop(): a late scheduler event does not restart it', () => {
    const seen: number[] = [];
    const lag = startLoopLag((s) => seen.push(s), { active: () => true, periodMs: 10 });
    lag.stop();
    lag.wake();
    vi.advanceTimersByTime(100);
    expect(lag.running).toBe(false);
    expect(seen).toEqual([]);
  });
});
