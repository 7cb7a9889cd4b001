// bench.md and the goal checks, from hand-made reports (no llama-server needed).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fmt, renderMarkdown } from '../../bench/report-md';
import { summarize } from '../../bench/stats';
import { checkTargets } from '../../bench/targets';
import type { BenchReport, Comparison } from '../../bench/types';
import { writeReport } from '../../bench/write-report';
import { benchLevel } from './bench-fixtures';
import { expectRectangularTables } from '../helpers/markdown';

const level = benchLevel;

function report(over: Partial<BenchReport> = {}, comparisons: Comparison[] = []): BenchReport {
  const levels = [level('daemon', 1, 990), level('direct', 1, 1000), level('direct', 2, 1800), level('daemon', 2, 1700)];
  const base: BenchReport = {
    schema: 1,
    environment: { cpuModel: 'Test CPU', cores: 2, memoryGiB: 8, platform: 'linux-x64', node: 'v20.0.0', slotwise: '0.1.0', llamaServer: 'b1-abc', gpus: [], startedAt: '2026-01-01T00:00:00.000Z' },
    run: { kind: 'custom', model: 'tiny', modelPath: '/m/tiny.gguf', routing: 'slot-aware' },
    sweep: {
      options: { model: 'tiny', concurrency: [1, 2], requests: 8, mix: [{ maxTokens: 64, weight: 1 }], direct: true, prompt: 'p' },
      levels,
      comparisons,
      layout: { instances: 1, slotsPerInstance: 4 },
    },
    targets: [],
    durationMs: 12_345,
    ...over,
  };
  return { ...base, targets: over.targets ?? checkTargets(base) };
}

describe('checkTargets', () => {
  const cmp = (c: number, r: number, p50: number, p99: number): Comparison => ({ concurrency: c, throughputRatio: r, addedTtftP50Ms: p50, addedTtftP99Ms: p99 });
  it.each([
    {
      name: 'all sweep goals met',
      comparisons: [cmp(1, 1.0, 0.4, 1.2), cmp(2, 0.995, 0.9, 2.9)],
      want: { 'daemon/direct throughput': [true, 'min 0.995 (c=2)'], 'added TTFT p50': [true, 'max 0.90 ms (c=2)'], 'added TTFT p99': [true, 'max 2.90 ms (c=2)'], 'added TTFT p50 at c=1': [true, '0.40 ms'] },
    },
    {
      name: 'the worst level decides',
      comparisons: [cmp(1, 0.97, 1.5, 0.5), cmp(4, 1.01, 0.2, 4)],
      want: { 'daemon/direct throughput': [false, 'min 0.970 (c=1)'], 'added TTFT p50': [false, 'max 1.50 ms (c=1)'], 'added TTFT p99': [false, 'max 4.00 ms (c=4)'], 'added TTFT p50 at c=1': [false, '1.50 ms'] },
    },
    {
      // The fixture's daemon has 1 × 4 slots: at c=8 half the requests wait for one (the table: "(queued)").
      name: 'added TTFT counts only levels where nothing queues; throughput counts every level',
      comparisons: [cmp(1, 1, 0.3, 1), cmp(4, 1, 0.4, 1.5), cmp(8, 0.98, 9, 12)],
      want: {
        'daemon/direct throughput': [false, 'min 0.980 (c=8)'],
        'added TTFT p50': [true, 'max 0.40 ms (c=4); queued, not counted (c > 4 slots): c=8 9.00 ms'],
        'added TTFT p99': [true, 'max 1.50 ms (c=4); queued, not counted (c > 4 slots): c=8 12.00 ms'],
      },
    },
    {
      name: 'NaN (null in JSON) levels are skipped',
      comparisons: [cmp(1, NaN, NaN, NaN), cmp(2, 1, 0.5, 1)],
      want: { 'daemon/direct throughput': [true, 'min 1.000 (c=2)'], 'added TTFT p50': [true, 'max 0.50 ms (c=2)'], 'added TTFT p99': [true, 'max 1.00 ms (c=2)'], 'added TTFT p50 at c=1': [undefined, 'not measured (run with --direct and c=1)'] },
    },
    {
      name: 'no direct run: not measured',
      comparisons: [],
      want: {
        'daemon/direct throughput': [undefined, 'not measured (run with --direct)'],
        'added TTFT p50': [undefined, 'not measured (run with --direct)'],
        'added TTFT p99': [undefined, 'not measured (run with --direct)'],
        'added TTFT p50 at c=1': [undefined, 'not measured (run with --direct and c=1)'],
      },
    },
  ])('$name', ({ comparisons, want }) => {
    const checks = checkTargets(report({}, comparisons));
    for (const [name, [met, measured]] of Object.entries(want)) {
      expect(checks.find((c) => c.name === name)).toMatchObject({ met, measured });
    }
  });

  it('marks the added TTFT of a queued level in the comparison table', () => {
    const md = renderMarkdown(report({}, [cmp(4, 1, 0.4, 1.5), cmp(8, 0.98, 9, 12)]));
    expect(md).toContain('| 4 | 1.000 | 0.40 | 1.50 |');
    expect(md).toContain('| 8 | 0.980 | 9.00 (queued) | 12.00 (queued) |');
  });

  it('routing and load goals', () => {
    const base = report();
    const routing: BenchReport['routing'] = { upstream: 'llama-server', replicas: 2, slotsPerInstance: 4, concurrency: 8, runs: [], p95Ratio: 1.42, shortP95Ratio: 2.5 };
    const routingStandIn: BenchReport['routingStandIn'] = { ...routing, upstream: 'stand-in', p95Ratio: 1.1, shortP95Ratio: 1.2 };
    const load: BenchReport['load'] = {
      streams: 1000,
      replicas: 4,
      slotsPerInstance: 250,
      tokenIntervalMs: 50,
      level: level('daemon', 1000, 20_000, { requests: 1000, failed: 3 }),
      daemon: { loopLagMs: { p50: 1, p99: 25.5, max: 40 }, loopLagTimeline: [], rssMB: { before: 120, peak: 180 }, process: 'own', pid: 4242, client: 'separate' },
    };
    const checks = checkTargets({ sweep: base.sweep, routing, routingStandIn, load });
    expect(checks.slice(4, 8)).toEqual([
      { name: 'routing: e2e p95, round-robin ÷ slot-aware (llama-server)', goal: '≥ 1.3×', measured: '1.42× (short requests: 2.50×)', met: true },
      { name: 'routing: e2e p95, round-robin ÷ slot-aware (stand-in)', goal: '≥ 1.3×', measured: '1.10× (short requests: 1.20×)', met: false },
      { name: '1,000 streams: daemon event-loop lag p99', goal: '< 20 ms', measured: '25.50 ms (max 40.00 ms; 997/1000 streams ok)', met: false },
      { name: '1,000 streams: daemon RSS', goal: '< 200 MB', measured: "peak 180 MB (before 120 MB; the daemon's own process)", met: true },
    ]);
    // A report from before the daemon had its own process: its figures were the bench process's.
    const { process: _own, pid: _pid, ...hosted } = load.daemon;
    const old = checkTargets({ sweep: base.sweep, load: { ...load, daemon: hosted } }).find((c) => c.name === '1,000 streams: daemon RSS');
    expect(old?.measured).toBe('peak 180 MB (before 120 MB; the bench process hosting it)');
    const md = renderMarkdown({ ...base, load, targets: checks, durationMs: 1 });
    expect(md).toContain("Lag and RSS are the daemon's own process, started as users start it (`node dist/cli.js daemon`)");
    expect(md).toMatch(/\| 997\/1000 \|.*\| 120 MB \| 180 MB \| own \(pid 4242\) \|/);
  });
});

