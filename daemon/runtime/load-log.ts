// Where llama-server actually put the model: layers offloaded and buffer sizes per device, read from
// its load log (format strings of llama.cpp src/llama-model.cpp, llama-kv-cache.cpp, llama-context.cpp).
// Printed at verbosity 4, which Slotwise passes unless the user chose a verbosity or an earlier load
// already recorded them (daemon/memory/calibration.ts recordedPlacement).
import type { Placement } from '../../shared/protocol';
import { setsFlag } from '../config/llama-args';

const OFFLOADED = /load_tensors: offloaded (\d+)\/(\d+) layers to GPU/;
// A recurrent layer's state (`RS`, llama_memory_recurrent) is the KV cache of its layer: counted as `kv`.
const BUFFER = /(?:load_tensors|llama_kv_cache|llama_memory_recurrent|llama_context|sched_reserve|graph_reserve):\s+(\S+)\s+(model|KV|RS|compute|output) buffer size =\s+([\d.]+) MiB/;
const N_LAYER = /print_info: n_layer\s+=\s+(\d+)/;
// A projector (tools/mtmd/clip.cpp) names its device once, then prints its weights without one, then
// its compute buffer by buffer type: both are counted as `projector <device>`.
const CLIP_DEVICE = /clip_ctx: CLIP using (\S+) backend/;
const CLIP_WEIGHTS = /load_hparams: model size:\s+([\d.]+) MiB/;
const CLIP_COMPUTE = /reserve_compute_meta:\s+(\S+) compute buffer size =\s+([\d.]+) MiB/;
/** The device of the projector being loaded, per placement being read (a log is read line by line). */
const clipDevice = new WeakMap<Placement, string>();

/**
 * The line llama-server prints once every load-time buffer is allocated (`llama_server: model loaded`,
 * older builds `main: model loaded`). Its log is written by a thread of its own, so these lines can
 * reach the daemon after /health already answers ok: the load is only fully described after this one.
 */
const MODEL_LOADED = /\b(?:llama_server|main): model loaded\b/;

/** True for the line that ends the load log (see MODEL_LOADED). */
export function isLoadEnd(line: string): boolean {
  return MODEL_LOADED.test(line);
}

/** Folds one log line into `acc`; returns true when the line carried placement information. */
export function parseLoadLine(line: string, acc: Placement): boolean {
  let m = OFFLOADED.exec(line);
  if (m) {
    acc.layersOnGpu = Number(m[1]);
    acc.layersTotal = Number(m[2]);
    return true;
  }
  m = BUFFER.exec(line);
  if (m) {
    addBuffer(acc, `${m[2] === 'RS' ? 'kv' : m[2]!.toLowerCase()} ${m[1]}`, Number(m[3]));
    return true;
  }
  m = N_LAYER.exec(line);
  if (m) {
    acc.layersTotal ??= Number(m[1]);
    return true;
  }
  return parseProjectorLine(line, acc);
}

function parseProjectorLine(line: string, acc: Placement): boolean {
  let m = CLIP_DEVICE.exec(line);
  if (m) {
    clipDevice.set(acc, m[1]!);
    return true;
  }
  m = CLIP_WEIGHTS.exec(line);
  const device = clipDevice.get(acc);
  if (m && device) {
    addBuffer(acc, `projector ${device}`, Number(m[1]));
    return true;
  }
  m = CLIP_COMPUTE.exec(line);
  if (m) {
    addBuffer(acc, `projector ${m[1]}`, Number(m[2]));
    return true;
  }
  return false;
}

function addBuffer(acc: Placement, key: string, mib: number): void {
  acc.buffers[key] = (acc.buffers[key] ?? 0) + mib;
}

const VERBOSITY_FLAGS = ['-lv', '--verbosity', '--log-verbosity', '-v', '--verbose', '--log-disable'];

/** True when the user's extra args already choose a log verbosity. */
export function setsVerbosity(args: readonly string[]): boolean {
  return setsFlag(args, VERBOSITY_FLAGS);
}

/**
 * Where a load is (`ModelLoadStatus.phase`/`progress`). This llama-server build replaces llama.cpp's
 * dot-per-percent progress callback (src/llama.cpp) with its own (tools/server/server-context.cpp
 * `load_progress_callback`), which prints nothing unless the process runs as a router child
 * (`LLAMA_SERVER_ROUTER_PORT` set): then it writes `cmd_child_to_router:state:{json}` lines to stdout,
 * the first and last sample of each stage and at most one per 200 ms between. Slotwise sets that
 * variable (instance.ts) and reads those lines; the other phases come from -lv 4 trace lines (at -lv 3:
 * starting, weights, then context once every stage is read, without warmup).
 */
export type LoadPhase = 'starting' | 'weights' | 'context' | 'warmup';

export interface LoadProgress {
  phase: LoadPhase;
  /** Share of the tensor data read (every stage: model, draft, projector), 0..1; absent before the first report. */
  progress?: number;
}

export const CHILD_STATE_PREFIX = 'cmd_child_to_router:state:';
const CONTEXT = /llama_context: constructing llama_context/;
const WARMUP = /warming up the model/;
const WEIGHTS = /load_tensors: loading model tensors/;
const PHASE_ORDER: Record<LoadPhase, number> = { starting: 0, weights: 1, context: 2, warmup: 3 };

/** Folds one log line into `acc`; true when the phase or the progress changed. Progress never goes back. */
export function parseProgressLine(line: string, acc: LoadProgress): boolean {
  const before = `${acc.phase} ${acc.progress}`;
  const at = line.indexOf(CHILD_STATE_PREFIX);
  if (at >= 0) {
    const value = childLoadValue(line.slice(at + CHILD_STATE_PREFIX.length));
    if (value !== undefined) {
      acc.progress = Math.max(acc.progress ?? 0, value);
      // A projector's or draft model's weights load after the main model's context: the phase goes back to weights.
      if (value < 1) acc.phase = 'weights';
      // Every stage read: the context is next. At -lv 3 (no trace lines) this is the only sign of it.
      else setPhase(acc, 'context');
    }
  } else if (WEIGHTS.test(line)) setPhase(acc, 'weights');
  else if (CONTEXT.test(line)) setPhase(acc, 'context');
  else if (WARMUP.test(line)) setPhase(acc, 'warmup');
  return `${acc.phase} ${acc.progress}` !== before;
}

function setPhase(acc: LoadProgress, phase: LoadPhase): void {
  if (PHASE_ORDER[phase] > PHASE_ORDER[acc.phase] || phase === 'weights') acc.phase = phase;
}

/** `{"state":"loading","payload":{"stages":[…],"current":"text_model","value":0.42}}` → overall share over the stages. */
function childLoadValue(json: string): number | undefined {
  let msg: { state?: unknown; payload?: { stages?: unknown; current?: unknown; value?: unknown } };
  try {
    msg = JSON.parse(json) as typeof msg;
  } catch {
    return undefined; // a line cut by other output on the shared pipe: the next sample comes within 200 ms
  }
  const p = msg.payload;
  if (msg.state !== 'loading' || typeof p?.value !== 'number') return undefined;
  const stages = Array.isArray(p.stages) && p.stages.length > 0 ? p.stages : [p.current];
  const index = Math.max(0, stages.indexOf(p.current));
  return Math.min(1, Math.max(0, (index + p.value) / stages.length));
}
