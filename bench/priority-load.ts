// The priority scenario: a saturating background load (streams continuously refilled, more than the
// slots) and interactive requests at random times. For each interactive request the daemon's lease
// records give the exact time for one slot to free: from its arrival to the first lease release after
// it. Run twice on one daemon: priority on (interactive requests sent as interactive) and off (sent as
// background: everything in one class, FIFO).
import { performance } from 'node:perf_hooks';
import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { mulberry32 } from '../platform/prng';
import type { LeaseRecord } from '../daemon/scheduler/scheduler';
import { hostDaemon } from './daemon-host';
import { BENCH_PROMPT, modelConfig, type ScenarioContext } from './scenarios';
import { firstReleaseAfter, releasesWhileWaiting } from './slot-time';
import { summarize } from './stats';
import { streamCompletion } from './stream-request';
import type { InteractiveSample, PriorityLoad, PriorityResult, PriorityRun } from './types';

export interface PriorityOptions extends PriorityLoad {
  modelPath: string;
  seed: number;
  args?: string[];
}

export async function priorityScenario(ctx: ScenarioContext, o: PriorityOptions): Promise<PriorityResult> {
  const model = modelConfig('tiny', o.modelPath, { slots: o.slots, replicas: 1, args: o.args });
  const host = await hostDaemon({ models: [model], routing: 'slot-aware', env: ctx.env });
  const agent = new Agent({ connections: o.backgroundStreams + o.interactiveRequests + 8 });
  const runs: PriorityRun[] = [];
  try {
    const { daemon } = host;
    await Promise.all(daemon.supervisor.instances('tiny').map((i) => i.ensureReady({ signal: ctx.signal })));
    const records: LeaseRecord[] = [];
    daemon.scheduler.on('lease', (r) => records.push(r));
    const base = { target: 'daemon' as const, baseUrl: daemon.url, token: daemon.token, model: 'tiny', dispatcher: agent, t0: performance.now() };
    for (const priority of [true, false]) {
      ctx.progress?.line(
        `priority ${priority ? 'on' : 'off'}: ${o.backgroundStreams} background streams (max_tokens ${o.backgroundMaxTokens}, refilled) on 1 × ${o.slots} slots, ` +
          `${o.interactiveRequests} interactive requests (max_tokens ${o.interactiveMaxTokens}) ~${o.meanGapMs} ms apart`,
      );
      const stop = new AbortController();
      setMaxListeners(o.backgroundStreams + 10, stop.signal); // one listener per stream: not a leak
      let backgroundDone = 0;
      let backgroundFailed = 0;
      const workers = Array.from({ length: o.backgroundStreams }, async (_, w) => {
        for (let n = 0; !stop.signal.aborted; n++) {
          const s = await streamCompletion({ ...base, prompt: `${BENCH_PROMPT} (${w}.${n})`, maxTokens: o.backgroundMaxTokens, priority: 'background', signal: stop.signal });
          if (s.ok) backgroundDone++;
          else if (!stop.signal.aborted) backgroundFailed++;
        }
      });
      // Saturated: every slot leased and the rest of the streams queued.
      const queued = o.backgroundStreams - o.slots;
      for (let i = 0; i < 600 && daemon.scheduler.waiting('tiny') < queued; i++) await sleep(50);
      const random = mulberry32(o.seed);
      const sent: Promise<{ sample: Awaited<ReturnType<typeof streamCompletion>> }>[] = [];
      for (let i = 0; i < o.interactiveRequests; i++) {
        ctx.progress?.update(`priority ${priority ? 'on' : 'off'}: interactive ${i + 1}/${o.interactiveRequests}`);
        sent.push(
          streamCompletion({ ...base, prompt: `Interactive question ${i}:`, maxTokens: o.interactiveMaxTokens, priority: priority ? 'interactive' : 'background' }).then((sample) => ({ sample })),
        );
        await sleep(-Math.log(1 - random()) * o.meanGapMs);
      }
      const done = await Promise.all(sent);
      // Every interactive lease recorded (its release comes just after its last byte).
      for (let i = 0; i < 200 && done.some(({ sample }) => sample.requestId && !records.some((r) => r.requestId === sample.requestId)); i++) await sleep(10);
      const releases = records.map((r) => r.releasedAt);
      const samples: InteractiveSample[] = done.map(({ sample }) => {
        const rec = records.find((r) => r.requestId === sample.requestId);
        const freed = rec && firstReleaseAfter(releases, rec.acceptedAt);
        return {
          ok: sample.ok,
          ...(sample.error ? { error: sample.error } : {}),
          ...(sample.ttftMs !== undefined ? { ttftMs: sample.ttftMs } : {}),
          queueWaitMs: sample.queueWaitMs,
          ...(rec && freed !== undefined ? { slotFreeMs: freed - rec.acceptedAt } : {}),
          ...(rec ? { releasesWaited: releasesWhileWaiting(releases, rec.acceptedAt, rec.leasedAt), backgroundStartsWhileWaiting: backgroundStarts(records, rec) } : {}),
          ...(sample.stages?.upstream !== undefined && sample.stages['first-byte'] !== undefined ? { upstreamMs: sample.stages.upstream + sample.stages['first-byte'] } : {}),
        };
      });
      stop.abort();
      await Promise.all(workers);
      // Idle before the next half: nothing leased, nothing queued.
      for (let i = 0; i < 200 && daemon.scheduler.busy('tiny'); i++) await sleep(25);
      records.length = 0;
      runs.push(priorityRun(priority, samples, backgroundDone, backgroundFailed));
    }
  } finally {
    await agent.close();
    await host.close();
  }
  return {
    slots: o.slots,
    backgroundStreams: o.backgroundStreams,
    backgroundMaxTokens: o.backgroundMaxTokens,
    interactiveRequests: o.interactiveRequests,
    interactiveMaxTokens: o.interactiveMaxTokens,
    meanGapMs: o.meanGapMs,
    runs,
  };
}

