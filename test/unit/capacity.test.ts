import { describe, expect, it } from 'vitest';
import { CapacityWindow, judge, type CapacitySample, type JudgeOptions } from '../../daemon/status/capacity';
import type { Capacity } from '../../shared/protocol';

const NOW = 1_000_000;

function sample(over: Partial<CapacitySample> = {}): CapacitySample {
  return { at: NOW, busySlots: 0, totalSlots: 4, queued: 0, oldestWaitMs: 0, readyInstances: 1, wantedInstances: 1, ...over };
}

/** One sample per second over [from, to] (ms before NOW), all with the same fields. */
function series(fromAgoMs: number, toAgoMs: number, over: Partial<CapacitySample>): CapacitySample[] {
  const out: CapacitySample[] = [];
  for (let ago = fromAgoMs; ago >= toAgoMs; ago -= 1_000) out.push(sample({ ...over, at: NOW - ago }));
  return out;
}

describe('judge: one sample', () => {
  it.each<{ name: string; s: Partial<CapacitySample>; want: Capacity }>([
    {
      name: "seed: 8 slots, 3 busy, GPU 95% → ok, 5 free, GPU is no reason to scale",
      s: { totalSlots: 8, busySlots: 3, gpuUtilPct: 95 },
      want: {
        busySlots: 3, totalSlots: 8, queued: 0, headroomSlots: 5, verdict: 'ok',
        reason: 'GPU at 95% but 5 of 8 slots free: room for 5 more requests, no need to scale',
      },
    },
    {
      name: '4 slots, 1 busy, GPU 96% → ok',
      s: { busySlots: 1, gpuUtilPct: 96 },
      want: {
        busySlots: 1, totalSlots: 4, queued: 0, headroomSlots: 3, verdict: 'ok',
        reason: 'GPU at 96% but 3 of 4 slots free: room for 3 more requests, no need to scale',
      },
    },
    {
      name: '2 of 8 busy, GPU unknown → ok',
      s: { totalSlots: 8, busySlots: 2 },
      want: { busySlots: 2, totalSlots: 8, queued: 0, headroomSlots: 6, verdict: 'ok', reason: '2 of 8 slots busy: room for 6 more requests' },
    },
    {
      name: 'GPU below 80% is not mentioned',
      s: { totalSlots: 8, busySlots: 2, gpuUtilPct: 79 },
      want: { busySlots: 2, totalSlots: 8, queued: 0, headroomSlots: 6, verdict: 'ok', reason: '2 of 8 slots busy: room for 6 more requests' },
    },
    {
      name: '4 of 4 busy, queue waiting 5 s → saturated',
      s: { busySlots: 4, queued: 6, oldestWaitMs: 5_000 },
      want: {
        busySlots: 4, totalSlots: 4, queued: 6, headroomSlots: 0, verdict: 'saturated',
        reason: 'All 4 slots busy and 6 requests waiting (oldest 5 s): add replicas or slots',
      },
    },
    {
      name: 'saturated: oldest wait shown to 0.1 s',
      s: { busySlots: 4, queued: 6, oldestWaitMs: 3_240 },
      want: {
        busySlots: 4, totalSlots: 4, queued: 6, headroomSlots: 0, verdict: 'saturated',
        reason: 'All 4 slots busy and 6 requests waiting (oldest 3.2 s): add replicas or slots',
      },
    },
    {
      name: 'saturated with GPU memory known → says how much is free',
      s: { busySlots: 4, queued: 1, oldestWaitMs: 12_400, gpuMemFreeMiB: 9_318 },
      want: {
        busySlots: 4, totalSlots: 4, queued: 1, headroomSlots: 0, verdict: 'saturated',
        reason: 'All 4 slots busy and 1 request waiting (oldest 12 s): add replicas or slots (9.1 GiB GPU memory free)',
      },
    },
    {
      name: 'saturated while a replica is missing → says so instead of "add replicas"',
      s: { busySlots: 4, queued: 2, oldestWaitMs: 4_000, readyInstances: 1, wantedInstances: 2 },
      want: {
        busySlots: 4, totalSlots: 4, queued: 2, headroomSlots: 0, verdict: 'saturated',
        reason: 'All 4 slots busy and 2 requests waiting (oldest 4 s): only 1 of 2 instances ready',
      },
    },
    {
      name: 'boundary: oldest wait exactly 2 s → saturated',
      s: { busySlots: 4, queued: 1, oldestWaitMs: 2_000 },
      want: {
        busySlots: 4, totalSlots: 4, queued: 1, headroomSlots: 0, verdict: 'saturated',
        reason: 'All 4 slots busy and 1 request waiting (oldest 2 s): add replicas or slots',
      },
    },
    {
      name: 'boundary: oldest wait 1.999 s → busy',
      s: { busySlots: 4, queued: 1, oldestWaitMs: 1_999 },
      want: { busySlots: 4, totalSlots: 4, queued: 1, headroomSlots: 0, verdict: 'busy', reason: 'All 4 slots busy and 1 request waiting (oldest 2 s)' },
    },
    {
      name: 'boundary: GPU exactly 80% is mentioned',
      s: { totalSlots: 8, busySlots: 2, gpuUtilPct: 80 },
      want: {
        busySlots: 2, totalSlots: 8, queued: 0, headroomSlots: 6, verdict: 'ok',
        reason: 'GPU at 80% but 6 of 8 slots free: room for 6 more requests, no need to scale',
      },
    },
    {
      name: '4 of 4 busy, no queue → busy',
      s: { busySlots: 4 },
      want: { busySlots: 4, totalSlots: 4, queued: 0, headroomSlots: 0, verdict: 'busy', reason: 'All 4 slots busy: new requests will queue' },
    },
    {
      name: '4 of 4 busy, short wait (under 2 s) → busy, not saturated',
      s: { busySlots: 4, queued: 2, oldestWaitMs: 800 },
      want: { busySlots: 4, totalSlots: 4, queued: 2, headroomSlots: 0, verdict: 'busy', reason: 'All 4 slots busy and 2 requests waiting (oldest 0.8 s)' },
    },
    {
      name: '3 of 4 busy (75%) → busy, singular',
      s: { busySlots: 3 },
      want: { busySlots: 3, totalSlots: 4, queued: 0, headroomSlots: 1, verdict: 'busy', reason: '3 of 4 slots busy: room for 1 more request' },
    },
    {
      name: '3 of 4 busy, GPU 97% → busy, GPU noted',
      s: { busySlots: 3, gpuUtilPct: 97 },
      want: { busySlots: 3, totalSlots: 4, queued: 0, headroomSlots: 1, verdict: 'busy', reason: '3 of 4 slots busy (GPU at 97%): room for 1 more request' },
    },
    {
      name: 'queue while slots are free (transient) → busy, headroom minus queued',
      s: { busySlots: 2, queued: 1, oldestWaitMs: 100 },
      want: { busySlots: 2, totalSlots: 4, queued: 1, headroomSlots: 1, verdict: 'busy', reason: '2 of 4 slots busy and 1 request waiting (oldest 0.1 s)' },
    },
    {
      name: 'headroom floors at 0',
      s: { busySlots: 3, queued: 5, oldestWaitMs: 100 },
      want: { busySlots: 3, totalSlots: 4, queued: 5, headroomSlots: 0, verdict: 'busy', reason: '3 of 4 slots busy and 5 requests waiting (oldest 0.1 s)' },
    },
    {
      name: 'one of two replicas ready → noted',
      s: { busySlots: 1, readyInstances: 1, wantedInstances: 2 },
      want: { busySlots: 1, totalSlots: 4, queued: 0, headroomSlots: 3, verdict: 'ok', reason: '1 of 4 slots busy: room for 3 more requests; 1 of 2 instances ready' },
    },
    {
      name: 'no instance ready → down',
      s: { totalSlots: 0, readyInstances: 0, wantedInstances: 1 },
      want: { busySlots: 0, totalSlots: 0, queued: 0, headroomSlots: 0, verdict: 'down', reason: 'No instance ready (0 of 1 wanted)' },
    },
    {
      name: 'no instance ready with requests waiting → down, says who waits',
      s: { totalSlots: 0, readyInstances: 0, wantedInstances: 2, queued: 3, oldestWaitMs: 1_500 },
      want: {
        busySlots: 0, totalSlots: 0, queued: 3, headroomSlots: 0, verdict: 'down',
        reason: 'No instance ready (0 of 2 wanted): 3 requests waiting (oldest 1.5 s)',
      },
    },
    {
      name: 'nothing wanted, nothing waiting → idle',
      s: { totalSlots: 0, readyInstances: 0, wantedInstances: 0 },
      want: { busySlots: 0, totalSlots: 0, queued: 0, headroomSlots: 0, verdict: 'idle', reason: 'No model is running' },
    },
    {
      name: 'nothing wanted but requests waiting → down',
      s: { totalSlots: 0, readyInstances: 0, wantedInstances: 0, queued: 1, oldestWaitMs: 200 },
      want: { busySlots: 0, totalSlots: 0, queued: 1, headroomSlots: 0, verdict: 'down', reason: 'No instance running: 1 request waiting (oldest 0.2 s)' },
    },
  ])('$name', ({ s, want }) => {
    expect(judge([sample(s)], NOW)).toEqual(want);
  });
});

