// The memory plan of one llama-server: bytes per device (each GPU, host RAM) for its weights, KV cache,
// compute buffer and output buffer at a given slots × ctxPerSlot × gpuLayers, as llama.cpp will
// allocate them. Pure: model facts and free memory in, numbers out.
//
// How llama.cpp sizes each part (pinned source, src/):
// - context: n_ctx = pad256(slots × ctxPerSlot); each slot gets n_ctx_seq = pad256(n_ctx / slots)
//   cells, unless the cache is unified (-kvu): one stream of n_ctx cells (llama-context.cpp).
// - KV cache: per cell and layer, one K row (n_head_kv × key_length) and one V row
//   (n_head_kv × value_length) of the cache type; a layer's cache lives on its layer's device
//   (llama-kv-cache.cpp). A sliding-window layer holds only its window per sequence plus a ubatch
//   (llama-kv-cache-iswa.cpp; sliding-window.ts says which layers, for which architectures). A
//   recurrent layer has no KV cache but a fixed f32 state per slot, counted in `kv` too
//   (llama-memory-recurrent.cpp; recurrent.ts).
// - placement: the last gpuLayers of the n_layer + 1 "layers" (the blocks, then the output) go to the
//   GPUs, split by free memory; the input embedding always stays on the host (llama-model.cpp).
// - output buffer: one row of logits (n_vocab f32) per slot, in host memory (llama-context.cpp).
// - compute buffer: the worst-case graph of one ubatch (sched_reserve). Fitted on what the real
//   llama-server prints for llama-architecture models of several shapes (test/integration/memory-plan.test.ts):
//     flash attention: ub × 4 B × (3 n_ff + min(n_ff, 4 n_embd)) + n_kv × ub × 2 B (the f16 mask)
//     without:         ub × 4 B × (n_kv × (n_head + 1) + 7 n_embd) (KQ scores and f32 mask dominate)
//   With layers on a GPU, that GPU holds the graph and the host keeps a small buffer for the input
//   embeddings (ub × n_embd × 6 B; an estimate, not calibrated on a GPU).
// - draft model (`draft`): a second model with the same slots and context (common/speculative.cpp
//   common_base_params_to_speculative), planned like the model with its own -ngld and cache types.
// - projector (`mmproj`): its weights and its encoder's compute buffer, all on the first GPU (host RAM
//   with `--no-mmproj-offload` or on a host without one), whatever gpuLayers says (tools/mtmd/clip.cpp;
//   projector.ts).
import type { GpuLayers, ModelConfig } from '../config/types';
import { SlotwiseError } from '../../shared/errors';
import { ggmlTensorBytes, ggmlTypeId } from '../../gguf/gguf';
import type { ModelFacts } from './model-facts';
import { DEFAULT_SERVER_MEMORY_OPTIONS, serverMemoryOptions, type ServerMemoryOptions, type TensorOverride } from './server-args';
import { resolvePromptCacheMiB } from './prompt-cache';
import { windowCells } from './sliding-window';
import { checkpointBytes, checkpointsPerSlot, draftCheckpointBytes } from './checkpoints';

// ---------------------------------------------------------------------------------------------
// Types

export interface PlanSettings {
  slots: number;
  ctxPerSlot: number;
  gpuLayers: GpuLayers;
  /** Flags from the model's llama-server args; default llama.cpp's. */
  server?: ServerMemoryOptions;
  /** The model's `promptCacheMiB`: its host prompt cache at that limit counts on the host (prompt-cache.ts); default none. */
  promptCacheMiB?: number | 'auto';
  /** Host RAM, bytes: bounds an "auto" prompt cache. */
  hostBytes?: number;
  /** The projector's file (the plan reads its facts from ModelFacts.projector; calibration keys by it). */
  mmproj?: string;
  /** The draft model's file (the plan reads its facts from ModelFacts.draft; calibration keys by it). */
  draft?: string;
  /** false: count no context checkpoints (a draft's own plan: its share is in its target's checkpoints). */
  checkpoints?: false;
}

/** Free memory now, bytes. */
export interface FreeMemory {
  host: number;
  /** One per GPU, by index; empty on a host without one. */
  gpus: { index: number; free: number }[];
}

