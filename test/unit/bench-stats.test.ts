// The bench's arithmetic: percentiles, summaries, request mixes, slot occupancy, SSE counting.
import { describe, expect, it } from 'vitest';
import { buildLevel, compareLevels, occupancyPct } from '../../bench/aggregate';
import { mixSequence, parseMix } from '../../bench/load';
import { mean, percentile, ratio, summarize } from '../../bench/stats';
import { steadySamples, summarizeTimeline } from '../../bench/status-sampler';
import { SseCounter, errorMessage } from '../../bench/stream-request';
import type { LevelResult, RequestSample, StatusSample } from '../../bench/types';

describe('percentile (linear interpolation between closest ranks)', () => {
  const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  it.each([
    { name: 'empty list', values: [], p: 50, want: NaN },
    { name: 'one value, any p', values: [7], p: 99, want: 7 },
    { name: 'p0 is the minimum', values: ten, p: 0, want: 1 },
    { name: 'p100 is the maximum', values: ten, p: 100, want: 10 },
    { name: 'p50 of an even count interpolates', values: ten, p: 50, want: 5.5 },
    { name: 'p50 of an odd count is the middle', values: [1, 2, 3], p: 50, want: 2 },
    { name: 'p95 of 1..10', values: ten, p: 95, want: 9.55 },
    { name: 'p99 of 1..10', values: ten, p: 99, want: 9.91 },
    { name: 'p25 between two values', values: [0, 100], p: 25, want: 25 },
    { name: 'out-of-range p clamps', values: ten, p: 150, want: 10 },
  ])('$name', ({ values, p, want }) => {
    const got = percentile(values, p);
    if (Number.isNaN(want)) expect(got).toBeNaN();
    else expect(got).toBeCloseTo(want, 10);
  });
});

describe('summarize', () => {
  it('sorts, drops non-finite values and reports every field', () => {
    expect(summarize([5, NaN, 1, 3, Infinity, 2, 4])).toEqual({ count: 5, mean: 3, min: 1, p50: 3, p95: 4.8, p99: 4.96, max: 5 });
  });
  it('is all NaN with count 0 for no values', () => {
    const s = summarize([]);
    expect(s.count).toBe(0);
    for (const k of ['mean', 'min', 'p50', 'p95', 'p99', 'max'] as const) expect(s[k]).toBeNaN();
  });
  it.each([
    { a: 10, b: 4, want: 2.5 },
    { a: 1, b: 0, want: NaN },
    { a: NaN, b: 2, want: NaN },
  ])('ratio($a, $b) = $want', ({ a, b, want }) => {
    if (Number.isNaN(want)) expect(ratio(a, b)).toBeNaN();
    else expect(ratio(a, b)).toBe(want);
  });
  it('mean of nothing is NaN', () => expect(mean([])).toBeNaN());
});

describe('request mixes', () => {
  it.each([
    { text: '64', want: [{ maxTokens: 64, weight: 1 }] },
    { text: '16:3,256:1', want: [{ maxTokens: 16, weight: 3 }, { maxTokens: 256, weight: 1 }] },
    { text: ' 8 , 32:2 ', want: [{ maxTokens: 8, weight: 1 }, { maxTokens: 32, weight: 2 }] },
    { text: '', want: undefined },
    { text: '16:0', want: undefined },
    { text: '0', want: undefined },
    { text: '16:x', want: undefined },
    { text: '-5', want: undefined },
  ])('parseMix("$text")', ({ text, want }) => {
    expect(parseMix(text)).toEqual(want);
  });

  it.each([
    { requests: 48, mix: [{ maxTokens: 16, weight: 3 }, { maxTokens: 256, weight: 1 }], counts: { 16: 36, 256: 12 } },
    { requests: 10, mix: [{ maxTokens: 16, weight: 3 }, { maxTokens: 256, weight: 1 }], counts: { 16: 8, 256: 2 } },
    { requests: 5, mix: [{ maxTokens: 64, weight: 1 }], counts: { 64: 5 } },
  ])('mixSequence gives exact shares ($requests requests)', ({ requests, mix, counts }) => {
    const seq = mixSequence(mix, requests);
    expect(seq).toHaveLength(requests);
    const got: Record<number, number> = {};
    for (const n of seq) got[n] = (got[n] ?? 0) + 1;
    expect(got).toEqual(counts);
  });

  it('mixSequence is the same on every run and not a plain stride', () => {
    const mix = [{ maxTokens: 16, weight: 3 }, { maxTokens: 256, weight: 1 }];
    const a = mixSequence(mix, 48);
    expect(mixSequence(mix, 48)).toEqual(a);
    const longAt = a.flatMap((n, i) => (n === 256 ? [i % 2] : []));
    // Round-robin over 2 instances must not get every long request on the same one.
    expect(new Set(longAt).size).toBe(2);
  });
});

