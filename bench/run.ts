// The three ways `slotwise bench` runs: `standard` (the fixed suite of `npm run bench`), `custom`
// (one sweep against a daemon hosted in this process), `attach` (one sweep against a running daemon).
import { access } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { requireDaemon } from '../cli/locate';
import { loadConfig } from '../daemon/config/load';
import type { Config, ModelConfig } from '../daemon/config/types';
import { setsThreads } from '../daemon/runtime/threads';
import { SlotwiseError } from '../shared/errors';
import { runSetup, type ProgressStream } from '../toolchain/setup';
import { ensureCachedTinyModel } from '../gguf/tiny-model';
import { ensureCachedTinyProjector } from '../gguf/tiny-projector';
import { describeEnvironment } from './environment';
import { BENCH_PROMPT, chatScenario, gpuPaceScenario, hostedSweep, loadScenario, modelConfig, routingScenario, type ChatScenarioOptions, type ScenarioContext } from './scenarios';
import { findStandIn, STAND_IN } from './stand-in';
import { typingScenario } from './typing';
import { priorityScenario } from './priority-load';
import { onDemandScenario } from './on-demand';
import { photosScenario } from './photos';
import { directKeysFromEnv, FLOOR_ENV, floorPidFromEnv } from './client-process';
import { fetchInstanceKeys, fetchSnapshot } from './status-sampler';
import { runSweep } from './sweep';
import { checkTargets } from './targets';
import type { BenchReport, MixEntry } from './types';

export interface BenchRequest extends ScenarioContext {
  mode: 'standard' | 'custom' | 'attach';
  /** A model name (from the config, or the attached daemon's) or a .gguf path; default the tiny model. */
  model?: string;
  concurrency: number[];
  requests: number;
  /** SweepOptions.perClient (`--per-client`). */
  perClient?: number;
  /** SweepOptions.warmUp (`--warm-up`). */
  warmUp?: number;
  mix: MixEntry[];
  direct: boolean;
  /** custom: the concurrency sweep (default), or the chat conversations with affinity on and off. */
  workload: 'sweep' | 'chat';
  /** custom: the hosted daemon's routing. */
  routing: Config['routing'];
  /** custom: overrides of the model's slots and replicas. */
  slots?: number;
  replicas?: number;
  /** chat: the mean pause before each later turn, ms (`--think-ms`), instead of CHAT.plan's. */
  thinkMs?: number;
  stateDir: string;
  configPath?: string;
  /** Where setup (finding or building llama-server) reports. */
  setupStream: ProgressStream;
}

/** The fixed suite: small enough for a few minutes on 2 cores with the tiny model. Levels last ~2 s
 * there, long enough for the 250 ms status polls to see the slots. */
export const STANDARD = {
  sweep: { slots: 8, concurrency: [1, 2, 4, 8, 16], requests: 64, maxTokens: 128 },
  // The same sweep against the stand-in at a GPU's pace: on 2 cores a real llama-server takes the
  // CPU the daemon and client need, so its sweep measures contention as much as the hop. Short
  // requests, so each stream's start (where the hop's cost is) weighs in the throughput. 192 per level: at c=16 a level lasts ~1.4 s, several 250 ms status polls (with 64 a level was ~0.5 s and its two polls often fell on the ramp).
  // And 48 per client above 4 (384 at c=8, 768 at c=16): at 192 the c=16 ratio of one build spread over 0.89–1.03 between runs, at 768 over 0.97–1.00.
  gpuPace: { slots: 8, concurrency: [1, 2, 4, 8, 16], requests: 192, perClient: 48, maxTokens: 16, tokenMs: 3 },
  // 8 clients on 8 slots: placement decides whether a request starts at once (a free slot somewhere)
  // or waits inside a full llama-server (round-robin). Above capacity both queue, and the p95 is the
  // queue's; measured at c=12: 1.00–1.19× overall either way.
  routing: { replicas: 2, slots: 4, concurrency: 8, requests: 96, short: 16, long: 256, shortPerLong: 3 },
  // The same against the stand-in (20 ms a token per slot, as on a GPU): on a 2-core host the two real
  // instances share the cores, so an idle one lends its CPU to the busy one and hides bad placement.
  routingStandIn: { replicas: 2, slots: 4, concurrency: 8, requests: 96, short: 8, long: 64, shortPerLong: 3, tokenMs: 20 },
  // 256 tokens at 20 tokens/s per stream: ~13 s with all 1,000 streams open, so the numbers
  // describe holding them, not only the burst of opening them (both are in the lag timeline).
  load: { streams: 1000, replicas: 4, slots: 250, maxTokens: 256, tokenIntervalMs: 50 },
  // An editor typing: bursts of 20 /infill requests 50 ms apart on one session, the `slow` FIM model
  // (dim 256, 4 layers). n_predict 512 holds a slot ~1 s here, about what a 64-token completion (the
  // extension's default) of a 7B coder model holds a GPU slot: the share of slot time a burst wastes
  // depends on that length, so it is set to a realistic one, not to the tiny model's 50 ms.
  typing: { dim: 256, layers: 4, slots: 4, keystrokes: 20, gapMs: 50, bursts: 3, baselineBursts: 1, pauseMs: 500, nPredict: 512 },
  // 16 background streams refilled on 4 slots (each ~0.5–1 s here) and 20 interactive requests at
  // random times (exponential gaps, seeded), priority on and off on one daemon.
  priority: { dim: 256, layers: 4, slots: 4, backgroundStreams: 16, backgroundMaxTokens: 128, interactiveRequests: 20, interactiveMaxTokens: 8, meanGapMs: 400, seed: 11 },
  // 4 text streams at 3 ms a token while 4.5 MiB photos are uploaded one after another (100 ms apart):
  // no photos, photos straight to the stand-in, photos through the daemon, 4 s each, twice.
  photos: { streams: 4, tokenMs: 3, phaseMs: 4000, rounds: 2, photoBytes: 4.5 * 2 ** 20, pauseMs: 100 },
  // The tiny model loads on demand 5 times (about 1 s each on 2 cores) and unloads between: ~10 s.
  onDemand: { repetitions: 5, slots: 1, maxTokens: 8 },
} as const;