/** One device's share of the plan, bytes. */
export interface DevicePlan {
  /** `host` or `gpu0`, `gpu1`, … */
  device: string;
  /** For people: `host RAM`, `GPU 0`. */
  label: string;
  /** Blocks placed here (the output layer is not counted). */
  layers: number;
  weights: number;
  kv: number;
  compute: number;
  /** Logits of the last token per slot (host only). */
  output: number;
  /** The prompt cache at its limit (host only; present when there is one): it fills as prompts are saved. */
  promptCache?: number;
  /** The multimodal projector: its weights and its encoder's compute buffer (present on its device when the model has one). */
  projector?: number;
  /** llama-server's context checkpoints at their limit (host only; present for a model with window or recurrent layers): they fill as prompts are read (checkpoints.ts). */
  checkpoints?: number;
  /** A draft model's weights, KV cache and buffers here (present on the devices it uses, with `draft` configured). */
  draft?: number;
  total: number;
}

export interface MemoryPlan {
  slots: number;
  ctxPerSlot: number;
  /** Layers offloaded, as llama.cpp counts them: 0 … layers + 1 (the +1 is the output layer). */
  gpuLayers: number;
  /** KV cells of one slot as llama.cpp sizes them (ctxPerSlot rounded up to 256). */
  cellsPerSlot: number;
  /** KV cache bytes of one slot, all devices together. */
  kvPerSlot: number;
  /** Host first, then each GPU. */
  devices: DevicePlan[];
  total: number;
  /** Things a user should know that do not stop the plan, e.g. a context beyond the training context. */
  notes: string[];
}

/** What a fit check reads of a plan: each device's total, prompt cache included (a MemoryPlan, or one rebuilt from status). */
export interface FitPlan {
  devices: readonly Pick<DevicePlan, 'device' | 'label' | 'total' | 'promptCache' | 'checkpoints'>[];
}

/** A device that the plan does not fit on. */
export interface Shortfall {
  device: string;
  label: string;
  needs: number;
  has: number;
  /** The prompt cache's part of `needs` (host RAM only; absent when the plan has none). */
  promptCache?: number;
  /** The context checkpoints' part of `needs` (host RAM only; absent when the model makes none). */
  checkpoints?: number;
}

export interface FitResult {
  fits: boolean;
  shortfalls: Shortfall[];
}

// ---------------------------------------------------------------------------------------------
// Plan

const PAD = 256;
const F32 = 4;
const HOST = 'host';

/**
 * The plan for `settings`; with gpuLayers 'auto', as many layers as fit the GPUs' free memory. A draft
 * model (`facts.draft`) is planned first, as llama-server loads it (same slots and context, its own
 * -ngld and cache types), and the model in the room it leaves; its share is each device's `draft`.
 */
export function planMemory(facts: ModelFacts, settings: PlanSettings, free: FreeMemory): MemoryPlan {
  if (!facts.draft) return planModel(facts, settings, free);
  const server = settings.server ?? DEFAULT_SERVER_MEMORY_OPTIONS;
  const draft = planModel(facts.draft, { slots: settings.slots, ctxPerSlot: settings.ctxPerSlot, gpuLayers: server.draft.gpuLayers, server: draftServerOptions(server), checkpoints: false }, free);
  const room: FreeMemory = { host: free.host, gpus: free.gpus.map((g) => ({ ...g, free: Math.max(0, g.free - (draft.devices.find((d) => d.device === `gpu${g.index}`)?.total ?? 0)) })) };
  const plan = planModel(facts, settings, room);
  for (const d of plan.devices) {
    const share = draft.devices.find((x) => x.device === d.device)?.total ?? 0;
    if (share > 0) {
      d.draft = share;
      d.total += share;
    }
  }
  return { ...plan, total: plan.devices.reduce((a, d) => a + d.total, 0) };
}

/** The options a draft model is loaded with: the target's batch, attention and KV layout, its own cache types (-ctkd/-ctvd). */
function draftServerOptions(server: ServerMemoryOptions): ServerMemoryOptions {
  return { ...DEFAULT_SERVER_MEMORY_OPTIONS, ubatch: server.ubatch, batch: server.batch, flashAttn: server.flashAttn, kvUnified: server.kvUnified, cacheTypeK: server.draft.cacheTypeK, cacheTypeV: server.draft.cacheTypeV };
}

