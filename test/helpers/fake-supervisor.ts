// A stand-in Supervisor for scheduler unit tests: one model "coder" with one ready instance
// "coder#1" of `slots` slots; nothing draining. The scheduler reads nothing else of it. `poll(busy)`
// delivers a /slots poll as the scraper would; `rechecks` counts the polls the scheduler asked for.
import { EventEmitter } from 'node:events';
import type { ModelConfig } from '../../daemon/config/types';
import type { LlamaInstance } from '../../daemon/runtime/instance';
import type { Supervisor } from '../../daemon/runtime/supervisor';
import type { SlotStatus } from '../../shared/protocol';

export interface FakeSupervisor extends Supervisor {
  /** One /slots poll reading these slots busy (true) or idle. */
  poll(busy: boolean[]): void;
  /** How many times the scheduler asked for a poll now (Supervisor.recheckSlots). */
  rechecks: number;
}

export function fakeSupervisor(slots: number, affinity = false): FakeSupervisor {
  const model = { name: 'coder', slots, affinity, reservedSlots: 0 } as unknown as ModelConfig;
  const inst = { id: 'coder#1', model, routable: true, state: 'ready', status: () => ({}) } as unknown as LlamaInstance;
  let scrape: { slots: SlotStatus[] } | undefined;
  const sup = Object.assign(new EventEmitter(), {
    modelNames: () => ['coder'],
    instances: () => [inst],
    wanted: () => 1,
    failedReplica: () => ((inst as { state: string }).state === 'failed' ? inst : undefined),
    modelConfig: () => model,
    scrape: () => scrape,
    takesRequests: (i: LlamaInstance) => i.routable,
    rechecks: 0,
    recheckSlots: () => void sup.rechecks++,
    poll: (busy: boolean[]) => {
      scrape = { slots: busy.map((b, id) => ({ id, busy: b })) };
      sup.emit('scrape', inst);
    },
  });
  return sup as unknown as FakeSupervisor;
}
