// The benchmark's scenarios, each against a fresh daemon (in this process, or in its own as users run it): a concurrency sweep
// (daemon vs direct), routing (slot-aware vs round-robin on a mixed load), and many concurrent
// streams against the stand-in upstream.
import type { Config, ModelConfig } from '../daemon/config/types';
import { DEFAULT_HANDOFF_TOKENS, DEFAULT_PROMPT_CACHE_MIB } from '../daemon/config/rules';
import { setTimeout as sleep } from 'node:timers/promises';
import { readGgufHeader } from '../gguf/gguf';
import { cacheHitRatio, laterTurnsByReplica, planConversations, promptTokenTotals, promptTokens, replyLogitBias, runConversations, sameReplicaShare, ttftLessQueue, type ChatPlan, type ChatSample } from './chat';
import type { LeaseRecord } from '../daemon/scheduler/scheduler';
import { fetchInstanceKeys, fetchSnapshot } from './status-sampler';
import { defaultConfig } from '../daemon/config/validate';
import { runClient } from './client-process';
import { hostDaemon } from './daemon-host';
import { restartAfterFirstLoad } from './after-first-load';
import { startFloorProxy, type FloorProxy } from './floor-proxy';
import { measureProcess } from './process-measure';
import { spawnDaemon } from './soak-host';
import { describeEnvironment } from './environment';
import { summarize } from './stats';
import type { Progress } from './sweep';
import type { ChatResult, DaemonSide, Environment, GpuPaceResult, LevelResult, LoadResult, RoutingResult, SweepOptions, SweepResult } from './types';

export interface ScenarioContext {
  env: NodeJS.ProcessEnv;
  /** dist/cli.js, to run the load generator in its own process; undefined = in this process. */
  cliPath?: string;
  /**
   * dist/cli.js, to run the daemon of the sweeps and the load scenario as users run it (`node
   * dist/cli.js daemon`, hostedSweep's `ownProcess`), its RSS and loop lag its own; undefined = those
   * daemons are hosted in this process too.
   */
  daemonCliPath?: string;
  signal?: AbortSignal;
  progress?: Progress;
}

export interface HostedSweep {
  sweep: SweepResult;
  daemon: DaemonSide;
  environment: Environment;
}

/**
 * One model in a fresh daemon, one sweep against it, restarted first once its first load recorded the
 * placement, as a daemon runs after a model's first load (after-first-load.ts). `ownProcess`: the daemon runs as users run it
 * (`node dist/cli.js daemon`, when `ctx.daemonCliPath` is known), so its hop shares no event loop or
 * heap with the bench; else it is hosted in this process.
 */
export async function hostedSweep(
  ctx: ScenarioContext,
  /** `floor`: also run each level through the bare proxy (bench/floor-proxy.ts) in front of the first llama-server. */
  opts: { model: ModelConfig; routing: Config['routing']; sweep: SweepOptions; llamaServer?: string; queue?: Config['queue']; floor?: boolean; ownProcess?: boolean },
): Promise<HostedSweep> {
  if (opts.ownProcess && ctx.daemonCliPath) return spawnedSweep(ctx, ctx.daemonCliPath, opts);
  const host = await hostDaemon({ models: [opts.model], routing: opts.routing, llamaServer: opts.llamaServer, queue: opts.queue, env: ctx.env });
  let floor: FloorProxy | undefined;
  try {
    const { daemon } = host;
    ctx.progress?.update(`starting ${opts.model.replicas} × llama-server (${opts.model.slots} slots each)`);
    await Promise.all(daemon.supervisor.instances(opts.model.name).map((i) => i.ensureReady({ signal: ctx.signal })));
    await restartAfterFirstLoad({ url: daemon.url, token: daemon.token, stateDir: host.stateDir, model: opts.model.name, signal: ctx.signal });
    const instances = daemon.supervisor.instances(opts.model.name);
    const directKeys = instanceKeys(instances);
    const environment = await describeEnvironment(await fetchSnapshot(daemon.url, daemon.token), directKeys);
    if (opts.floor) floor = await startFloorProxy(`http://127.0.0.1:${instances[0]!.port}`, instances[0]!.endpoint?.socketPath, ctx.env);
    const sweep = floor ? { ...opts.sweep, floor: floor.url } : opts.sweep;
    host.startMeasuring();
    const { result, client } = await runClient({ ...ctx, sweep, url: daemon.url, token: daemon.token, stateDir: host.stateDir, directKeys, floorPid: floor?.pid });
    return { sweep: result, daemon: host.stopMeasuring(client), environment };
  } finally {
    await floor?.close();
    await host.close();
  }
}