/**
 * Bytes of one context checkpoint of a slot: the model's state that cannot be rolled back, and its
 * draft model's with it (checkpoints.ts); 0 for a model that makes none (a draft alone makes none).
 */
export function checkpointSize(facts: ModelFacts, server: ServerMemoryOptions, ctxPerSlot: number, kvPerCell = kvBytesPerCell(facts, server)): number {
  const own = checkpointBytes(facts, { kvPerCell, swaFull: server.swaFull, ctxPerSlot });
  if (own === 0 || !facts.draft) return own;
  return own + draftCheckpointBytes(facts.draft, { kvPerCell: kvBytesPerCell(facts.draft, draftServerOptions(server)), swaFull: server.swaFull, ctxPerSlot });
}

function planModel(facts: ModelFacts, settings: PlanSettings, free: FreeMemory): MemoryPlan {
  if (settings.gpuLayers !== 'auto' || free.gpus.length === 0) {
    return planWithLayers(facts, settings, free, settings.gpuLayers === 'auto' ? 0 : settings.gpuLayers);
  }
  // GPU memory only grows with each layer offloaded: the first count from the top that fits every GPU is the most.
  for (let n = facts.layers + 1; n > 0; n--) {
    const plan = planWithLayers(facts, settings, free, n);
    if (checkFit(plan, free, { gpusOnly: true }).fits) return plan;
  }
  return planWithLayers(facts, settings, free, 0);
}

function planWithLayers(facts: ModelFacts, settings: PlanSettings, free: FreeMemory, gpuLayers: number | 'all'): MemoryPlan {
  const server = settings.server ?? DEFAULT_SERVER_MEMORY_OPTIONS;
  const { slots, ctxPerSlot } = settings;
  const nGpu = free.gpus.length === 0 ? 0 : gpuLayers === 'all' ? facts.layers + 1 : Math.min(gpuLayers, facts.layers + 1);
  const place = placement(facts.layers, nGpu, free.gpus.map((g) => g.free));

  const nCtx = padUp(slots * ctxPerSlot);
  const cellsPerSlot = server.kvUnified ? nCtx / slots : padUp(Math.floor(nCtx / slots));
  const cells = server.kvUnified ? nCtx : slots * cellsPerSlot;
  const nKv = server.kvUnified ? nCtx : cellsPerSlot; // cells one stream's attention spans
  const kvCellBytes = kvBytesPerCell(facts, server); // per layer
  const ub = Math.min(server.ubatch, server.batch, nCtx);
  const layerCells = kvCellsPerLayer(facts, { cells, streams: server.kvUnified ? 1 : slots, slots, ub, swaFull: server.swaFull });

  const devices: DevicePlan[] = [HOST, ...free.gpus.map((g) => `gpu${g.index}`)].map((device) => ({
    device,
    label: device === HOST ? 'host RAM' : `GPU ${device.slice(3)}`,
    layers: 0,
    weights: 0,
    kv: 0,
    compute: 0,
    output: 0,
    total: 0,
  }));
  const host = devices[0]!;
  host.weights += facts.inputBytes;
  for (let il = 0; il < facts.layers; il++) {
    const d = devices[place.layer[il]! + 1]!;
    d.layers++;
    if (server.tensorOverrides.length === 0) d.weights += facts.layerBytes[il]!;
    else for (const t of facts.layerTensors[il]!) (overriddenTo(t.name, server.tensorOverrides, devices) ?? d).weights += t.bytes;
    (server.kvOffload ? d : host).kv += layerCells[il]! * kvCellBytes[il]! + (facts.recurrent?.layers[il] ? slots * facts.recurrent.bytesPerSequence : 0);
  }
  const out = devices[place.output + 1]!;
  out.weights += facts.outputBytes + (out === host ? 0 : facts.tiedOutputBytes);
  host.output = slots * facts.vocabSize * F32;

  const graph = computeBytes(facts, ub, nKv, server.flashAttn);
  const gpusUsed = devices.slice(1).filter((d) => d.layers > 0 || (d === out && out !== host));
  if (gpusUsed.length === 0) host.compute = graph;
  else {
    for (const d of gpusUsed) d.compute = graph;
    host.compute = ub * facts.embeddingLength * 6;
  }
  const cacheMiB = settings.promptCacheMiB === undefined ? 0 : resolvePromptCacheMiB(settings.promptCacheMiB, kvBytesPerToken(facts, server), slots, ctxPerSlot, settings.hostBytes);
  if (cacheMiB > 0) host.promptCache = cacheMiB * 2 ** 20;
  if (facts.projector) (server.mmproj === 'gpu' ? (devices[1] ?? host) : host).projector = facts.projector.weightBytes + facts.projector.computeBytes;
  const checkpoint = settings.checkpoints === false ? 0 : checkpointSize(facts, server, ctxPerSlot, kvCellBytes);
  if (checkpoint > 0) host.checkpoints = slots * checkpointsPerSlot(server.ctxCheckpoints, checkpoint, slots, settings.hostBytes) * checkpoint;
  for (const d of devices) d.total = d.weights + d.kv + d.compute + d.output + (d.projector ?? 0) + fillsLater(d);

  const kvTotal = devices.reduce((a, d) => a + d.kv, 0);
  const notes: string[] = [];
  if (facts.contextLength > 0 && ctxPerSlot > facts.contextLength) {
    notes.push(`ctxPerSlot ${ctxPerSlot} is beyond the model's training context ${facts.contextLength}: llama-server caps each slot at ${facts.contextLength}`);
  }
  if (free.gpus.length === 0 && typeof gpuLayers === 'number' && gpuLayers > 0) notes.push(`no GPU found: gpuLayers ${gpuLayers} has no effect, everything is on the host`);
  return {
    slots,
    ctxPerSlot,
    gpuLayers: nGpu,
    cellsPerSlot,
    kvPerSlot: kvTotal / slots,
    devices,
    total: devices.reduce((a, d) => a + d.total, 0),
    notes,
  };
}

