// Fitting one more model next to the loaded ones (pure): what each device offers under memoryBudgetMiB,
// whether a plan can ever fit, which idle model to unload first (least recently used), and the actual
// buffer sizes per device from llama-server's load log (status `offload.buffers`).
import { fillsLater, type FreeMemory, type MemoryPlan } from './plan';

const MIB = 1024 * 1024;

/** Bytes per device (`host`, `gpu0`, …). */
export type DeviceBytes = Map<string, number>;

/** A loaded model that eviction may consider. */
export interface LoadedModel {
  name: string;
  /** Epoch ms of its last lease; undefined = never used since it loaded (oldest). */
  lastUsedAt?: number;
  /** No lease and nothing queued. */
  idle: boolean;
  pinned: boolean;
}

/**
 * llama-server's buffers (`"<kind> <device>"` → MiB) summed per device: CPU buffers (`CPU`,
 * `CPU_Mapped`, `CUDA_Host`: pinned host memory) are host RAM; `CUDA0`, `ROCm1`, `Vulkan0` … are that GPU.
 */
export function actualByDevice(buffers: Readonly<Record<string, number>>, gpuOrder?: readonly number[]): DeviceBytes {
  const out: DeviceBytes = new Map();
  for (const [key, mib] of Object.entries(buffers)) {
    const dev = key.slice(key.indexOf(' ') + 1);
    const gpu = /^(?:CUDA|ROCm|Vulkan|SYCL|Metal)(\d+)$/.exec(dev);
    // llama-server numbers the GPUs it sees: with CUDA_VISIBLE_DEVICES=2,3 its CUDA0 is GPU 2 (visible-gpus.ts).
    const device = gpu ? `gpu${gpuOrder?.[Number(gpu[1])] ?? gpu[1]}` : 'host';
    out.set(device, (out.get(device) ?? 0) + mib * MIB);
  }
  return out;
}

/** A plan's bytes per device, prompt cache included. */
export function planByDevice(plan: MemoryPlan): DeviceBytes {
  return new Map(plan.devices.map((d) => [d.device, d.total]));
}

/** A plan's prompt cache and context checkpoints at their limits per device (host RAM only): what a ready replica holds beside its buffers. */
export function cacheByDevice(plan: MemoryPlan): DeviceBytes {
  return new Map(plan.devices.filter((d) => fillsLater(d) > 0).map((d) => [d.device, fillsLater(d)]));
}

export function addBytes(into: DeviceBytes, add: DeviceBytes, times = 1): DeviceBytes {
  for (const [d, b] of add) into.set(d, (into.get(d) ?? 0) + b * times);
  return into;
}

/**
 * What a new model may use now on each device: the free memory, capped by the budget less what the
 * loaded models hold. Without a budget, the free memory.
 */
export function available(free: FreeMemory, used: DeviceBytes, budgetMiB: number | undefined): FreeMemory {
  if (budgetMiB === undefined) return free;
  const cap = (device: string, has: number): number => Math.max(0, Math.min(has, budgetMiB * MIB - (used.get(device) ?? 0)));
  return { host: cap('host', free.host), gpus: free.gpus.map((g) => ({ index: g.index, free: cap(`gpu${g.index}`, g.free) })) };
}

/**
 * Free memory less what models launched but not loaded yet will still take (their plans): their
 * llama-server has not allocated it, so the free figure does not show it yet. Never below 0.
 */
export function lessPending(free: FreeMemory, pending: DeviceBytes): FreeMemory {
  const less = (device: string, has: number): number => Math.max(0, has - (pending.get(device) ?? 0));
  return { host: less('host', free.host), gpus: free.gpus.map((g) => ({ index: g.index, free: less(`gpu${g.index}`, g.free) })) };
}

/** Free memory once models holding `freed` are unloaded (no budget involved: see available()). */
export function withFreed(free: FreeMemory, freed: DeviceBytes): FreeMemory {
  const more = (device: string, has: number): number => has + (freed.get(device) ?? 0);
  return { host: more('host', free.host), gpus: free.gpus.map((g) => ({ index: g.index, free: more(`gpu${g.index}`, g.free) })) };
}

/**
 * The most a new model could ever get on each device, with every other model unloaded: the budget,
 * else what is free plus what the loaded models hold. A plan that does not fit this never will.
 */
export function capacity(free: FreeMemory, used: DeviceBytes, budgetMiB: number | undefined): FreeMemory {
  const cap = (device: string, has: number): number => (budgetMiB !== undefined ? budgetMiB * MIB : has + (used.get(device) ?? 0));
  return { host: cap('host', free.host), gpus: free.gpus.map((g) => ({ index: g.index, free: cap(`gpu${g.index}`, g.free) })) };
}

/** The model to unload first: idle, not pinned, least recently used (never used counts as oldest). */
export function pickVictim(models: readonly LoadedModel[]): string | undefined {
  let best: LoadedModel | undefined;
  for (const m of models) {
    if (!m.idle || m.pinned) continue;
    if (!best || (m.lastUsedAt ?? 0) < (best.lastUsedAt ?? 0)) best = m;
  }
  return best?.name;
}