describe('judge: GPU utilization never makes free slots saturated', () => {
  const cases = [0, 50, 80, 95, 100].flatMap((gpuUtilPct) =>
    [0, 1, 2, 3].map((busySlots) => ({ gpuUtilPct, busySlots })),
  );
  it.each(cases)('GPU $gpuUtilPct%, $busySlots of 4 busy', ({ gpuUtilPct, busySlots }) => {
    const samples = series(60_000, 0, { busySlots, gpuUtilPct, gpuMemFreeMiB: 10 });
    const { verdict, headroomSlots } = judge(samples, NOW);
    expect(verdict).not.toBe('saturated');
    expect(headroomSlots).toBe(4 - busySlots);
  });
});

describe('judge: over the window', () => {
  it.each<{ name: string; samples: CapacitySample[]; options?: JudgeOptions; verdict: Capacity['verdict']; reason?: string }>([
    {
      name: 'quiet for the whole window → idle',
      samples: series(70_000, 0, {}),
      verdict: 'idle',
      reason: 'No requests in the last 60 s',
    },
    {
      name: 'old spike outside the window does not count',
      samples: [...series(120_000, 90_000, { busySlots: 4, queued: 9, oldestWaitMs: 20_000 }), ...series(89_000, 0, {})],
      verdict: 'idle',
      reason: 'No requests in the last 60 s',
    },
    {
      name: 'daemon up for 12 s, quiet → idle over what was seen',
      samples: series(12_000, 0, {}),
      verdict: 'idle',
      reason: 'No requests in the last 12 s',
    },
    {
      name: 'single quiet sample → idle right now',
      samples: [sample()],
      verdict: 'idle',
      reason: 'No requests right now',
    },
    {
      name: 'idle with a hot GPU → says the load is not from these slots',
      samples: series(60_000, 0, { gpuUtilPct: 92 }),
      verdict: 'idle',
      reason: 'No requests in the last 60 s, yet GPU at 92%: that load is not from these slots',
    },
    {
      name: 'activity earlier in the window, quiet now → ok, not idle',
      samples: [...series(50_000, 40_000, { busySlots: 2 }), ...series(39_000, 0, {})],
      verdict: 'ok',
      reason: '0 of 4 slots busy: room for 4 more requests',
    },
    {
      name: 'a queue earlier in the window, quiet now → ok, not idle',
      samples: [sample({ at: NOW - 30_000, queued: 1, oldestWaitMs: 50 }), sample()],
      verdict: 'ok',
    },
    {
      name: 'sustained: all busy with a queue for the last 10 s → saturated',
      samples: [...series(60_000, 11_000, { busySlots: 1 }), ...series(10_000, 0, { busySlots: 4, queued: 3, oldestWaitMs: 6_000 })],
      verdict: 'saturated',
    },
    {
      name: 'not sustained: pressure for 2 of the last 10 s → busy',
      samples: [...series(60_000, 3_000, { busySlots: 2 }), ...series(2_000, 0, { busySlots: 4, queued: 3, oldestWaitMs: 2_500 })],
      verdict: 'busy',
    },
    {
      name: 'pressure for exactly half of the last 10 s → saturated',
      samples: [...series(60_000, 6_000, { busySlots: 2 }), ...series(5_000, 0, { busySlots: 4, queued: 3, oldestWaitMs: 5_500 })],
      verdict: 'saturated',
    },
    {
      name: 'time-weighted: a burst of samples does not outvote a long calm',
      samples: [
        sample({ at: NOW - 10_000, busySlots: 1 }),
        ...Array.from({ length: 50 }, (_, k) => sample({ at: NOW - 1_000 + k * 20, busySlots: 4, queued: 2, oldestWaitMs: 2_000 })),
      ],
      verdict: 'busy',
    },
    {
      name: 'pressure ended in the latest sample → not saturated',
      samples: [...series(20_000, 1_000, { busySlots: 4, queued: 3, oldestWaitMs: 9_000 }), sample({ busySlots: 4 })],
      verdict: 'busy',
      reason: 'All 4 slots busy: new requests will queue',
    },
    {
      name: 'saturatedWaitMs option raises the bar',
      samples: series(20_000, 0, { busySlots: 4, queued: 3, oldestWaitMs: 5_000 }),
      options: { saturatedWaitMs: 10_000 },
      verdict: 'busy',
    },
    {
      name: 'sparse samples: one at -30 s holds through the sustain span',
      samples: [sample({ at: NOW - 30_000, busySlots: 4, queued: 1, oldestWaitMs: 1_000 }), sample({ busySlots: 4, queued: 1, oldestWaitMs: 31_000 })],
      verdict: 'saturated',
    },
    {
      name: 'samples after now are ignored',
      samples: [sample({ busySlots: 2 }), sample({ at: NOW + 5_000, busySlots: 4, queued: 8, oldestWaitMs: 9_000 })],
      verdict: 'ok',
    },
    {
      name: 'unsorted input is judged in time order',
      samples: [sample({ busySlots: 3 }), sample({ at: NOW - 5_000, busySlots: 0 })],
      verdict: 'busy',
    },
    {
      name: 'windowMs option: a 10 s window forgets activity 20 s ago',
      samples: [...series(30_000, 20_000, { busySlots: 3 }), ...series(19_000, 0, {})],
      options: { windowMs: 10_000 },
      verdict: 'idle',
      reason: 'No requests in the last 10 s',
    },
  ])('$name → $verdict', ({ samples, options, verdict, reason }) => {
    const got = judge(samples, NOW, options);
    expect(got.verdict).toBe(verdict);
    if (reason !== undefined) expect(got.reason).toBe(reason);
  });

  it('no samples in the window → idle, says there is no data', () => {
    expect(judge([sample({ at: NOW - 61_000, busySlots: 4 })], NOW)).toEqual({
      busySlots: 0, totalSlots: 0, queued: 0, headroomSlots: 0, verdict: 'idle', reason: 'No capacity samples in the last 60 s',
    });
  });

  it('an explicit undefined option keeps the default', () => {
    expect(judge([sample({ busySlots: 4, queued: 1, oldestWaitMs: 3_000 })], NOW, { saturatedWaitMs: undefined }).verdict).toBe('saturated');
  });
});