/** The device the first matching override sends a tensor to (llama-model-loader.cpp), if it is one of the plan's. */
function overriddenTo(name: string, overrides: readonly TensorOverride[], devices: readonly DevicePlan[]): DevicePlan | undefined {
  const o = overrides.find((x) => x.pattern.test(name));
  return o?.device === undefined ? undefined : devices.find((d) => d.device === o.device);
}

/**
 * KV cells of each layer, all streams together: `cells` in a full-attention layer; in a sliding-window
 * layer one window per sequence of its stream plus a ubatch, per stream (sliding-window.ts); none in a
 * recurrent layer, whose state per slot the caller adds (recurrent.ts).
 */
function kvCellsPerLayer(facts: ModelFacts, o: { cells: number; streams: number; slots: number; ub: number; swaFull: boolean }): number[] {
  const sw = facts.slidingWindow;
  const perStream = o.cells / o.streams;
  const window = sw ? o.streams * windowCells({ window: sw.window, fullCells: perStream, sequencesPerStream: o.slots / o.streams, ubatch: o.ub, swaFull: o.swaFull }) : o.cells;
  return Array.from({ length: facts.layers }, (_, il) => (facts.recurrent?.layers[il] && !facts.recurrent.attends ? 0 : sw?.swa[il] ? window : o.cells));
}

/** KV bytes one token takes in the cache, all layers together (also what a saved prompt costs per token). */
export function kvBytesPerToken(facts: ModelFacts, server: Pick<ServerMemoryOptions, 'cacheTypeK' | 'cacheTypeV'>): number {
  return kvBytesPerCell(facts, server).reduce((a, b) => a + b, 0);
}

/**
 * KV bytes of one cell in each layer: a K row and a V row of the cache types (K alone with latent
 * attention; a window layer's own head widths where the file gives them; a sparse-attention indexer's
 * key beside them); none in a recurrent layer or one that reads an earlier layer's cache (kvLayers).
 */
export function kvBytesPerCell(facts: ModelFacts, server: Pick<ServerMemoryOptions, 'cacheTypeK' | 'cacheTypeV'>): number[] {
  const k = ggmlTypeId(server.cacheTypeK)!;
  const v = ggmlTypeId(server.cacheTypeV)!;
  return facts.headCountKv.map((heads, il) => {
    if ((facts.recurrent?.layers[il] && !facts.recurrent.attends) || il >= (facts.kvLayers ?? facts.layers)) return 0;
    const window = facts.slidingWindow?.swa[il] === true;
    const kBytes = (ggmlTensorBytes(k, [heads * ((window ? facts.windowKeyLength : undefined) ?? facts.keyLength)]) ?? 0) + (facts.indexerKeyLength ? (ggmlTensorBytes(k, [facts.indexerKeyLength]) ?? 0) : 0);
    return facts.latentAttention ? kBytes : kBytes + (ggmlTensorBytes(v, [heads * ((window ? facts.windowValueLength : undefined) ?? facts.valueLength)]) ?? 0);
  });
}

