// The typing and priority scenarios' figures from hand-made lease records and samples: slot time per
// burst, the time for one slot to free, the goal checks and their Markdown (no llama-server needed).
import { describe, expect, it } from 'vitest';
import { burstSlotTime, firstReleaseAfter, releasesWhileWaiting, type LeaseTimes } from '../../bench/slot-time';
import { backgroundStarts, priorityRun } from '../../bench/priority-load';
import { checkTargets } from '../../bench/targets';
import { renderMarkdown } from '../../bench/report-md';
import { summarize } from '../../bench/stats';
import type { BenchReport, InteractiveSample, TypingRun } from '../../bench/types';
import { benchLevel } from './bench-fixtures';
import { expectRectangularTables } from '../helpers/markdown';

const rec = (requestId: string, leasedAt: number, releasedAt: number, superseded = false): LeaseTimes => ({ requestId, acceptedAt: leasedAt, leasedAt, releasedAt, superseded });

describe('burstSlotTime', () => {
  it('sums every lease, and as wasted those of every request but the final one', () => {
    const t = burstSlotTime([rec('a', 0, 50, true), rec('b', 100, 112, true), rec('final', 1000, 1950)], 'final');
    expect(t).toEqual({ slotMs: 50 + 12 + 950, wastedSlotMs: 62, supersededSlotMs: 62, leased: 3 });
  });
  it('without a session key the stale completions are wasted, though none was superseded', () => {
    expect(burstSlotTime([rec('a', 0, 400), rec('final', 50, 450)], 'final')).toEqual({ slotMs: 800, wastedSlotMs: 400, supersededSlotMs: 0, leased: 2 });
  });
  it('a final request that never leased (it failed) leaves everything wasted', () => {
    expect(burstSlotTime([rec('a', 0, 10)], undefined).wastedSlotMs).toBe(10);
  });
});

describe('one slot frees', () => {
  it('is the first release at or after the arrival', () => {
    expect(firstReleaseAfter([500, 120, 90, 300], 100)).toBe(120);
    expect(firstReleaseAfter([500, 120], 120)).toBe(120);
    expect(firstReleaseAfter([90], 100)).toBeUndefined();
  });
  it('counts the releases while a request waited, and the background leases that began meanwhile', () => {
    expect(releasesWhileWaiting([90, 120, 120, 300], 100, 121)).toBe(2);
    const records = [
      { priority: 'background' as const, leasedAt: 150 },
      { priority: 'background' as const, leasedAt: 90 },
      { priority: 'interactive' as const, leasedAt: 130 },
    ];
    expect(backgroundStarts(records, { acceptedAt: 100, leasedAt: 200 })).toBe(1);
    expect(backgroundStarts(records, { acceptedAt: 100, leasedAt: 150 })).toBe(0);
    // A slot handed off before the request came was granted then, though its lease began after: not counted;
    // one handed off while it waited is.
    const handed = [
      { priority: 'background' as const, leasedAt: 150, handedOffAt: 95 },
      { priority: 'background' as const, leasedAt: 160, handedOffAt: 120 },
    ];
    expect(backgroundStarts(handed, { acceptedAt: 100, leasedAt: 200 })).toBe(1);
    // A request handed a slot at 110 waited no longer for one: what others got afterwards is not counted.
    expect(backgroundStarts(records, { acceptedAt: 100, leasedAt: 200, handedOffAt: 110 })).toBe(0);
    expect(backgroundStarts(handed, { acceptedAt: 100, leasedAt: 200, handedOffAt: 130 })).toBe(1);
  });
});

describe('priorityRun', () => {
  it('takes p95s over the successful samples and their ratios; a request counts as taking the first freed slot within 5 ms', () => {
    const s = (ttftMs: number, queueWaitMs: number, slotFreeMs: number, extra: Partial<InteractiveSample> = {}): InteractiveSample => ({ ok: true, ttftMs, queueWaitMs, slotFreeMs, backgroundStartsWhileWaiting: 0, upstreamMs: 10, ...extra });
    const samples = [s(110, 100, 100), s(220, 200, 196), s(330, 320, 300, { backgroundStartsWhileWaiting: 2 }), { ok: false, error: 'HTTP 503', queueWaitMs: 0 }];
    const run = priorityRun(true, samples, 40, 1);
    expect(run.ttftMs.count).toBe(3);
    expect(run.ttftOverSlotFree).toBeCloseTo(run.ttftMs.p95 / run.slotFreeMs.p95, 9);
    expect(run.queueWaitOverSlotFree).toBeCloseTo(run.queueWaitMs.p95 / run.slotFreeMs.p95, 9);
    expect(run.tookFirstFreed).toBe(2);
    expect(run.backgroundStartsWhileWaiting).toBe(2);
    expect(run.upstreamP95Ms).toBe(10);
    expect([run.backgroundDone, run.backgroundFailed]).toEqual([40, 1]);
  });
});