/** `--workload chat`: 16 conversations × 6 turns, prompts growing from ~300 to ~1,500 tokens (the tiny
 * model's tokenizer, chat template included), against 2 × 4 slots unless --replicas/--slots say otherwise. */
export const CHAT = {
  replicas: 2,
  slots: 4,
  ctxPerSlot: 2048,
  // The model when --model is not given: dim 256 × 12 layers computes a prompt at ~0.5 ms a token on
  // one core of this 2-core VM, so a 1,500-token history costs ~0.8 s to recompute against ~70 ms for
  // a hit's new message (unloaded): prefill of the history is most of a miss's TTFT, as the issue's
  // chats on a GPU box. The dim-256 × 4 model computes 0.16 ms a token, so an unqueued miss cost only
  // 2–4× a hit under load (the other slots' decoding was most of either), within the runs' noise.
  // Measured (design.md "Cache-aware dequeue"): off ÷ on 1.39–5.97× over four runs, load-sensitive.
  model: { dim: 256, layers: 12 },
  // Off and on twice, in the order off, on, on, off, each mode pooled over both: one round each swung
  // 1.39–5.97× with the machine's other load, which hit one mode and not the other (design.md).
  rounds: 2,
  // Short user messages and long replies, as in real chats: each turn adds ~65 tokens of user message
  // to the reply (160 whole-word tokens, see replyLogitBias) that the slot already holds, so with
  // perfect routing ~87 % of the prompt tokens can come from a cache (first turns: none). The user
  // reads and writes ~4 s between turns, and conversations start spread over the first 4 s as users
  // arrive: with all 16 first turns at t = 0 on 8 slots, half of them queued 0.5–0.9 s in both runs, and
  // with 2 s gaps later turns often found all 8 slots busy, so TTFT measured the wait for a slot.
  plan: { conversations: 16, turns: 6, seed: 7, systemWords: 200, userWords: 50, maxTokens: 160, thinkMs: 4000, startSpreadMs: 4000 },
} as const;

export async function runBench(req: BenchRequest): Promise<BenchReport> {
  const started = performance.now();
  let report: Draft;
  if (req.mode === 'attach') report = await attached(req);
  else if (req.mode === 'custom') report = await custom(req);
  else report = await standard(req);
  return { ...report, targets: checkTargets(report), durationMs: performance.now() - started };
}

type Draft = Omit<BenchReport, 'targets' | 'durationMs'>;

