// "Would it still fit?" for status (pure): for each model that is down and has a plan, whether that
// plan fits now beside the models that are loaded, without unloading any. The same check as the
// loader's (budget.ts `available` + plan.ts `checkFit`), but from what status already holds: each
// model's plan per device (no GGUF read per tick) and the resource sampler's free memory (no extra
// nvidia-smi run).
import { promptCachesByDevice } from '../../shared/prompt-caches';
import type { ModelMemoryStatus, ModelStatus, Snapshot } from '../../shared/protocol';
import { addBytes, available, lessPending, type DeviceBytes } from './budget';
import { heldByDevice } from './plan-status';
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
 * instance, llama-server's buffers once ready, else the plan; each with its prompt cache at its limit.
 */
export function usedByLoaded(models: readonly ModelStatus[]): DeviceBytes {
  const used: DeviceBytes = new Map();
  for (const m of models) {
    if (m.replicas === 0 || !m.memory) continue;
    const { ready, planned } = replicasOf(m);
    const hasActual = ready > 0 && m.memory.byDevice.some((d) => d.actualBytes !== undefined);
    addBytes(used, heldByDevice(m.memory, hasActual), ready);
    addBytes(used, heldByDevice(m.memory, false), planned);
  }
  return used;
}

/** Live replicas that are ready, and those that will hold their plan (a model just asked to start may have no instance yet: one). */
function replicasOf(m: ModelStatus): { ready: number; planned: number } {
  const live = m.instances.filter((i) => i.state !== 'stopped');
  const ready = live.filter((i) => i.state === 'ready').length;
  return { ready, planned: Math.max(live.length, 1) - ready };
}

/** A plan for a down model the loader has not planned yet (auto-slots-preview.ts), given free memory and the room left. */
export type PlanPreview = (model: string, free: FreeMemory, room: FreeMemory) => ModelMemoryStatus | undefined;

/**
 * Sets `memory.fitsNow` on every model that is down and has a plan; a down model without one gets
 * the preview's plan first, where there is one.
 */
export function markFitsNow(models: readonly ModelStatus[], free: FreeMemory, budgetMiB: number | undefined, preview?: PlanPreview): void {
  const base = budgetMiB === undefined ? lessPending(free, promptCachesByDevice(models)) : free;
  const room = available(base, usedByLoaded(models), budgetMiB);
  const known = new Set(['host', ...free.gpus.map((g) => `gpu${g.index}`)]);
  for (const m of models) {
    // Loaded, or being made room for (the loader plans and evicts before replicas rise): not a question of fitting.
    if (m.replicas !== 0 || m.load?.state === 'loading') continue;
    if (!m.memory && preview) {
      const planned = preview(m.name, free, room);
      if (planned) m.memory = planned;
    }
    if (!m.memory) continue;
    const plan: FitPlan = { devices: m.memory.byDevice.map((d) => ({ device: d.device, label: d.label, total: d.planBytes + (d.promptCacheBytes ?? 0), promptCache: d.promptCacheBytes })) };
    // A GPU the reading lacks (not sampled yet) would count as 0 free: leave the answer unknown instead.
    if (plan.devices.some((d) => d.total > 0 && !known.has(d.device))) continue;
    m.memory.fitsNow = checkFit(plan, room).fits;
  }
}
