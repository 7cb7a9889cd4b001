// A model's plan as status shows it (pure): per device, what llama-server allocates at load (`planBytes`,
// beside its actual buffers once loaded) and, apart from it, the host prompt cache and context
// checkpoints at their limits (`promptCacheBytes`). Kept apart so plan-vs-actual compares like with like: llama-server's load log
// has no prompt cache, which only fills as prompts are saved; what a replica may hold is the sum.
import type { ModelMemoryStatus } from '../../shared/protocol';
import type { DeviceBytes } from './budget';
import { fillsLater, loadTimeBytes, promptCacheBytes, type MemoryPlan } from './plan';

/** The status memory of `plan`, with llama-server's buffers per device (`actual`) once it reported them. */
export function planStatus(plan: Pick<MemoryPlan, 'devices'>, actual?: DeviceBytes): ModelMemoryStatus {
  const byDevice = plan.devices.map((d) => ({
    device: d.device,
    label: d.label,
    planBytes: loadTimeBytes(d),
    ...(actual ? { actualBytes: Math.round(actual.get(d.device) ?? 0) } : {}),
    ...(fillsLater(d) ? { promptCacheBytes: fillsLater(d) } : {}),
  }));
  // Rounded per device first, as calibration.json keeps them: a calibrated plan then equals this sum.
  const actualBytes = actual ? [...actual.values()].reduce((a, b) => a + Math.round(b), 0) : undefined;
  const cache = promptCacheBytes(plan);
  return {
    planBytes: byDevice.reduce((a, d) => a + d.planBytes, 0),
    ...(actualBytes !== undefined ? { actualBytes } : {}),
    ...(cache > 0 ? { promptCacheBytes: cache } : {}),
    byDevice,
  };
}

/** What one replica of the model may hold on each device: llama-server's buffers (else the load-time plan) plus its prompt cache. */
export function heldByDevice(memory: ModelMemoryStatus, useActual: boolean): DeviceBytes {
  return new Map(memory.byDevice.map((d) => [d.device, (useActual ? (d.actualBytes ?? 0) : d.planBytes) + (d.promptCacheBytes ?? 0)]));
}
