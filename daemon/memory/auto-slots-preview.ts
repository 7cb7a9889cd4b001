// A plan for status of the models the loader plans only at their first load: an on-demand model with
// `slots: "auto"` gets its slot count then, against the memory then (loader.ts). Until that load,
// status shows what it would choose now: the most slots (1 … maxSlots) that fit the room beside the
// loaded models, at least 1 (`autoSlots`, as the loader does), so the GPU view can say whether
// it would still fit. Each header is read once; a snapshot only runs the pure plan.
import { totalmem } from 'node:os';
import type { ModelConfig } from '../config/types';
import type { ModelMemoryStatus } from '../../shared/protocol';
import type { ModelFacts } from './model-facts';
import { readModelFacts } from './model-file';
import { autoSlots, modelPlanSettings, planMemory, type FreeMemory } from './plan';
import { planStatus } from './plan-status';

export class AutoSlotsPreview {
  #configs = new Map<string, ModelConfig>();
  /** null: unreadable (the instance's preflight reports it at load); absent: not read yet. */
  #facts = new Map<string, ModelFacts | null>();
  /** Resolves once every header was read (tests; status simply lacks the plan until then). */
  readonly ready: Promise<void>;

  constructor(models: readonly ModelConfig[]) {
    for (const m of models) if (m.load === 'on-demand' && m.slots === 'auto') this.#configs.set(m.name, m);
    this.ready = Promise.all(
      [...this.#configs.values()].map(async (m) => {
        this.#facts.set(m.name, await readModelFacts(m.path, { model: m.name, mmproj: m.mmproj, draft: m.draft }));
      }),
    ).then(() => undefined);
  }

  /** The plan a first load would make now, given the free memory and the room beside the loaded models; undefined for other models. */
  memoryFor(name: string, free: FreeMemory, room: FreeMemory): ModelMemoryStatus | undefined {
    const c = this.#configs.get(name);
    const facts = this.#facts.get(name);
    if (!c || !facts) return undefined;
    const host = totalmem();
    return planStatus(planMemory(facts, { ...modelPlanSettings(c, host), slots: autoSlots(facts, c, room, host) }, free));
  }
}