/** hostedSweep() with the daemon in its own process: its loop lag and RSS are that process's. */
async function spawnedSweep(ctx: ScenarioContext, cliPath: string, opts: Parameters<typeof hostedSweep>[1]): Promise<HostedSweep> {
  ctx.progress?.update(`starting the daemon (node ${cliPath} daemon) and ${opts.model.replicas} × llama-server (${opts.model.slots} slots each)`);
  const d = await spawnDaemon({ cliPath, model: opts.model, llamaServer: opts.llamaServer ?? defaultConfig().llamaServer, routing: opts.routing, queue: opts.queue, env: ctx.env, signal: ctx.signal });
  let floor: FloorProxy | undefined;
  try {
    const snapshot = (await restartAfterFirstLoad({ url: d.url, token: d.token, stateDir: d.stateDir, model: opts.model.name, signal: ctx.signal })) ?? (await fetchSnapshot(d.url, d.token));
    const directKeys = await fetchInstanceKeys(d.url, d.token);
    const environment = await describeEnvironment(snapshot, directKeys);
    const first = snapshot.models.find((m) => m.name === opts.model.name)?.instances.find((i) => i.port !== undefined);
    if (opts.floor && first) floor = await startFloorProxy(`http://127.0.0.1:${first.port}`, first.socket, ctx.env);
    const sweep = floor ? { ...opts.sweep, floor: floor.url } : opts.sweep;
    const measure = await measureProcess(d);
    const run = await runClient({ ...ctx, sweep, url: d.url, token: d.token, stateDir: d.stateDir, directKeys, floorPid: floor?.pid }).catch(async (err: unknown) => {
      await measure.stop().catch(() => undefined); // the timers end; the sweep's error is the one to report
      throw err;
    });
    return { sweep: run.result, daemon: await measure.stop(), environment };
  } finally {
    await floor?.close();
    await d.stop();
  }
}

export interface RoutingOptions {
  modelPath: string;
  replicas: number;
  slots: number;
  concurrency: number;
  requests: number;
  short: number;
  long: number;
  /** Short requests per long one. */
  shortPerLong: number;
  /** Extra llama-server flags. */
  args?: string[];
  /** The stand-in script to run instead of llama-server. */
  standIn?: string;
}

/** The same mixed load through round-robin and slot-aware routing, one fresh daemon each. */
export async function routingScenario(ctx: ScenarioContext, o: RoutingOptions): Promise<RoutingResult> {
  const runs: RoutingResult['runs'] = [];
  for (const routing of ['round-robin', 'slot-aware'] as const) {
    ctx.progress?.line(`routing${o.standIn ? ' (stand-in upstream)' : ''}: ${routing}, ${o.replicas} × ${o.slots} slots, ${o.requests} requests (max_tokens ${o.short} ×${o.shortPerLong} : ${o.long} ×1) at c=${o.concurrency}`);
    const { sweep } = await hostedSweep(ctx, {
      model: modelConfig('tiny', o.modelPath, { slots: o.slots, replicas: o.replicas, args: o.args }),
      routing,
      llamaServer: o.standIn,
      sweep: {
        model: 'tiny',
        concurrency: [o.concurrency],
        requests: o.requests,
        mix: [
          { maxTokens: o.short, weight: o.shortPerLong },
          { maxTokens: o.long, weight: 1 },
        ],
        direct: false,
        prompt: BENCH_PROMPT,
      },
    });
    const level = sweep.levels[0]!;
    runs.push({ routing, level, shortE2eMs: e2eOf(level, (n) => n === o.short), longE2eMs: e2eOf(level, (n) => n === o.long) });
  }
  const [rr, sa] = runs as [RoutingResult['runs'][number], RoutingResult['runs'][number]];
  return {
    upstream: o.standIn ? 'stand-in' : 'llama-server',
    replicas: o.replicas,
    slotsPerInstance: o.slots,
    concurrency: o.concurrency,
    runs,
    p95Ratio: rr.level.e2eMs.p95 / sa.level.e2eMs.p95,
    shortP95Ratio: rr.shortE2eMs.p95 / sa.shortE2eMs.p95,
  };
}