/**
 * A request "took the first freed slot" when its queue wait ends within this of the first release after
 * its arrival: the release and the dispatch it triggers are one microtask apart, the header rounds to 1 ms.
 */
export const FIRST_FREED_SLACK_MS = 5;

/**
 * Background leases granted after `rec` arrived and before it was granted its own slot. A slot is
 * granted when its lease begins, or when it is handed off (slot handoff: the request then sits in
 * llama-server, deferred on that slot, and its lease begins when the predecessor's ends).
 */
export function backgroundStarts(records: readonly Pick<LeaseRecord, 'priority' | 'leasedAt' | 'handedOffAt'>[], rec: Pick<LeaseRecord, 'acceptedAt' | 'leasedAt' | 'handedOffAt'>): number {
  const granted = (r: Pick<LeaseRecord, 'leasedAt' | 'handedOffAt'>): number => r.handedOffAt ?? r.leasedAt;
  return records.filter((r) => r.priority === 'background' && granted(r) > rec.acceptedAt && granted(r) < granted(rec)).length;
}

/** One half's figures from its samples. */
export function priorityRun(priority: boolean, samples: InteractiveSample[], backgroundDone: number, backgroundFailed: number): PriorityRun {
  const ok = samples.filter((s) => s.ok);
  const ttftMs = summarize(ok.flatMap((s) => (s.ttftMs !== undefined ? [s.ttftMs] : [])));
  const slotFreeMs = summarize(ok.flatMap((s) => (s.slotFreeMs !== undefined ? [s.slotFreeMs] : [])));
  const queueWaitMs = summarize(ok.map((s) => s.queueWaitMs));
  return {
    priority,
    samples,
    ttftMs,
    slotFreeMs,
    queueWaitMs,
    ttftOverSlotFree: ttftMs.p95 / slotFreeMs.p95,
    queueWaitOverSlotFree: queueWaitMs.p95 / slotFreeMs.p95,
    tookFirstFreed: ok.filter((s) => s.slotFreeMs !== undefined && s.queueWaitMs <= s.slotFreeMs + FIRST_FREED_SLACK_MS).length,
    backgroundStartsWhileWaiting: ok.reduce((n, s) => n + (s.backgroundStartsWhileWaiting ?? 0), 0),
    upstreamP95Ms: summarize(ok.flatMap((s) => (s.upstreamMs !== undefined ? [s.upstreamMs] : []))).p95,
    backgroundDone,
    backgroundFailed,
  };
}