async function attached(req: BenchRequest): Promise<Draft> {
  const ep = await requireDaemon(req.stateDir);
  const snapshot = await fetchSnapshot(ep.url, ep.token);
  const model = req.model ?? snapshot.models[0]?.name;
  if (!model) throw new SlotwiseError('SW_ERR_MODEL_NOT_FOUND', `bench: the daemon at ${ep.url} has no models — add one to its config`);
  // A child bench of a hosting bench gets the keys in its environment; a bench attached by hand asks the daemon.
  const directKeys = directKeysFromEnv(req.env) ?? (await fetchInstanceKeys(ep.url, ep.token));
  // A child bench of a hosting bench's GPU-pace sweep is also handed the bare proxy to measure.
  const floor = req.env[FLOOR_ENV];
  const sweep = await runSweep({ ...sweepOptions(req, model), ...(floor ? { floor } : {}), floorPid: floorPidFromEnv(req.env), url: ep.url, token: ep.token, directKeys, signal: req.signal, progress: req.progress });
  return { schema: 1, environment: await describeEnvironment(await fetchSnapshot(ep.url, ep.token), directKeys), run: { kind: 'custom', model, routing: 'daemon config' }, sweep };
}

async function custom(req: BenchRequest): Promise<Draft> {
  const config = await loadConfig({ path: req.configPath, env: req.env, allowMissing: !req.configPath });
  const model = await resolveModel(req, config, req.workload === 'chat' ? CHAT.model : undefined);
  if (config.llamaServer === 'auto') await runSetup({ env: req.env, quietIfCached: true, stderr: req.setupStream, signal: req.signal });
  if (req.workload === 'chat') return chatRun(req, model, config);
  const hosted = await hostedSweep(req, { model, routing: req.routing, llamaServer: config.llamaServer, queue: config.queue, sweep: sweepOptions(req, model.name) });
  return {
    schema: 1,
    environment: hosted.environment,
    run: { kind: 'custom', model: model.name, modelPath: model.path, routing: req.routing },
    sweep: hosted.sweep,
    sweepDaemon: hosted.daemon,
  };
}

/** The chat scenario's options for a model: the workload's layout unless --replicas/--slots say otherwise, the model's own args, context and host prompt cache. */
export function chatOptions(req: Pick<BenchRequest, 'replicas' | 'slots' | 'thinkMs'>, model: ModelConfig, config: Pick<Config, 'llamaServer'>): ChatScenarioOptions {
  const llamaServer = config.llamaServer === 'auto' ? undefined : config.llamaServer;
  const args = llamaServer ? model.args : [...model.args, ...(setsThreads(model.args) ? [] : threadArgs())];
  return {
    modelPath: model.path,
    replicas: req.replicas ?? CHAT.replicas,
    slots: req.slots ?? CHAT.slots,
    ctxPerSlot: Math.max(model.ctxPerSlot, CHAT.ctxPerSlot),
    plan: { ...CHAT.plan, ...(req.thinkMs !== undefined ? { thinkMs: req.thinkMs } : {}) },
    rounds: CHAT.rounds,
    args,
    ...(llamaServer !== undefined ? { llamaServer } : {}),
    promptCacheMiB: model.promptCacheMiB,
  };
}

async function chatRun(req: BenchRequest, model: ModelConfig, config: Config): Promise<Draft> {
  const o = chatOptions(req, model, config);
  const { replicas, slots, args = [] } = o;
  const { chat, environment } = await chatScenario(req, o);
  return {
    schema: 1,
    environment,
    run: { kind: 'custom', model: model.name, modelPath: model.path, routing: 'slot-aware', ...(args.length ? { llamaArgs: args } : {}) },
    // No sweep in this workload: an empty one keeps the report's shape.
    sweep: { options: { ...sweepOptions(req, model.name), concurrency: [], direct: false }, levels: [], comparisons: [], layout: { instances: replicas, slotsPerInstance: slots } },
    chat,
  };
}

