// bench.svg: well-formed XML, the series and axis labels present, escaping, tick choice.
import { describe, expect, it } from 'vitest';
import { chartFromReport, esc, niceTicks, renderChart, type ChartInput } from '../../bench/chart-svg';
import { benchLevel, utilization } from './bench-fixtures';
import { summarize } from '../../bench/stats';
import type { BenchReport, LevelResult, Utilization } from '../../bench/types';

/** A strict-enough XML well-formedness check: balanced tags, one root, quoted attributes, escaped text. */
function xmlProblems(doc: string): string[] {
  const problems: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  const entity = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-f]+);/gi;
  const checkText = (t: string, where: string): void => {
    if (t.replace(entity, '').includes('&')) problems.push(`unescaped & in ${where}: ${t.slice(0, 40)}`);
  };
  let last = 0;
  for (const m of doc.matchAll(/<[^>]*>/g)) {
    checkText(doc.slice(last, m.index), 'text');
    last = m.index + m[0].length;
    const tag = m[0];
    const close = /^<\/([\w:-]+)\s*>$/.exec(tag);
    if (close) {
      if (stack.pop() !== close[1]) problems.push(`mismatched </${close[1]}>`);
      continue;
    }
    const open = /^<([\w:-]+)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>$/.exec(tag);
    if (!open) {
      problems.push(`malformed tag: ${tag.slice(0, 60)}`);
      continue;
    }
    checkText(open[2]!, `attributes of <${open[1]}>`);
    const names = [...open[2]!.matchAll(/([\w:-]+)=/g)].map((a) => a[1]);
    if (new Set(names).size !== names.length) problems.push(`duplicate attribute in <${open[1]}>`);
    if (stack.length === 0) roots++;
    if (!open[3]) stack.push(open[1]!);
  }
  checkText(doc.slice(last), 'trailing text');
  if (stack.length) problems.push(`unclosed: ${stack.join(', ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}

function util(over: Partial<Utilization> = {}): Utilization {
  return utilization({ slotPct: 40, inFlightPct: 50, cpuPct: 48, hostCpuPct: 95, ...over });
}

function level(target: LevelResult['target'], concurrency: number, tps: number, u = util()): LevelResult {
  return benchLevel(target, concurrency, tps, { ttftMs: summarize([2]), e2eMs: summarize([10]), queueWaitMs: summarize([0]), utilization: u });
}

function report(levels: LevelResult[], gpus: string[] = []): BenchReport {
  return {
    schema: 1,
    environment: { cpuModel: 'Test <CPU> & Co', cores: 2, memoryGiB: 8, platform: 'linux-x64', node: 'v20', slotwise: '0.1.0', gpus, startedAt: '2026-01-01T00:00:00Z' },
    run: { kind: 'standard', model: 'tiny', routing: 'slot-aware' },
    sweep: {
      options: { model: 'tiny', concurrency: [1, 2, 4], requests: 8, mix: [{ maxTokens: 64, weight: 1 }], direct: true, prompt: 'p' },
      levels,
      comparisons: [],
      layout: { instances: 1, slotsPerInstance: 8 },
    },
    targets: [],
    durationMs: 1,
  };
}

const sweep = [level('daemon', 1, 1000), level('direct', 1, 1010), level('daemon', 2, 1900), level('direct', 2, 1950), level('daemon', 4, 3400), level('direct', 4, 3500)];

describe('renderChart', () => {
  it.each([
    { name: 'CPU-only host, daemon and direct', levels: sweep, gpus: [], series: ['through daemon', 'direct llama-server', 'slots in use (timings)', 'slots busy (/api/status)', 'llama-server CPU', 'host CPU'] },
    {
      name: 'GPU host: GPU utilization instead of host CPU',
      levels: sweep.map((l) => ({ ...l, utilization: util({ gpuPct: 97 }) })),
      gpus: ['NVIDIA H100 (80 GiB)'],
      series: ['through daemon', 'direct llama-server', 'slots in use (timings)', 'slots busy (/api/status)', 'GPU utilization', 'llama-server CPU'],
    },
    { name: 'daemon only', levels: sweep.filter((l) => l.target === 'daemon'), gpus: [], series: ['through daemon', 'slots in use (timings)', 'slots busy (/api/status)', 'llama-server CPU', 'host CPU'] },
    { name: 'a single level', levels: [level('daemon', 8, 5000)], gpus: [], series: ['through daemon', 'slots in use (timings)'] },
  ])('$name: well-formed, with its series and axis labels', ({ levels, gpus, series }) => {
    const svg = renderChart(chartFromReport(report(levels, gpus)));
    expect(xmlProblems(svg)).toEqual([]);
    const labels = [...svg.matchAll(/<g class="series" data-label="([^"]+)">/g)].map((m) => m[1]);
    expect(labels).toEqual(expect.arrayContaining(series));
    if (series.length > 2) expect(labels).toEqual(series);
    expect(svg).toContain('>generated tokens / s</text>');
    expect(svg).toContain('>% (slots, CPU of all cores)</text>');
    expect(svg).toContain('>concurrent requests</text>');
    for (const c of new Set(levels.map((l) => l.concurrency))) expect(svg).toContain(`>${c}</text>`);
  });

  it('escapes text from the environment', () => {
    const svg = renderChart(chartFromReport(report(sweep)));
    expect(svg).toContain('Test &lt;CPU&gt; &amp; Co');
    expect(xmlProblems(svg)).toEqual([]);
  });

  it('draws one polyline per series run and splits it at missing values', () => {
    const input: ChartInput = {
      title: 't',
      subtitle: 's',
      xLabel: 'x',
      x: [1, 2, 4, 8],
      top: { yLabel: 'a', series: [{ label: 'gap', values: [1, 2, null, 4], color: '#000' }] },
      bottom: { yLabel: 'b', yMax: 100, series: [{ label: 'full', values: [10, 20, 30, NaN], color: '#111', dashed: true }] },
    };
    const svg = renderChart(input);
    expect(xmlProblems(svg)).toEqual([]);
    const gap = svg.slice(svg.indexOf('data-label="gap"'), svg.indexOf('data-label="full"'));
    expect(gap.match(/<polyline/g)).toHaveLength(1); // [1,2] is a line; [4] alone is only a point
    expect(gap.match(/<circle/g)).toHaveLength(3);
    expect(svg).toContain('stroke-dasharray="7 5"');
  });

  it('puts 100 at the top of the percentage axis', () => {
    const svg = renderChart(chartFromReport(report(sweep)));
    expect(svg).toContain('>100</text>');
  });
});

describe('niceTicks', () => {
  it.each([
    { max: 5400, want: [0, 2000, 4000, 6000] },
    { max: 100, want: [0, 20, 40, 60, 80, 100] },
    { max: 7, want: [0, 2, 4, 6, 8] },
    { max: 0.9, want: [0, 0.2, 0.4, 0.6, 0.8, 1] },
    { max: 12_000, want: [0, 2500, 5000, 7500, 10_000, 12_500] },
    { max: 0, want: [0, 1] },
    { max: NaN, want: [0, 1] },
  ])('niceTicks($max)', ({ max, want }) => {
    expect(niceTicks(max)).toEqual(want);
  });
});

it.each([
  { raw: 'a < b & c > "d"', want: 'a &lt; b &amp; c &gt; &quot;d&quot;' },
  { raw: 'plain', want: 'plain' },
])('esc($raw)', ({ raw, want }) => {
  expect(esc(raw)).toBe(want);
});