describe('checkTargets at GPU pace', () => {
  it('checks the stand-in sweep against its own, tighter goals', () => {
    const base = report();
    const gpuPace: BenchReport['gpuPace'] = {
      tokenMs: 3,
      sweep: { ...base.sweep, comparisons: [{ concurrency: 1, throughputRatio: 0.996, addedTtftP50Ms: 0.6, addedTtftP99Ms: 1.5 }] },
    };
    const checks = checkTargets({ ...base, gpuPace });
    expect(checks.filter((c) => c.name.startsWith('GPU pace'))).toEqual([
      { name: 'GPU pace (stand-in): daemon/direct throughput', goal: '≥ 0.995 at every concurrency', measured: 'min 0.996 (c=1)', met: true },
      { name: 'GPU pace (stand-in): added TTFT p50', goal: '≤ 0.5 ms', measured: 'max 0.60 ms (c=1)', met: false },
      { name: 'GPU pace (stand-in): added TTFT p99', goal: '≤ 2 ms', measured: 'max 1.50 ms (c=1)', met: true },
    ]);
    const md = renderMarkdown({ ...base, gpuPace, targets: checks });
    expect(md).toContain('## Concurrency sweep at GPU pace (stand-in upstream)');
    expect(md).toContain('3 ms a token per stream');
    expect(md).toContain('| 1 | 0.996 | 0.60 | 1.50 |');
    expect(md).toMatch(/ \d+ requests of max_tokens /); // one count for every level
    const perClient = renderMarkdown({ ...base, gpuPace: { ...gpuPace, sweep: { ...gpuPace.sweep, options: { ...gpuPace.sweep.options, concurrency: [1, 16], requests: 192, perClient: 48 } } }, targets: checks });
    expect(perClient).toContain('192 requests (48 per client where that is more: 768 at c=16) of max_tokens');
  });

  it('names the bare proxy beside each worst figure and in the table when the sweep ran it', () => {
    const base = report();
    const floor = { throughputRatio: 0.993, addedTtftP50Ms: 0.45, addedTtftP99Ms: 1.2, cpuUsPerRequest: 214.6 };
    const gpuPace: BenchReport['gpuPace'] = {
      tokenMs: 3,
      sweep: { ...base.sweep, comparisons: [{ concurrency: 1, throughputRatio: 0.99, addedTtftP50Ms: 0.6, addedTtftP99Ms: 1.5, cpuUsPerRequest: 351.2, floor }, { concurrency: 2, throughputRatio: 1, addedTtftP50Ms: 0.5, addedTtftP99Ms: 1, floor: { ...floor, cpuUsPerRequest: undefined } }] },
    };
    const checks = checkTargets({ ...base, gpuPace }).filter((c) => c.name.startsWith('GPU pace'));
    expect(checks.map((c) => c.measured)).toEqual(['min 0.990 (c=1; bare proxy 0.993)', 'max 0.60 ms (c=1; bare proxy 0.45 ms)', 'max 1.50 ms (c=1; bare proxy 1.20 ms)']);
    const md = renderMarkdown({ ...base, gpuPace, targets: checks });
    expect(md).toContain('### Daemon vs direct, and the floor: a bare Node proxy');
    expect(md).toContain('| 1 | 0.990 | 0.993 | 0.60 / 0.45 | 1.50 / 1.20 | 0.15 | 351 / 215 |');
    expect(md).toContain('| 2 | 1.000 | 0.993 | 0.50 / 0.45 | 1.00 / 1.20 | 0.05 | – / – |'); // not measured (a client in the daemon's process)
  });
});

