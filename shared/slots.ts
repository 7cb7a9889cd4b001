// Busy slots, counted one way for every reader: the status snapshot and its verdict, /v1/models,
// /metrics, the bench, the CLI and the extension. Two readings of the same slots exist: llama-server's
// /slots (polled, so it lags a dispatch or a finish by up to one poll) and the daemon's own in-flight
// count (exact for its own requests, blind to foreign clients). The count is the larger of the two.
import type { InstanceStatus, ModelStatus } from './protocol';

type SlotView = Pick<InstanceStatus, 'slots' | 'inFlight'>;

/** Slots of one instance: what /slots listed, else the configured `--parallel`. */
export function totalSlotsOf(i: Pick<InstanceStatus, 'slots'>, slotsPerInstance: number): number {
  return i.slots.length || slotsPerInstance;
}

/** Busy slots of one instance: max(/slots busy, in flight), capped at its slot count. */
export function busySlotsOf(i: SlotView, slotsPerInstance: number): number {
  return Math.min(totalSlotsOf(i, slotsPerInstance), Math.max(i.slots.filter((s) => s.busy).length, i.inFlight ?? 0));
}

/** Busy and total slots over a model's ready instances (an instance that is not ready serves nothing). */
export function modelSlots(m: Pick<ModelStatus, 'instances' | 'slotsPerInstance'>): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const i of m.instances) {
    if (i.state !== 'ready') continue;
    total += totalSlotsOf(i, m.slotsPerInstance);
    busy += busySlotsOf(i, m.slotsPerInstance);
  }
  return { busy, total };
}
