// The daemon's per-request stage timings: the Server-Timing header it writes, the bench's reading
// of it, and the bench's per-stage summaries (with `outside` = client TTFT − the daemon's total).
import { describe, expect, it } from 'vitest';
import { parseServerTiming, serverTiming } from '../../daemon/api/stage-timing';
import { summarizeStages } from '../../bench/aggregate';
import type { RequestSample } from '../../bench/types';

describe('serverTiming', () => {
  it('names each stage whose two marks exist, in order, with total from received to the last mark', () => {
    const header = serverTiming({ received: 100, parsed: 100.25, queued: 100.5, leased: 102.5, upstreamHeaders: 106.5, upstreamFirstByte: 107 });
    expect(header).toBe('parse;dur=0.250, admit;dur=0.250, queue;dur=2.000, upstream;dur=4.000, first-byte;dur=0.500, total;dur=7.000');
  });

  it('leaves out stages not reached (a request that ended before llama-server answered)', () => {
    expect(serverTiming({ received: 10, parsed: 11, queued: 11 })).toBe('parse;dur=1.000, admit;dur=0.000, total;dur=1.000');
  });
});

describe('parseServerTiming', () => {
  it('reads back what serverTiming wrote', () => {
    const m = { received: 0, parsed: 0.1, queued: 0.15, leased: 0.2, upstreamHeaders: 3.2, upstreamFirstByte: 3.25 };
    const got = parseServerTiming(serverTiming(m));
    expect(Object.keys(got)).toEqual(['parse', 'admit', 'queue', 'upstream', 'first-byte', 'total']);
    expect(got.upstream).toBeCloseTo(3, 6);
    expect(got.total).toBeCloseTo(3.25, 6);
  });

  it('takes dur from any parameter position, joins repeated headers and skips entries without dur', () => {
    expect(parseServerTiming(['cache;desc="hit";dur=1.5', 'miss, db;dur=x, app;dur=2e1'])).toEqual({ cache: 1.5, app: 20 });
  });

  it('is empty without a header (a direct llama-server)', () => {
    expect(parseServerTiming(undefined)).toEqual({});
  });
});

describe('summarizeStages', () => {
  const sample = (ttftMs: number | undefined, stages?: Record<string, number>): RequestSample => ({
    target: 'daemon', ok: true, maxTokens: 8, startMs: 0, e2eMs: 10, tokens: 8, queueWaitMs: 0, ttftMs, ...(stages ? { stages } : {}),
  });

  it('summarizes every stage and computes outside = client TTFT − daemon total', () => {
    const s = summarizeStages([sample(5, { parse: 0.1, total: 4 }), sample(7, { parse: 0.3, total: 5 }), sample(3)]);
    expect(s.parse!.count).toBe(2);
    expect(s.parse!.p50).toBeCloseTo(0.2, 9);
    expect(s.outside!.min).toBe(1);
    expect(s.outside!.max).toBe(2);
  });

  it('has no outside for a request without a first token', () => {
    expect(summarizeStages([sample(undefined, { total: 4 })]).outside).toBeUndefined();
  });
});
