// The daemon's event-loop lag on /metrics, as the bench reads it: the histogram's quantiles over a
// window (the difference of two scrapes) and the largest delay since the previous scrape.
import { describe, expect, it } from 'vitest';
import { lagQuantileMs, parseLag } from '../../bench/daemon-lag';
import { MetricsRegistry } from '../../daemon/status/metrics';
import type { Snapshot } from '../../shared/protocol';

const EMPTY: Snapshot = {
  protocol: 1,
  version: '0.1.0',
  daemon: { pid: 1, uptimeMs: 1, url: 'http://127.0.0.1:1' },
  models: [],
  gpus: [],
  capacity: { busySlots: 0, totalSlots: 0, queued: 0, headroomSlots: 0, verdict: 'idle', reason: '' },
  warnings: [],
};

describe('event-loop lag on /metrics, read by the bench', () => {
  it('exposes a cumulative histogram and the max since the previous scrape; quantiles come from the window only', async () => {
    const metrics = new MetricsRegistry();
    // Before the window: a startup stall the window must not count.
    metrics.observeLoopLag(2);
    const first = parseLag(await metrics.render(EMPTY))!;
    expect(first.maxSeconds).toBe(2);
    // The window: 98 ticks at 1 ms late, one at 18 ms, one at 40 ms.
    for (let i = 0; i < 98; i++) metrics.observeLoopLag(0.001);
    metrics.observeLoopLag(0.018);
    metrics.observeLoopLag(0.04);
    metrics.observeLoopLag(Number.NaN); // ignored
    const last = parseLag(await metrics.render(EMPTY))!;
    expect(last.maxSeconds).toBe(0.04); // the 2 s stall was before the previous scrape
    expect(last.buckets.at(-1)).toEqual({ le: Infinity, count: 101 });
    expect(lagQuantileMs(first, last, 0.5)).toBeCloseTo(0.5 + 0.5 * (50 / 98), 5); // inside the 0.5..1 ms bucket
    expect(lagQuantileMs(first, last, 0.99)).toBeCloseTo(15 + 5 * (1 / 1), 5); // the 99th tick is the 18 ms one: 15..20 ms bucket
    expect(lagQuantileMs(first, last, 1)).toBeCloseTo(40, 5); // 30..40 ms bucket, at its bound
    // A quiet window reads 0 and its max is reset.
    const quiet = parseLag(await metrics.render(EMPTY))!;
    expect(quiet.maxSeconds).toBe(0);
    expect(lagQuantileMs(last, quiet, 0.99)).toBe(0);
  });

  it('reads nothing from a /metrics without the lag series (an older daemon)', () => {
    expect(parseLag('# HELP x y\nslotwise_slots_total{model="a",instance="a#1"} 4\n')).toBeUndefined();
  });
});