describe('CapacityWindow', () => {
  it('judges what was added', () => {
    const window = new CapacityWindow();
    window.add(sample({ at: NOW - 1_000, totalSlots: 8, busySlots: 1 }));
    window.add(sample({ totalSlots: 8, busySlots: 3, gpuUtilPct: 95 }));
    expect(window.verdict(NOW)).toMatchObject({ verdict: 'ok', headroomSlots: 5 });
  });

  it('keeps only the window plus the one sample before it', () => {
    const window = new CapacityWindow(10_000);
    for (const s of series(60_000, 0, {})) window.add(s);
    // 10 samples inside (NOW−9 s … NOW) and the one at NOW−10 s.
    expect(window.size).toBe(11);
  });

  it('an old spike leaves the window as time passes', () => {
    const window = new CapacityWindow(60_000);
    for (const s of series(5_000, 0, { busySlots: 4, queued: 4, oldestWaitMs: 4_000 })) window.add(s);
    expect(window.verdict(NOW).verdict).toBe('saturated');
    for (let k = 1; k <= 70; k += 1) window.add(sample({ at: NOW + k * 1_000 }));
    expect(window.verdict(NOW + 70_000)).toMatchObject({ verdict: 'idle', reason: 'No requests in the last 60 s' });
  });

  it('a late sample is placed in time order', () => {
    const window = new CapacityWindow();
    window.add(sample({ busySlots: 1 }));
    window.add(sample({ at: NOW - 2_000, busySlots: 4, queued: 3, oldestWaitMs: 9_000 }));
    expect(window.verdict(NOW)).toMatchObject({ verdict: 'ok', busySlots: 1 });
  });

  it('passes its options to judge', () => {
    const window = new CapacityWindow(60_000, { busyShare: 0.5 });
    window.add(sample({ busySlots: 2 }));
    expect(window.verdict(NOW).verdict).toBe('busy');
  });
});
