// Which free slot a dispatched request runs in. Pure: candidates in, choice out.
// With affinity, the slot (on any ready instance) whose last prompt shares the longest prefix with
// this one wins, since llama-server then reuses that prefix from its KV cache instead of computing
// it again. Without a shared prefix (or without affinity), the instance the routing policy chose,
// and there an empty slot first (it evicts nobody's cache), then the least recently used one.
import { commonChunks, type PromptKey } from './prompt-key';
import type { FreeSlot } from './slot-table';

export interface SlotCandidate extends FreeSlot {
  instanceId: string;
}

export interface SlotPickInput {
  /** Free slots of every ready instance of the model. */
  candidates: readonly SlotCandidate[];
  /** The routing policy's instance (most free slots, then least recently assigned). */
  instanceId: string;
  key?: PromptKey;
  affinity: boolean;
  /** An instance that just failed this request: its slots are not matched for affinity. */
  avoid?: string;
}

export interface SlotPick {
  instanceId: string;
  slot: number;
  /** Chunks of the prompt the chosen slot already holds (0 without affinity). */
  sharedChunks: number;
}

export function pickSlot(input: SlotPickInput): SlotPick | undefined {
  const { candidates, key } = input;
  if (input.affinity && key && key.length > 0) {
    let best: SlotCandidate | undefined;
    let bestShared = 0;
    for (const c of candidates) {
      if (!c.key || c.instanceId === input.avoid) continue;
      const shared = commonChunks(c.key, key);
      // Ties: the routing policy's instance, then the slot used most recently (its cache is warmest).
      if (shared > bestShared || (shared === bestShared && best && shared > 0 && better(c, best, input.instanceId))) {
        best = c;
        bestShared = shared;
      }
    }
    if (best && bestShared > 0) return { instanceId: best.instanceId, slot: best.slot, sharedChunks: bestShared };
  }
  const onChosen = candidates.filter((c) => c.instanceId === input.instanceId);
  const pool = onChosen.length > 0 ? onChosen : candidates;
  const cold = pool.find((c) => !c.key);
  const pick = cold ?? pool.reduce<SlotCandidate | undefined>((lru, c) => (!lru || c.lastUsedAt < lru.lastUsedAt ? c : lru), undefined);
  return pick && { instanceId: pick.instanceId, slot: pick.slot, sharedChunks: 0 };
}

function better(c: SlotCandidate, best: SlotCandidate, preferred: string): boolean {
  const cp = c.instanceId === preferred;
  const bp = best.instanceId === preferred;
  if (cp !== bp) return cp;
  return c.lastUsedAt > best.lastUsedAt;
}