function e2eOf(level: LevelResult, pick: (maxTokens: number) => boolean): ReturnType<typeof summarize> {
  return summarize(level.samples.filter((s) => s.ok && pick(s.maxTokens)).map((s) => s.e2eMs));
}

export interface GpuPaceOptions {
  modelPath: string;
  /** The stand-in llama-server script. */
  upstream: string;
  slots: number;
  concurrency: readonly number[];
  requests: number;
  /** SweepOptions.perClient. */
  perClient?: number;
  /** SweepOptions.warmUp. */
  warmUp?: number;
  maxTokens: number;
  tokenMs: number;
}

/** The daemon-vs-direct sweep against the stand-in generating at a GPU's pace. */
export async function gpuPaceScenario(ctx: ScenarioContext, o: GpuPaceOptions): Promise<GpuPaceResult> {
  ctx.progress?.line(`sweep at GPU pace: stand-in upstream, 1 × ${o.slots} slots, ${o.tokenMs} ms a token, c=${o.concurrency.join(',')}, daemon, direct and a bare Node proxy`);
  const { sweep, daemon } = await hostedSweep(ctx, {
    floor: true,
    // Closing each stream's connection as llama-server does: every client of it (direct, the bare proxy,
    // the daemon) needs a connection per stream, as in front of a real one.
    model: modelConfig('stand-in', o.modelPath, { slots: o.slots, replicas: 1, args: ['--fake-token-ms', String(o.tokenMs), '--fake-close-after-stream'] }),
    ownProcess: true,
    routing: 'slot-aware',
    llamaServer: o.upstream,
    sweep: { model: 'stand-in', concurrency: [...o.concurrency], requests: o.requests, ...(o.perClient ? { perClient: o.perClient } : {}), ...(o.warmUp !== undefined ? { warmUp: o.warmUp } : {}), mix: [{ maxTokens: o.maxTokens, weight: 1 }], direct: true, prompt: BENCH_PROMPT },
  });
  return { tokenMs: o.tokenMs, sweep, daemon };
}

export interface ChatScenarioOptions {
  modelPath: string;
  replicas: number;
  slots: number;
  ctxPerSlot: number;
  plan: ChatPlan;
  /** Rounds of off and on (default 1), ABBA order; the ratio pools each mode's requests over them. */
  rounds?: number;
  args?: string[];
  llamaServer?: string;
  /** The model's host prompt cache (default: auto). */
  promptCacheMiB?: number | 'auto';
}

/** Affinity of each run: off, on, then on, off, … (ABBA), so a drift in the machine's load over the run hits both modes alike. */
export function chatRunOrder(rounds: number): boolean[] {
  return Array.from({ length: rounds }, (_, r) => (r % 2 === 0 ? [false, true] : [true, false])).flat();
}