/** The compute buffer of the worst-case graph of one ubatch of `ub` tokens attending over `nKv` cells. */
export function computeBytes(facts: ModelFacts, ub: number, nKv: number, flashAttn: boolean): number {
  const ff = facts.feedForwardLength;
  const embd = facts.embeddingLength;
  const withFlash = ub * F32 * (3 * ff + Math.min(ff, 4 * embd)) + nKv * ub * 2;
  if (flashAttn) return withFlash;
  return Math.max(withFlash, ub * F32 * (nKv * (facts.headCount + 1) + 7 * embd));
}

/** Which device each block and the output layer go to: -1 = host, else the GPU's position in `gpuFree`.
 * llama.cpp's own rule: the last `nGpu` of layers + 1 units, split across GPUs by free memory. */
export function placement(layers: number, nGpu: number, gpuFree: readonly number[]): { layer: number[]; output: number } {
  const sum = gpuFree.reduce((a, b) => a + b, 0);
  let acc = 0;
  // Equal shares when no GPU reports free memory (llama.cpp falls back to host memory, the same for all).
  const splits = gpuFree.map((f) => (acc += sum > 0 ? f : 1) / (sum > 0 ? sum : gpuFree.length));
  const start = Math.max(layers + 1 - nGpu, 0);
  const device = (il: number): number => {
    if (nGpu === 0 || il < start) return -1;
    const x = (il - start) / nGpu;
    const i = splits.findIndex((s) => s > x); // std::upper_bound
    return i < 0 ? gpuFree.length - 1 : i;
  };
  return { layer: Array.from({ length: layers }, (_, il) => device(il)), output: device(layers) };
}

function padUp(n: number): number {
  return Math.ceil(n / PAD) * PAD;
}

// ---------------------------------------------------------------------------------------------
// Fit

/** Whether the plan fits the free memory of every device; the devices it does not fit on, with the numbers. */
export function checkFit(plan: FitPlan, free: FreeMemory, opts: { gpusOnly?: boolean } = {}): FitResult {
  const shortfalls: Shortfall[] = [];
  for (const d of plan.devices) {
    if (d.device === HOST && opts.gpusOnly) continue;
    const has = d.device === HOST ? free.host : (free.gpus.find((g) => `gpu${g.index}` === d.device)?.free ?? 0);
    if (d.total > has) shortfalls.push({ device: d.device, label: d.label, needs: d.total, has, ...(d.promptCache ? { promptCache: d.promptCache } : {}), ...(d.checkpoints ? { checkpoints: d.checkpoints } : {}) });
  }
  return { fits: shortfalls.length === 0, shortfalls };
}

/** The most slots, 1 … maxSlots, whose whole plan fits at `ctxPerSlot`; 0 when not even one does. */
export function mostSlotsThatFit(facts: ModelFacts, settings: Omit<PlanSettings, 'slots'>, free: FreeMemory, maxSlots: number): number {
  for (let slots = maxSlots; slots >= 1; slots--) {
    if (checkFit(planMemory(facts, { ...settings, slots }, free), free).fits) return slots;
  }
  return 0;
}

/** The config fields a model's plan reads. */
export type PlanConfig = Pick<ModelConfig, 'ctxPerSlot' | 'gpuLayers' | 'args' | 'promptCacheMiB' | 'mmproj' | 'draft'>;

/**
 * A model's plan settings but its slot count, from its config: ctxPerSlot, gpuLayers, the memory flags
 * of its llama-server args and its prompt cache (`hostBytes`: host RAM, which bounds an "auto" cache,
 * as the instance sizes its --cache-ram: os.totalmem()).
 */
