// Hand-made bench levels for the report and chart tests (no llama-server needed).
import { summarize } from '../../bench/stats';
import type { LevelResult, Utilization } from '../../bench/types';

export function utilization(over: Partial<Utilization> = {}): Utilization {
  return { samples: 4, slotPct: 50, peakBusySlots: 3, totalSlots: 4, inFlightPct: 60, cpuPct: 45, hostCpuPct: 90, ...over };
}

/** One level of 8 requests over 1 s: `tps` tokens in all. */
export function benchLevel(target: LevelResult['target'], concurrency: number, tps: number, over: Partial<LevelResult> = {}): LevelResult {
  return {
    target,
    concurrency,
    requests: 8,
    failed: 0,
    wallMs: 1000,
    tokens: tps,
    tokensPerSecond: tps,
    ttftMs: summarize([2, 3, 4]),
    e2eMs: summarize([10, 20, 30]),
    queueWaitMs: summarize([0, 0, 1]),
    utilization: utilization(),
    errors: [],
    samples: [],
    timeline: [],
    ...over,
  };
}