describe('occupancyPct', () => {
  const req = (startMs: number, e2eMs: number) => ({ startMs, e2eMs });
  it.each([
    { name: 'one request all the time on 4 slots', samples: [req(0, 100)], slots: 4, from: 0, to: 100, want: 25 },
    { name: 'two back-to-back requests on 1 slot', samples: [req(0, 50), req(50, 50)], slots: 1, from: 0, to: 100, want: 100 },
    { name: 'more in flight than slots caps at 100', samples: [req(0, 100), req(0, 100), req(0, 100)], slots: 2, from: 0, to: 100, want: 100 },
    { name: 'half the window idle', samples: [req(50, 100)], slots: 1, from: 0, to: 100, want: 50 },
    { name: 'window clips requests on both sides', samples: [req(0, 1000)], slots: 2, from: 100, to: 200, want: 50 },
    { name: 'empty window', samples: [req(0, 10)], slots: 2, from: 5, to: 5, want: NaN },
  ])('$name', ({ samples, slots, from, to, want }) => {
    const got = occupancyPct(samples, slots, from, to);
    if (Number.isNaN(want)) expect(got).toBeNaN();
    else expect(got).toBeCloseTo(want, 6);
  });
});

function sample(over: Partial<RequestSample>): RequestSample {
  return { target: 'daemon', ok: true, maxTokens: 8, startMs: 0, ttftMs: 2, e2eMs: 10, tokens: 8, queueWaitMs: 0, ...over };
}

describe('levels and comparisons', () => {
  const timeline: StatusSample[] = [
    { tMs: 0, busySlots: 0, totalSlots: 4, queued: 0 },
    { tMs: 800, busySlots: 2, totalSlots: 4, queued: 0, cpuPct: 40, hostCpuPct: 60 },
    { tMs: 1000, busySlots: 4, totalSlots: 4, queued: 1, cpuPct: 50, hostCpuPct: 80 },
    { tMs: 5000, busySlots: 0, totalSlots: 4, queued: 0, cpuPct: 0 },
  ];

  it('steadySamples keeps the polls after the settle time and before the last start', () => {
    expect(steadySamples(timeline, 2000).map((s) => s.tMs)).toEqual([800, 1000]);
    expect(steadySamples(timeline, 100).map((s) => s.tMs)).toEqual([0, 800, 1000, 5000]); // none in the window: all
  });

  it('summarizeTimeline averages slots and CPU, leaving GPU out when no poll had it', () => {
    const u = summarizeTimeline(timeline.slice(1, 3));
    expect(u).toEqual({ samples: 2, slotPct: 75, peakBusySlots: 4, totalSlots: 4, cpuPct: 45, hostCpuPct: 70 });
  });

  it('buildLevel counts tokens over wall time, failures and distinct errors', () => {
    const run = {
      t0: 0,
      wallMs: 2000,
      samples: [
        sample({ startMs: 0, e2eMs: 1000, tokens: 100, ttftMs: 5, queueWaitMs: 3 }),
        sample({ startMs: 900, e2eMs: 1000, tokens: 100, ttftMs: 7 }),
        sample({ startMs: 1000, ok: false, error: 'HTTP 503: queue full', tokens: 0, ttftMs: undefined }),
        sample({ startMs: 1100, ok: false, error: 'HTTP 503: queue full', tokens: 0, ttftMs: undefined }),
      ],
    };
    const level = buildLevel('daemon', 2, run, timeline);
    expect(level).toMatchObject({ target: 'daemon', concurrency: 2, requests: 4, failed: 2, tokens: 200, tokensPerSecond: 100, errors: ['HTTP 503: queue full'] });
    expect(level.ttftMs).toMatchObject({ count: 2, p50: 6 });
    expect(level.queueWaitMs).toMatchObject({ count: 2, mean: 1.5 });
    expect(level.utilization.inFlightPct).toBeGreaterThan(0);
  });

  it('compareLevels pairs daemon and direct per concurrency', () => {
    const mk = (target: 'daemon' | 'direct' | 'floor', c: number, tps: number, p50: number, p99: number) => ({
      ...buildLevel(target, c, { t0: 0, wallMs: 1000, samples: [sample({ target })] }, []),
      tokensPerSecond: tps,
      ttftMs: { ...summarize([p50]), p50, p99 },
    });
    const cmp = compareLevels([mk('daemon', 2, 99, 3, 9), mk('direct', 2, 100, 2, 5), mk('daemon', 1, 50, 2, 2), mk('direct', 4, 1, 1, 1)]);
    expect(cmp).toEqual([{ concurrency: 2, throughputRatio: 0.99, addedTtftP50Ms: 1, addedTtftP99Ms: 4 }]);
    // The bare proxy's level at the same concurrency is set against the same direct level.
    const withFloor = compareLevels([mk('daemon', 2, 99, 3, 9), mk('direct', 2, 100, 2, 5), mk('floor', 2, 98, 2.5, 6), mk('floor', 4, 1, 1, 1)]);
    expect(withFloor).toEqual([{ concurrency: 2, throughputRatio: 0.99, addedTtftP50Ms: 1, addedTtftP99Ms: 4, floor: { throughputRatio: 0.98, addedTtftP50Ms: 0.5, addedTtftP99Ms: 1 } }]);
    // Each hop's CPU per request goes with its own comparison.
    const cpu = (l: LevelResult, us: number): LevelResult => ({ ...l, cpuUsPerRequest: us });
    const withCpu = compareLevels([cpu(mk('daemon', 2, 99, 3, 9), 350), mk('direct', 2, 100, 2, 5), cpu(mk('floor', 2, 98, 2.5, 6), 210)]);
    expect(withCpu[0]).toMatchObject({ cpuUsPerRequest: 350, floor: { cpuUsPerRequest: 210 } });
    expect(buildLevel('daemon', 1, { t0: 0, wallMs: 1, samples: [sample({})] }, [], 123).cpuUsPerRequest).toBe(123);
  });
});

