// Plan versus actual, kept across daemon restarts: after a load, what llama-server allocated per device
// (its load log) is stored under the model file (path, size, mtime), the llama-server binary (path,
// size, mtime: another build may size or place buffers differently) and the settings that size the
// buffers; the next plan for the same key uses those figures instead of the estimate. One JSON file in
// the state dir (calibration.json), rewritten atomically with mode 0600.
import { stat } from 'node:fs/promises';
import type { GpuLayers } from '../config/types';
import { readTextIfExists, writeFileAtomic } from '../../shared/state-dir';
import type { Placement } from '../../shared/protocol';
import { fillsLater, modelPlanSettings, type MemoryPlan, type PlanConfig } from './plan';
import type { ServerMemoryOptions } from './server-args';
import type { DeviceBytes } from './budget';

export interface CalibrationEntry {
  /** What the plan said, bytes, all devices. */
  planBytes: number;
  /** What llama-server allocated, bytes per device (`host`, `gpu0`, …). */
  actual: Record<string, number>;
  /** Where that load put the model (layers, buffers), as its log said; older files lack it. */
  placement?: Placement;
  /** Epoch ms of the load it was read from. */
  at: number;
}

export interface CalibrationSettings {
  slots: number;
  ctxPerSlot: number;
  gpuLayers: GpuLayers;
  server: ServerMemoryOptions;
  /** The projector's file: another one (or a changed one) sizes its buffers anew. */
  mmproj?: string;
  /** The draft model's file, likewise. */
  draft?: string;
}

/**
 * The key: the model file and the llama-server binary as they are now (a changed file or an upgraded
 * llama-server misses) and everything that sizes the buffers.
 */
export async function calibrationKey(path: string, s: CalibrationSettings, llamaServer?: string): Promise<string | undefined> {
  try {
    const st = await stat(path);
    const v = s.server;
    const server = llamaServer === undefined ? [] : [`server=${await fileIdentity(llamaServer)}`];
    const mmproj = s.mmproj === undefined ? [] : [`mmproj=${await fileIdentity(s.mmproj)}`, ...(v.mmproj === 'host' ? ['mmproj-host'] : [])];
    const draft = s.draft === undefined ? [] : [`draft=${await fileIdentity(s.draft)}`, `ngld=${v.draft.gpuLayers}`, `ctkd=${v.draft.cacheTypeK}`, `ctvd=${v.draft.cacheTypeV}`];
    return [path, st.size, Math.round(st.mtimeMs), ...server, `slots=${s.slots}`, `ctx=${s.ctxPerSlot}`, `ngl=${s.gpuLayers}`, `ctk=${v.cacheTypeK}`, `ctv=${v.cacheTypeV}`, `ub=${v.ubatch}`, `b=${v.batch}`, `fa=${v.flashAttn}`, `kvu=${v.kvUnified}`, `nkvo=${!v.kvOffload}`, ...(v.swaFull ? ['swa-full'] : []), ...v.tensorOverrides.map((o) => `ot=${o.pattern.source}=${o.device ?? '?'}`), ...mmproj, ...draft].join('|');
  } catch {
    return undefined; // unreadable file: no calibration (the instance's preflight reports it)
  }
}

/** `path:size:mtime`, or the path alone for a binary found on PATH by name or unreadable (its launch reports that). */
async function fileIdentity(path: string): Promise<string> {
  const st = await stat(path).catch(() => undefined);
  return st ? `${path}:${st.size}:${Math.round(st.mtimeMs)}` : path;
}

/** The plan with each device's total replaced by what llama-server allocated there. */
export function calibrated(plan: MemoryPlan, entry: CalibrationEntry): MemoryPlan {
  // llama-server's load-time buffers do not include the prompt cache or the checkpoints, which fill later: keep them.
  const devices = plan.devices.map((d) => {
    const actual = entry.actual[d.device];
    return { ...d, total: actual === undefined ? d.total : actual + fillsLater(d) };
  });
  return { ...plan, devices, total: devices.reduce((a, d) => a + d.total, 0) };
}

/**
 * Entries kept, the most recently recorded: every llama-server build, model file version and setting
 * tried adds one (a few hundred bytes) and nothing else removes them; a key not seen for that long
 * only costs a launch at -lv 4 that records it again.
 */
export const MAX_CALIBRATION_ENTRIES = 200;

export class CalibrationStore {
  #path: string;
  #llamaServer: string | undefined;
  #entries: Record<string, CalibrationEntry> | undefined;
  #writing: Promise<void> = Promise.resolve();

  /** `llamaServer`: the binary every instance runs, part of each key (see calibrationKey). */
  constructor(path: string, llamaServer?: string) {
    this.#path = path;
    this.#llamaServer = llamaServer;
  }