describe('renderMarkdown', () => {
  it('has the environment, the goals and one sweep row per level', () => {
    const md = renderMarkdown(report({}, [{ concurrency: 1, throughputRatio: 0.99, addedTtftP50Ms: 0.5, addedTtftP99Ms: 2 }]));
    expect(md).toMatch(/^# Slotwise benchmark\n/);
    expect(md).toContain('Test CPU, 2 cores, 8 GiB');
    expect(md).toContain('llama-server b1-abc');
    expect(md).toContain('| daemon/direct throughput | ≥ 0.99 at every concurrency | min 0.990 (c=1) | ✓ met |');
    expect(md).toContain('| routing: e2e p95, round-robin ÷ slot-aware (llama-server) | ≥ 1.3× | not measured (--standard) | · |');
    expect(md).not.toContain('(stand-in) |'); // only the standard suite runs the stand-in comparison
    const rows = md.split('\n').filter((l) => /^\| \d+ \| (daemon|direct) \|/.test(l));
    expect(rows).toHaveLength(4);
    expect(rows[0]).toBe('| 1 | daemon | 990 | 3.00 | 3.90 | 3.98 | 20.0 | 29.0 | 0.3 | 0.9 | 60 % | 50 % (peak 3/4) | 45 % | 90 % | – | 0 |');
    expect(md).toContain('| 1 | 0.990 | 0.50 | 2.00 |');
    expect(md).not.toContain('## Routing');
    expect(md).not.toContain('concurrent streams');
  });

  it('every table row has as many cells as its header', () => {
    expectRectangularTables(renderMarkdown(report()));
  });

  it('renders missing numbers (NaN, or null after JSON) as –, and lists errors', () => {
    const failed = level('daemon', 4, 0, { failed: 8, ttftMs: summarize([]), errors: ['HTTP 503: queue full'] });
    const r = JSON.parse(JSON.stringify(report({ sweep: { ...report().sweep, levels: [failed] } }))) as BenchReport;
    const md = renderMarkdown(r);
    expect(md).toContain('| 4 | daemon | 0 | – | – | – |');
    expect(md).toContain('## Errors\n\n- c=4 daemon: HTTP 503: queue full');
  });

  it.each([
    { v: 1.234, digits: 1, want: '1.2' },
    { v: NaN, digits: 1, want: '–' },
    { v: null, digits: 2, want: '–' },
    { v: undefined, digits: 0, want: '–' },
    { v: 1999.6, digits: 0, want: '2000' },
  ])('fmt($v, $digits) = $want', ({ v, digits, want }) => {
    expect(fmt(v, digits)).toBe(want);
  });
});

describe('writeReport', () => {
  let dir = '';
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes bench.json, bench.md and bench.svg; the JSON reads back', async () => {
    dir = mkdtempSync(join(tmpdir(), 'slotwise-bench-report-'));
    const r = report();
    const files = await writeReport(join(dir, 'out'), r);
    expect(JSON.parse(readFileSync(files.json, 'utf8'))).toMatchObject({ schema: 1, run: { model: 'tiny' }, sweep: { layout: { slotsPerInstance: 4 } } });
    expect(readFileSync(files.md, 'utf8')).toBe(renderMarkdown(r));
    expect(readFileSync(files.svg, 'utf8')).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  });
});