describe('SseCounter', () => {
  const completion = (text: string, extra = ''): string => `data: {"choices":[{"text":${JSON.stringify(text)},"index":0,"finish_reason":null}]${extra}}\n\n`;
  const run = (chunks: string[]) => {
    let firsts = 0;
    const c = new SseCounter(() => firsts++);
    for (const ch of chunks) c.push(ch);
    c.end();
    return { tokens: c.tokens, done: c.done, error: c.error, firsts };
  };

  it.each([
    { name: 'completion chunks counted, [DONE] seen', chunks: [completion('a'), completion(' b'), 'data: [DONE]\n\n'], want: { tokens: 2, done: true, error: undefined, firsts: 1 } },
    {
      name: 'usage in the last chunk wins over the count',
      chunks: [completion('a'), completion('', ',"usage":{"completion_tokens":5}'), 'data: [DONE]\n\n'],
      want: { tokens: 5, done: true, error: undefined, firsts: 1 },
    },
    {
      name: "llama-server's timings.predicted_n is used too",
      chunks: [completion('a'), completion('', ',"timings":{"predicted_n":3}'), 'data: [DONE]\n\n'],
      want: { tokens: 3, done: true, error: undefined, firsts: 1 },
    },
    {
      name: 'chat deltas; the role-only chunk is not content',
      chunks: ['data: {"choices":[{"delta":{"role":"assistant","content":null}}]}\n\n', 'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n', 'data: [DONE]\n\n'],
      want: { tokens: 1, done: true, error: undefined, firsts: 1 },
    },
    {
      name: 'lines split across network chunks, CRLF endings',
      chunks: ['data: {"choices":[{"te', 'xt":"a"}]}\r\n\r\ndata: [DO', 'NE]\r\n\r\n'],
      want: { tokens: 1, done: true, error: undefined, firsts: 1 },
    },
    { name: 'no [DONE]', chunks: [completion('a')], want: { tokens: 1, done: false, error: undefined, firsts: 1 } },
    {
      name: 'an in-band error',
      chunks: ['data: {"error":{"message":"slot died"}}\n\n'],
      want: { tokens: 0, done: false, error: 'stream error: slot died', firsts: 0 },
    },
    { name: 'comments and event lines are ignored', chunks: [': ping\n', 'event: x\n', completion('a'), 'data: [DONE]\n'], want: { tokens: 1, done: true, error: undefined, firsts: 1 } },
  ])('$name', ({ chunks, want }) => {
    expect(run(chunks)).toEqual(want);
  });

  it('reports an unparsable chunk', () => {
    expect(run(['data: {nope\n\n']).error).toMatch(/^unparsable stream chunk: \{nope/);
  });
});

describe('errorMessage', () => {
  it.each([
    { body: '{"error":{"code":"SW_ERR_QUEUE_FULL","message":"queue full — retry later"}}', want: 'queue full — retry later' },
    { body: '{"error":"plain"}', want: 'plain' },
    { body: '<html>\n<body>bad gateway</body>', want: '<html>' },
    { body: '', want: '(empty body)' },
  ])('$want', ({ body, want }) => {
    expect(errorMessage(body)).toBe(want);
  });
});