  /** The key of a load of `path` with these settings by this store's llama-server. */
  key(path: string, s: CalibrationSettings): Promise<string | undefined> {
    return calibrationKey(path, s, this.#llamaServer);
  }

  async get(key: string): Promise<CalibrationEntry | undefined> {
    return (await this.#load())[key];
  }

  /** Records one load; writes are serialized so the file always holds every recorded key. */
  async record(key: string, planBytes: number, actual: DeviceBytes, placement?: Placement): Promise<void> {
    const entries = await this.#load();
    const { recordedAt: _, ...read } = placement ?? { buffers: {} };
    entries[key] = { planBytes, actual: Object.fromEntries([...actual].map(([d, b]) => [d, Math.round(b)])), ...(placement ? { placement: read } : {}), at: Date.now() };
    const keys = Object.keys(entries);
    if (keys.length > MAX_CALIBRATION_ENTRIES) {
      const oldest = keys.sort((a, b) => (entries[a]!.at ?? 0) - (entries[b]!.at ?? 0)).slice(0, keys.length - MAX_CALIBRATION_ENTRIES);
      for (const k of oldest) delete entries[k];
    }
    this.#writing = this.#writing.then(() => writeFileAtomic(this.#path, `${JSON.stringify(entries, null, 2)}\n`, 0o600));
    await this.#writing;
  }

  async #load(): Promise<Record<string, CalibrationEntry>> {
    if (!this.#entries) {
      try {
        const text = await readTextIfExists(this.#path);
        const parsed: unknown = text ? JSON.parse(text) : {};
        this.#entries = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, CalibrationEntry>) : {};
      } catch {
        this.#entries = {}; // a corrupt file is rewritten on the next load
      }
    }
    return this.#entries;
  }
}

/** What a launch's placement depends on: what the loader keys its calibration by. */
export type LaunchPlacement = PlanConfig & { path: string; slots: number };

/** The host's GPUs as a launch finds them (main.ts reads them for recordedPlacement). */
export interface GpusAtLaunch {
  /** GPUs the host has; at least 1 when a GPU tool is there but failed or listed none. */
  count: number;
  /** Each GPU's free memory now, bytes; empty when the tool did not answer. */
  free: readonly { index: number; free: number }[];
  /** Another instance is starting or loading: its memory is not in `free` yet. */
  othersLoading: boolean;
}

/** llama-server's default `--fit-target`: the device memory its fit leaves free (common/common.h `fit_params_target`). */
export const FIT_TARGET_BYTES = 1024 ** 3;
/**
 * Room for what the fit does not see as free but nvidia-smi read before the launch did: the CUDA or
 * ROCm context llama-server creates first (a few hundred MiB), and drift since the recorded load.
 */
export const CONTEXT_MARGIN_BYTES = 1024 ** 3;

/**
 * The placement an earlier load of the same file and settings recorded, when this launch places the
 * model the same way: a layer count or "all" (llama-server puts exactly those on the GPU), or "auto"
 * on a host with no GPU whose recorded load put nothing on one. "auto" with a GPU is llama-server's
 * own fit, from the memory free at launch: the same only when the recorded load put every layer on the
 * host's one GPU and that GPU has that much free again, with the fit's margin (wholeFitAgain). Else
 * its placement is read from each load's log.
 * The instance then runs llama-server at -lv 3, below the placement lines and below the listing of its
 * whole prompt cache on every request (runtime/cache-listing.ts).
 */
export async function recordedPlacement(
  store: CalibrationStore,
  launch: LaunchPlacement,
  gpus: () => Promise<GpusAtLaunch>,
): Promise<Placement | undefined> {
  let settings: CalibrationSettings;
  try {
    settings = { ...modelPlanSettings(launch), slots: launch.slots }; // as the loader's #plan keys it
  } catch {
    return undefined; // args the config check rejects: no key
  }
  const key = await store.key(launch.path, settings);
  const entry = key ? await store.get(key) : undefined;
  if (!entry?.placement) return undefined;
  if (launch.gpuLayers === 'auto') {
    const now = await gpus();
    const same = usesGpu(entry.placement) ? wholeFitAgain(entry, launch.args, now) : now.count === 0;
    if (!same) return undefined;
  }
  return { ...structuredClone(entry.placement), recordedAt: entry.at };
}

/**
 * Whether llama-server's fit ("auto") would again put every layer on the GPU, as the recorded load
 * did: it changes nothing when the whole model leaves `--fit-target` free (common/fit.cpp "no changes
 * needed"). Only on a host with one GPU (with several, the split follows each one's free memory), with
 * no other load under way whose memory nvidia-smi does not show yet, and no fit option of the user's.
 */
export function wholeFitAgain(entry: Pick<CalibrationEntry, 'actual' | 'placement'>, args: readonly string[], gpus: GpusAtLaunch): boolean {
  const p = entry.placement;
  if (!p || p.layersTotal === undefined || p.layersTotal === 0 || p.layersOnGpu !== p.layersTotal) return false;
  if (gpus.count !== 1 || gpus.free.length !== 1 || gpus.othersLoading) return false;
  if (args.some((a) => /^--?fit/.test(a))) return false;
  const gpu = gpus.free[0]!;
  const devices = Object.keys(entry.actual).filter((d) => d !== 'host');
  const bytes = entry.actual[`gpu${gpu.index}`];
  if (devices.length !== 1 || bytes === undefined) return false;
  return gpu.free >= bytes + FIT_TARGET_BYTES + CONTEXT_MARGIN_BYTES;
}

/** Layers or buffers on a device other than the host's (`CPU`, `CPU_Mapped`, `CPU_REPACK`). */
function usesGpu(p: Placement): boolean {
  return (p.layersOnGpu ?? 0) > 0 || Object.keys(p.buffers).some((k) => !/ CPU(_\w+)?$/.test(k));
}
