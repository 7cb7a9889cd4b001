// Busy slots, counted one way for every reader: the status snapshot and its verdict, /v1/models,
// /metrics, the bench, the CLI and the extension. The daemon's slot rows come from its leases (which
// request holds which slot, exact at every instant) plus `foreign` slots (busy in llama-server's
// /slots with no lease for more than one poll): busy = leased + foreign. The in-flight count is a
// floor for snapshots whose rows are llama-server's own (round-robin mode, where llama-server picks
// the slot, or an older daemon).
import type { InstanceStatus, ModelStatus, SlotStatus } from './protocol';

type SlotView = Pick<InstanceStatus, 'slots' | 'inFlight'>;

/** Slots of one instance: what /slots listed, else the configured `--parallel`. */
export function totalSlotsOf(i: Pick<InstanceStatus, 'slots'>, slotsPerInstance: number): number {
  return i.slots.length || slotsPerInstance;
}

/** Busy slots of one instance: max(busy rows, in flight), capped at its slot count. */
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

/** Who holds a busy slot, for one line of text: `request 1a2b3c4d`, `job 1a2b3c4d`, `foreign client`; undefined when unknown. */
export function slotHolder(s: Pick<SlotStatus, 'requestId' | 'source' | 'foreign'>): string | undefined {
  if (s.foreign) return 'foreign client';
  if (s.requestId) return `${s.source === 'ws' ? 'job' : 'request'} ${s.requestId.slice(0, 8)}`;
  return undefined;
}

/** Tokens decoded in a busy slot: what the daemon saw stream, else llama-server's last poll. */
export function slotTokens(s: Pick<SlotStatus, 'tokens' | 'nDecoded'>): number {
  return s.tokens ?? s.nDecoded ?? 0;
}