/** The chat conversations through a fresh daemon per run: prompt-cache affinity off and on, `rounds` times. */
export async function chatScenario(ctx: ScenarioContext, o: ChatScenarioOptions): Promise<{ chat: ChatResult; environment: Environment }> {
  const conversations = planConversations(o.plan);
  const logitBias = await wordLogitBias(o.modelPath, ctx.signal);
  if (!logitBias) ctx.progress?.line('chat: the vocab lacks whole-word tokens of the workload, so replies are free text and may not re-tokenize as generated');
  const runs: ChatResult['runs'] = [];
  const rounds = o.rounds ?? 1;
  const pooled = new Map<boolean, ChatSample[]>([[false, []], [true, []]]);
  let environment: Environment | undefined;
  for (const [i, affinity] of chatRunOrder(rounds).entries()) {
    const round = Math.floor(i / 2);
    ctx.progress?.line(`chat: ${o.plan.conversations} conversations × ${o.plan.turns} turns, ${o.replicas} × ${o.slots} slots, affinity ${affinity ? 'on' : 'off'}${rounds > 1 ? ` (round ${round + 1}/${rounds})` : ''}`);
    const model = modelConfig('tiny', o.modelPath, { slots: o.slots, replicas: o.replicas, args: o.args, ctxPerSlot: o.ctxPerSlot, affinity, promptCacheMiB: o.promptCacheMiB });
    const host = await hostDaemon({ models: [model], routing: 'slot-aware', llamaServer: o.llamaServer, env: ctx.env });
    try {
      const { daemon } = host;
      await Promise.all(daemon.supervisor.instances(model.name).map((i) => i.ensureReady({ signal: ctx.signal })));
      await restartAfterFirstLoad({ url: daemon.url, token: daemon.token, stateDir: host.stateDir, model: model.name, signal: ctx.signal });
      environment ??= await describeEnvironment(await fetchSnapshot(daemon.url, daemon.token), instanceKeys(daemon.supervisor.instances(model.name)));
      const total = o.plan.conversations * o.plan.turns;
      // Where each request ran: the daemon's lease records, joined to the samples by request id.
      const leases = new Map<string, LeaseRecord>();
      daemon.scheduler.on('lease', (r) => leases.set(r.requestId, r));
      const { level, samples } = await runConversations({
        url: daemon.url,
        token: daemon.token,
        model: model.name,
        conversations,
        maxTokens: o.plan.maxTokens,
        ...(logitBias !== undefined ? { logitBias } : {}),
        signal: ctx.signal,
        onProgress: (done) => ctx.progress?.update(`chat, affinity ${affinity ? 'on' : 'off'}: ${done}/${total}`),
      });
      // A lease is recorded at its release, just after the last byte reached the client: wait for the last ones.
      const until = Date.now() + 2000;
      while (Date.now() < until && samples.some((s) => s.requestId !== undefined && !leases.has(s.requestId))) await sleep(10);
      placeSamples(samples, leases);
      const ok = samples.filter((s) => s.ok);
      pooled.get(affinity)!.push(...ok);
      const ttftOf = (some: readonly ChatSample[]): ReturnType<typeof summarize> => summarize(some.flatMap((s) => (s.ttftMs !== undefined ? [s.ttftMs] : [])));
      const ttft = (pick: (turn: number) => boolean): ReturnType<typeof summarize> => ttftOf(ok.filter((s) => pick(s.turn)));
      const byReplica = laterTurnsByReplica(ok);
      runs.push({
        affinity,
        ...(rounds > 1 ? { round } : {}),
        level,
        hitRatio: cacheHitRatio(ok),
        promptTokens: promptTokens(ok),
        promptTokensTotal: promptTokenTotals(ok),
        firstTurnTtftMs: ttft((t) => t === 0),
        laterTurnTtftMs: ttft((t) => t > 0),
        ttftLessQueueMs: ttftLessQueue(ok),
        sameReplicaShare: sameReplicaShare(ok),
        sameReplicaTtftMs: ttftOf(byReplica.same),
        otherReplicaTtftMs: ttftOf(byReplica.other),
      });
    } finally {
      await host.close();
    }
  }
  const both = [false, true].map((affinity) => {
    const all = pooled.get(affinity)!;
    return { affinity, ttftMs: summarize(all.flatMap((s) => (s.ttftMs !== undefined ? [s.ttftMs] : []))), hitRatio: cacheHitRatio(all) };
  });
  const [off, on] = both as [(typeof both)[number], (typeof both)[number]];
  const chat: ChatResult = {
    conversations: o.plan.conversations,
    turns: o.plan.turns,
    replicas: o.replicas,
    slotsPerInstance: o.slots,
    maxTokens: o.plan.maxTokens,
    wordBias: logitBias !== undefined,
    thinkMs: o.plan.thinkMs,
    startSpreadMs: o.plan.startSpreadMs,
    rounds,
    promptCacheMiB: o.promptCacheMiB ?? DEFAULT_PROMPT_CACHE_MIB,
    pooled: both,
    runs,
    ttftP50Ratio: off.ttftMs.p50 / on.ttftMs.p50,
  };
  return { chat, environment: environment! };
}