const typingRun = (mode: TypingRun['mode'], wastedFraction: number): TypingRun => ({
  mode,
  sessionHoldMs: mode === 'session, no hold' ? 0 : 150,
  wastedFraction,
  finalTtftMs: summarize([70, 80]),
  bursts: [{ requests: 20, leased: 2, superseded: 19, slotMs: 1000, wastedSlotMs: 1000 * wastedFraction, finalTtftMs: 70, finalE2eMs: 950, finalOk: true, gapMs: summarize([50, 51, 62]), errors: [] }],
});
const typing: BenchReport['typing'] = { keystrokes: 20, gapMs: 50, pauseMs: 500, nPredict: 512, slots: 4, runs: [typingRun('session', 0.048), typingRun('session, no hold', 0.46), typingRun('no session', 0.95)] };
const priorityResult = (onRatio: number): BenchReport['priority'] => {
  const on = priorityRun(true, [{ ok: true, ttftMs: 100 * onRatio, queueWaitMs: 100, slotFreeMs: 100 }], 10, 0);
  const off = priorityRun(false, [{ ok: true, ttftMs: 400, queueWaitMs: 390, slotFreeMs: 100 }], 10, 0);
  return { slots: 4, backgroundStreams: 16, backgroundMaxTokens: 128, interactiveRequests: 1, interactiveMaxTokens: 8, meanGapMs: 400, runs: [on, off] };
};

describe('typing and priority goals', () => {
  const sweep: BenchReport['sweep'] = { options: { model: 'tiny', concurrency: [1], requests: 1, mix: [{ maxTokens: 8, weight: 1 }], direct: false, prompt: 'p' }, levels: [benchLevel('daemon', 1, 100)], comparisons: [], layout: { instances: 1, slotsPerInstance: 4 } };
  const find = (checks: ReturnType<typeof checkTargets>, prefix: string) => checks.find((c) => c.name.startsWith(prefix));

  it('reports the waste with the hold against the goal, the other runs beside it', () => {
    expect(find(checkTargets({ sweep, typing }), 'typing burst')).toEqual({
      name: 'typing burst: slot time on superseded requests',
      goal: "≤ 5 % of the burst's slot time",
      measured: '4.8 % (without the hold 46.0 %, without a session key 95.0 % stale)',
      met: true,
    });
    expect(find(checkTargets({ sweep, typing: { ...typing, runs: [typingRun('session', 0.051)] } }), 'typing burst')).toMatchObject({ measured: '5.1 %', met: false });
    expect(find(checkTargets({ sweep }), 'typing burst')).toMatchObject({ measured: 'not measured (--standard)', met: undefined });
  });

  it('reports interactive TTFT p95 over the time for one slot to free, priority off beside it', () => {
    expect(find(checkTargets({ sweep, priority: priorityResult(1.05) }), 'interactive TTFT')).toEqual({
      name: 'interactive TTFT p95 under saturating background load ÷ time for one slot to free p95',
      goal: '≤ 1.10×',
      measured: '1.05× (TTFT p95 105 ms, one slot frees p95 100 ms; priority off: 4.00×)',
      met: true,
    });
    expect(find(checkTargets({ sweep, priority: priorityResult(1.2) }), 'interactive TTFT')).toMatchObject({ met: false });
  });

  it('renders both sections with as many cells per row as the header', () => {
    const base = { schema: 1 as const, environment: { cpuModel: 'cpu', cores: 2, memoryGiB: 8, platform: 'linux-x64', node: 'v20', slotwise: '0.1.0', gpus: [], startedAt: 'now' }, run: { kind: 'standard' as const, model: 'tiny', routing: 'slot-aware' as const }, sweep, durationMs: 1 };
    const r = { ...base, typing, priority: priorityResult(1.05) };
    const md = renderMarkdown({ ...r, targets: checkTargets(r) });
    expect(md).toContain('## Typing: newest wins with the adaptive hold');
    expect(md).toContain('| session | 4.8 % | 75 | 80 |');
    expect(md).toContain('## Priority: interactive requests under a saturating background load');
    expect(md).toMatch(/\| on \| 105 \| 105 \| 100 \| 100 \| 1\.05× \| 1\.00× \| 1\/1 \|/);
    expectRectangularTables(md);
  });
});
