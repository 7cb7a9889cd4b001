// "Would it still fit?" for status (pure): for each model that is down and has a plan, whether that
// plan fits now beside the models that are loaded, without unloading any. The same check as the
// loader's (budget.ts `available` + plan.ts `checkFit`), but from what status already holds: each
// model's plan per device (no GGUF read per tick) and the resource sampler's free memory (no extra
// nvidia-smi run).
import type { ModelMemoryStatus, ModelStatus, Snapshot } from '../../shared/protocol';
import { addBytes, available, type DeviceBytes } from './budget';
import { checkFit, type FitPlan, type FreeMemory } from './plan';

const MIB = 1024 * 1024;

/** Free memory from a status reading, as free-memory.ts reads it for a load: MemAvailable, and total − used per GPU. */
export function freeFromStatus(host: NonNullable<Snapshot['host']>, gpus: Snapshot['gpus']): FreeMemory {
  return {
    host: host.memoryAvailableBytes,
    gpus: gpus.map((g) => ({ index: g.index, free: Math.max(0, g.memoryTotalMiB - g.memoryUsedMiB) * MIB })),
  };
}

/**
 * What the loaded models (replicas > 0, as the loader counts them) hold per device: per live
 * instance, llama-server's buffers once ready, else the plan.
 */
export function usedByLoaded(models: readonly ModelStatus[]): DeviceBytes {
  const used: DeviceBytes = new Map();
  for (const m of models) {
    if (m.replicas === 0 || !m.memory) continue;
    const live = m.instances.filter((i) => i.state !== 'stopped');
    const ready = live.filter((i) => i.state === 'ready').length;
    // A model just asked to start may have no instance yet: it will hold one replica's plan.
    const planned = Math.max(live.length, 1) - ready;
    const byDevice = m.memory.byDevice;
    if (ready > 0 && byDevice.some((d) => d.actualBytes !== undefined)) addBytes(used, new Map(byDevice.map((d) => [d.device, d.actualBytes ?? 0])), ready);
    else addBytes(used, new Map(byDevice.map((d) => [d.device, d.planBytes])), ready);
    addBytes(used, new Map(byDevice.map((d) => [d.device, d.planBytes])), planned);
  }
  return used;
}

/** A plan for a down model the loader has not planned yet (auto-slots-preview.ts), given free memory and the room left. */
export type PlanPreview = (model: string, free: FreeMemory, room: FreeMemory) => ModelMemoryStatus | undefined;

/**
 * Sets `memory.fitsNow` on every model that is down and has a plan; a down model without one gets
 * the preview's plan first, where there is one.
 */
export function markFitsNow(models: readonly ModelStatus[], free: FreeMemory, budgetMiB: number | undefined, preview?: PlanPreview): void {
  const room = available(free, usedByLoaded(models), budgetMiB);
  const known = new Set(['host', ...free.gpus.map((g) => `gpu${g.index}`)]);
  for (const m of models) {
    // Loaded, or being made room for (the loader plans and evicts before replicas rise): not a question of fitting.
    if (m.replicas !== 0 || m.load?.state === 'loading') continue;
    if (!m.memory && preview) {
      const planned = preview(m.name, free, room);
      if (planned) m.memory = planned;
    }
    if (!m.memory) continue;
    const plan: FitPlan = { devices: m.memory.byDevice.map((d) => ({ device: d.device, label: d.label, total: d.planBytes })) };
    // A GPU the reading lacks (not sampled yet) would count as 0 free: leave the answer unknown instead.
    if (plan.devices.some((d) => d.total > 0 && !known.has(d.device))) continue;
    m.memory.fitsNow = checkFit(plan, room).fits;
  }
}