async function standard(req: BenchRequest): Promise<Draft> {
  await runSetup({ env: req.env, quietIfCached: true, stderr: req.setupStream, signal: req.signal });
  const tiny = await ensureCachedTinyModel({ env: req.env, signal: req.signal });
  const S = STANDARD;
  const llamaArgs = threadArgs();
  req.progress?.line(`sweep: tiny model, 1 × ${S.sweep.slots} slots, c=${S.sweep.concurrency.join(',')}, ${S.sweep.requests} requests per level, daemon, direct and a bare Node proxy`);
  const hosted = await hostedSweep(req, {
    model: modelConfig('tiny', tiny, { slots: S.sweep.slots, replicas: 1, args: llamaArgs }),
    routing: 'slot-aware',
    // What any proxy hop costs in front of llama-server on this machine, whose cores it shares.
    floor: true,
    ownProcess: true,
    sweep: {
      model: 'tiny',
      concurrency: [...S.sweep.concurrency],
      requests: S.sweep.requests,
      mix: [{ maxTokens: S.sweep.maxTokens, weight: 1 }],
      direct: true,
      prompt: BENCH_PROMPT,
    },
  });
  const onDemand = await onDemandScenario(req, { modelPath: tiny, args: llamaArgs, ...S.onDemand });
  const routing = await routingScenario(req, { modelPath: tiny, args: llamaArgs, ...S.routing });
  const upstream = await findStandIn();
  let gpuPace: BenchReport['gpuPace'];
  if (upstream) gpuPace = await gpuPaceScenario(req, { modelPath: tiny, upstream, ...S.gpuPace });
  let routingStandIn: BenchReport['routingStandIn'];
  if (upstream) {
    const { tokenMs, ...o } = S.routingStandIn;
    routingStandIn = await routingScenario(req, { modelPath: tiny, args: ['--fake-token-ms', String(tokenMs)], standIn: upstream, ...o });
  }
  let load: BenchReport['load'];
  if (upstream) load = await loadScenario(req, { modelPath: tiny, upstream, ...S.load });
  let photos: BenchReport['photos'];
  if (upstream) photos = await photosScenario(req, { modelPath: tiny, mmproj: await ensureCachedTinyProjector({ env: req.env }), upstream, ...S.photos });
  else req.progress?.line(`load: skipped — the stand-in upstream ${STAND_IN} is not in this install (run from a source checkout)`);
  const { dim, layers, ...typingOptions } = S.typing;
  const coder = await ensureCachedTinyModel({ env: req.env, signal: req.signal, dim, layers, kind: 'fim' });
  const typing = await typingScenario(req, { modelPath: coder, args: llamaArgs, ...typingOptions });
  const { dim: pDim, layers: pLayers, ...priorityOptions } = S.priority;
  const slow = await ensureCachedTinyModel({ env: req.env, signal: req.signal, dim: pDim, layers: pLayers });
  const priority = await priorityScenario(req, { modelPath: slow, args: llamaArgs, ...priorityOptions });
  return {
    schema: 1,
    environment: hosted.environment,
    run: { kind: 'standard', model: 'tiny', modelPath: tiny, routing: 'slot-aware', llamaArgs },
    sweep: hosted.sweep,
    sweepDaemon: hosted.daemon,
    ...(gpuPace ? { gpuPace } : {}),
    routing,
    ...(routingStandIn ? { routingStandIn } : {}),
    load,
    ...(photos ? { photos } : {}),
    typing,
    priority,
    onDemand,
  };
}

/**
 * llama-server compute threads for the standard suite: all cores but one. With a thread on every
 * core, its spinning workers starve its own HTTP thread, the daemon and the client on a small
 * machine (on 2 cores: requests stalled 0.5 s at concurrency 2; with 1 thread, none did).
 */
function threadArgs(): string[] {
  return ['--threads', String(Math.max(1, availableParallelism() - 1))];
}

function sweepOptions(req: BenchRequest, model: string): BenchReport['sweep']['options'] {
  return { model, concurrency: req.concurrency, requests: req.requests, ...(req.perClient ? { perClient: req.perClient } : {}), ...(req.warmUp !== undefined ? { warmUp: req.warmUp } : {}), mix: req.mix, direct: req.direct, prompt: BENCH_PROMPT };
}

/** `--model`: a .gguf path, a model of the config, or (none given) the tiny model (`tiny`: its size, default the smallest). */
export async function resolveModel(
  req: Pick<BenchRequest, 'model' | 'slots' | 'replicas' | 'env' | 'signal'>,
  config: Config,
  tiny?: { dim: number; layers: number },
): Promise<ModelConfig> {
  const layout = { slots: req.slots ?? 4, replicas: req.replicas ?? 1 };
  if (req.model === undefined) return modelConfig('tiny', await ensureCachedTinyModel({ env: req.env, signal: req.signal, ...tiny }), layout);
  const configured = config.models.find((m) => m.name === req.model);
  if (configured) {
    const replicas = req.replicas ?? (configured.replicas === 'auto' ? 1 : Math.max(1, configured.replicas));
    return { ...configured, slots: req.slots ?? configured.slots, replicas, maxReplicas: Math.max(replicas, configured.maxReplicas), autostart: true };
  }
  if (/\.gguf$/i.test(req.model) || req.model.includes('/')) {
    const path = resolve(req.model);
    try {
      await access(path);
    } catch (err) {
      throw new SlotwiseError('SW_ERR_MODEL_FILE', `bench: model file not found: ${path}`, { cause: err });
    }
    return modelConfig('model', path, layout);
  }
  const known = config.models.map((m) => m.name).join(', ') || 'none';
  throw new SlotwiseError('SW_ERR_MODEL_NOT_FOUND', `bench: unknown model "${req.model}" — give a .gguf path or a configured model (${known})`);
}
