// Turns a level's raw samples and status timeline into the numbers the report shows.
import type { LevelRun } from './load';
import { ratio, summarize } from './stats';
import { steadySamples, summarizeTimeline } from './status-sampler';
import type { BenchTarget, Comparison, LevelResult, RequestSample, StatusSample, Summary, SweepOptions, SweepResult } from './types';

const MAX_ERRORS = 5;

/** The requests a level of `concurrency` clients runs: `requests`, or `perClient` each where that is more. */
export function levelRequests(o: Pick<SweepOptions, 'requests' | 'perClient'>, concurrency: number): number {
  return Math.max(o.requests, (o.perClient ?? 0) * concurrency);
}

export function buildLevel(target: BenchTarget, concurrency: number, run: LevelRun, timeline: StatusSample[], cpuUsPerRequest?: number): LevelResult {
  const samples = run.samples.filter((s) => s !== undefined);
  const ok = samples.filter((s) => s.ok);
  const tokens = samples.reduce((a, s) => a + s.tokens, 0);
  const lastStart = Math.max(0, ...samples.map((s) => s.startMs));
  const utilization = summarizeTimeline(steadySamples(timeline, lastStart));
  if (utilization.totalSlots > 0 && lastStart > 0) utilization.inFlightPct = occupancyPct(samples, utilization.totalSlots, 0, lastStart);
  const errors = [...new Set(samples.flatMap((s) => (s.error ? [s.error] : [])))].slice(0, MAX_ERRORS);
  return {
    target,
    concurrency,
    requests: samples.length,
    failed: samples.length - ok.length,
    wallMs: run.wallMs,
    tokens,
    tokensPerSecond: run.wallMs > 0 ? (tokens * 1000) / run.wallMs : 0,
    ttftMs: summarize(ok.flatMap((s) => (s.ttftMs === undefined ? [] : [s.ttftMs]))),
    e2eMs: summarize(ok.map((s) => s.e2eMs)),
    queueWaitMs: summarize(ok.map((s) => s.queueWaitMs)),
    ...(ok.some((s) => s.stages) ? { stagesMs: summarizeStages(ok) } : {}),
    ...(cpuUsPerRequest !== undefined ? { cpuUsPerRequest } : {}),
    utilization,
    errors,
    samples,
    timeline,
  };
}

/** The stages' names in the order the report shows them; `outside` is computed, the rest are the daemon's. */
export const STAGE_COLUMNS = ['parse', 'admit', 'queue', 'upstream', 'first-byte', 'total', 'outside'] as const;

/** Per stage over the samples that carried `Server-Timing`; `outside` = client TTFT − the daemon's total. */
export function summarizeStages(samples: readonly RequestSample[]): Record<string, Summary> {
  const values = new Map<string, number[]>();
  const add = (name: string, v: number): void => void (values.get(name) ?? values.set(name, []).get(name)!).push(v);
  for (const s of samples) {
    if (!s.stages) continue;
    for (const [name, v] of Object.entries(s.stages)) add(name, v);
    const total = s.stages.total;
    if (total !== undefined && s.ttftMs !== undefined) add('outside', s.ttftMs - total);
  }
  return Object.fromEntries([...values].map(([name, v]) => [name, summarize(v)]));
}

/**
 * Time-average of min(requests in flight, slots) ÷ slots over [fromMs, toMs], %, from each request's
 * start and end: exact where status polls only sample (and lag behind) the slots.
 */
export function occupancyPct(samples: readonly Pick<RequestSample, 'startMs' | 'e2eMs'>[], slots: number, fromMs: number, toMs: number): number {
  if (slots <= 0 || toMs <= fromMs) return NaN;
  const events = samples.flatMap((s) => [
    { t: s.startMs, d: 1 },
    { t: s.startMs + s.e2eMs, d: -1 },
  ]);
  events.sort((a, b) => a.t - b.t || a.d - b.d); // an end before a start at the same instant
  let inFlight = 0;
  let prev = fromMs;
  let area = 0;
  for (const e of events) {
    const t = Math.min(Math.max(e.t, fromMs), toMs);
    area += Math.min(inFlight, slots) * (t - prev);
    prev = t;
    inFlight += e.d;
  }
  area += Math.min(inFlight, slots) * (toMs - prev);
  return (100 * area) / (slots * (toMs - fromMs));
}

/** A proxied level against the direct one. */
function against(l: LevelResult, direct: LevelResult): NonNullable<Comparison['floor']> {
  return {
    throughputRatio: ratio(l.tokensPerSecond, direct.tokensPerSecond),
    addedTtftP50Ms: l.ttftMs.p50 - direct.ttftMs.p50,
    addedTtftP99Ms: l.ttftMs.p99 - direct.ttftMs.p99,
    ...(l.cpuUsPerRequest !== undefined ? { cpuUsPerRequest: l.cpuUsPerRequest } : {}),
  };
}

/** Slots the sweep's daemon had: above them a level queues. Undefined for a report without its layout. */
export function sweepSlots(layout: SweepResult['layout'] | undefined): number | undefined {
  return layout ? layout.instances * layout.slotsPerInstance : undefined;
}

/** Daemon vs direct at each concurrency where both ran (and the bare proxy vs direct where it ran too). */
export function compareLevels(levels: readonly LevelResult[]): Comparison[] {
  const out: Comparison[] = [];
  for (const d of levels.filter((l) => l.target === 'daemon')) {
    const direct = levels.find((l) => l.target === 'direct' && l.concurrency === d.concurrency);
    if (!direct) continue;
    const floor = levels.find((l) => l.target === 'floor' && l.concurrency === d.concurrency);
    out.push({
      concurrency: d.concurrency,
      ...against(d, direct),
      ...(floor ? { floor: against(floor, direct) } : {}),
    });
  }
  return out.sort((a, b) => a.concurrency - b.concurrency);
}