/** Adds each sample's replica and slot from the lease record of its request id (a request that never took a slot has none). */
export function placeSamples(samples: ChatSample[], leases: ReadonlyMap<string, Pick<LeaseRecord, 'instanceId' | 'slot'>>): void {
  for (const s of samples) {
    const lease = s.requestId !== undefined ? leases.get(s.requestId) : undefined;
    if (!lease) continue;
    s.instanceId = lease.instanceId;
    if (lease.slot !== undefined) s.slot = lease.slot;
  }
}

/** The reply bias for the model's vocab (`replyLogitBias`), or undefined when it has none. */
async function wordLogitBias(modelPath: string, signal?: AbortSignal): Promise<Record<string, number> | undefined> {
  const tokens = (await readGgufHeader(modelPath, { signal })).metadata.get('tokenizer.ggml.tokens');
  return tokens?.type === 'array' && tokens.itemType === 'string' ? replyLogitBias(tokens.value) : undefined;
}

export interface LoadOptions {
  modelPath: string;
  /** The stand-in llama-server script. */
  upstream: string;
  streams: number;
  replicas: number;
  slots: number;
  maxTokens: number;
  tokenIntervalMs: number;
  /** SweepOptions.warmUp. */
  warmUp?: number;
}

/**
 * `streams` concurrent streams through the daemon against the stand-in upstream. The daemon runs in
 * its own process when `ctx.daemonCliPath` is known, so its RSS is its own (hosted here, it would
 * count the bench's heap and whatever the earlier scenarios left).
 */
export async function loadScenario(ctx: ScenarioContext, o: LoadOptions): Promise<LoadResult> {
  const where = ctx.daemonCliPath ? 'daemon in its own process' : 'daemon hosted in the bench process';
  ctx.progress?.line(`load: ${o.streams} concurrent streams, ${o.replicas} × ${o.slots}-slot stand-in upstream, a token every ${o.tokenIntervalMs} ms, ${where}`);
  const model = modelConfig('stand-in', o.modelPath, { slots: o.slots, replicas: o.replicas, args: ['--fake-token-ms', String(o.tokenIntervalMs)] });
  const queue: Config['queue'] = { maxWaiting: o.streams * 2, timeoutMs: 120_000, backgroundMaxWaitMs: 30_000, sessionHoldMs: 150, handoffTokens: DEFAULT_HANDOFF_TOKENS };
  const sweep: SweepOptions = { model: 'stand-in', concurrency: [o.streams], requests: o.streams, ...(o.warmUp !== undefined ? { warmUp: o.warmUp } : {}), mix: [{ maxTokens: o.maxTokens, weight: 1 }], direct: false, prompt: BENCH_PROMPT };
  const hosted = await hostedSweep(ctx, { model, routing: 'slot-aware', llamaServer: o.upstream, queue, sweep, ownProcess: true });
  return { streams: o.streams, replicas: o.replicas, slotsPerInstance: o.slots, tokenIntervalMs: o.tokenIntervalMs, level: hosted.sweep.levels[0]!, daemon: hosted.daemon };
}

/** The prompt every bench request sends. */
export const BENCH_PROMPT = 'Write a short story about a lighthouse keeper who finds a message in a bottle.';

/** Each replica's key by id, as GET /api/instance-keys answers it: what the bench needs to reach llama-server directly. */
function instanceKeys(instances: readonly { id: string; apiKey: string }[]): Record<string, string> {
  return Object.fromEntries(instances.map((i) => [i.id, i.apiKey]));
}

export function modelConfig(
  name: string,
  path: string,
  o: { slots: number; replicas: number; args?: string[]; ctxPerSlot?: number; affinity?: boolean; promptCacheMiB?: number | 'auto' },
): ModelConfig {
  return {
    name,
    path,
    slots: o.slots,
    ctxPerSlot: o.ctxPerSlot ?? 512,
    gpuLayers: 'auto',
    replicas: o.replicas,
    maxReplicas: o.replicas,
    autostart: true,
    args: o.args ?? [],
    affinity: o.affinity ?? true,
    kind: 'completion',
    reservedSlots: 0,
    promptCacheMiB: o.promptCacheMiB ?? DEFAULT_PROMPT_CACHE_MIB,
    load: 'always',
    idleUnloadMs: 0,
    pinned: false,
    maxSlots: 16,
  };
}