export function modelPlanSettings(c: PlanConfig, hostBytes?: number): Omit<PlanSettings, 'slots'> & { server: ServerMemoryOptions } {
  return { ctxPerSlot: c.ctxPerSlot, gpuLayers: c.gpuLayers, server: serverMemoryOptions(c.args), promptCacheMiB: c.promptCacheMiB, ...(hostBytes !== undefined ? { hostBytes } : {}), ...(c.mmproj ? { mmproj: c.mmproj } : {}), ...(c.draft ? { draft: c.draft } : {}) };
}

/**
 * `slots: "auto"` resolved: the most slots (up to maxSlots) that fit the room, at least 1 — when none
 * fits, one slot is planned, so eviction makes room or the never-fits error names the numbers.
 */
export function autoSlots(facts: ModelFacts, c: PlanConfig & Pick<ModelConfig, 'maxSlots'>, room: FreeMemory, hostBytes?: number): number {
  return Math.max(1, mostSlotsThatFit(facts, modelPlanSettings(c, hostBytes), room, c.maxSlots));
}

/** What fills a device's share as the model is used, not at load: the prompt cache and the context checkpoints, at their limits. */
export function fillsLater(d: Pick<DevicePlan, 'promptCache' | 'checkpoints'>): number {
  return (d.promptCache ?? 0) + (d.checkpoints ?? 0);
}

/** What llama-server allocates at load for the device's share (its buffers): the total less what fills later. */
export function loadTimeBytes(d: Pick<DevicePlan, 'total' | 'promptCache' | 'checkpoints'>): number {
  return d.total - fillsLater(d);
}

/** What the plan's prompt cache and context checkpoints may hold at their limits, bytes (0 without them). */
export function promptCacheBytes(plan: Pick<MemoryPlan, 'devices'>): number {
  return plan.devices.reduce((a, d) => a + fillsLater(d), 0);
}

/**
 * `needs 9.1 GiB on GPU 0, which has 8.0 GiB free: lower slots, ctxPerSlot or gpuLayers`; with a prompt
 * cache in the shortfall, `needs 52.0 MiB of host RAM with its 32.0 MiB prompt cache, …` and the fix
 * names promptCacheMiB: alone when the rest would fit without the cache.
 */
export function shortfallMessage(s: Shortfall, hasGpus: boolean): string {
  let fix = s.device === HOST
    ? hasGpus ? 'lower slots or ctxPerSlot, or raise gpuLayers' : 'lower slots or ctxPerSlot'
    : 'lower slots, ctxPerSlot or gpuLayers';
  const cache = s.promptCache ?? 0;
  const ckpt = s.checkpoints ?? 0;
  const later = [...(cache > 0 ? ['promptCacheMiB (0 turns the cache off)'] : []), ...(ckpt > 0 ? ['--ctx-checkpoints N in args'] : [])].join(', or ');
  if (later) fix = s.needs - cache - ckpt <= s.has ? `lower ${later}` : `${fix}, and ${later.replace(' (0 turns the cache off)', '')}`;
  const where = s.device === HOST ? 'of host RAM' : `on ${s.label}`;
  const withCache = [...(cache > 0 ? [`${formatMemory(cache)} prompt cache`] : []), ...(ckpt > 0 ? [`${formatMemory(ckpt)} of context checkpoints`] : [])].map((x, i) => (i === 0 ? ` with its ${x}` : ` and ${x}`)).join('');
  return `needs ${formatMemory(s.needs)} ${where}${withCache}, which has ${formatMemory(s.has)} free: ${fix}`;
}

/** The error for a plan that does not fit: `<who> needs 9.1 GiB on GPU 0, which has 8.0 GiB free: …` (the first device short). */
export function memoryError(who: string, fit: FitResult, hasGpus: boolean): SlotwiseError {
  const first = fit.shortfalls[0];
  if (!first) throw new RangeError('memoryError: the plan fits');
  return new SlotwiseError('SW_ERR_NOT_ENOUGH_MEMORY', `${who} ${shortfallMessage(first, hasGpus)}`);
}

/** `9.1 GiB`, `312.5 MiB`: binary units, as llama.cpp prints them. */
export function formatMemory(bytes: number): string {
  const mib = bytes / 2 ** 20;
  if (mib >= 1024) return `${(mib / 1024).toFixed(1)} GiB`;
  return `${mib.toFixed(1)} MiB`;
}
