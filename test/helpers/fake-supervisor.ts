// A stand-in Supervisor for scheduler unit tests: one model "coder" with one ready instance
// "coder#1" of `slots` slots; no scrapes, nothing draining. The scheduler reads nothing else of it.
import { EventEmitter } from 'node:events';
import type { ModelConfig } from '../../daemon/config/types';
import type { LlamaInstance } from '../../daemon/runtime/instance';
import type { Supervisor } from '../../daemon/runtime/supervisor';

export function fakeSupervisor(slots: number, affinity = false): Supervisor {
  const model = { name: 'coder', slots, affinity, reservedSlots: 0 } as unknown as ModelConfig;
  const inst = { id: 'coder#1', model, routable: true, state: 'ready', status: () => ({}) } as unknown as LlamaInstance;
  return Object.assign(new EventEmitter(), {
    modelNames: () => ['coder'],
    instances: () => [inst],
    wanted: () => 1,
    modelConfig: () => model,
    scrape: () => undefined,
    isDraining: () => false,
  }) as unknown as Supervisor;
}
