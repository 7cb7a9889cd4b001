// Which free slot a dispatched request runs in. Pure: candidates in, choice out.
// With affinity, the prompt goes where most of it is already computed, on any ready instance:
// - a free slot whose last prompt shares the longest prefix (llama-server reuses it in place), or
// - an instance whose host-RAM prompt cache holds a longer one (host-cache.ts): there llama-server
//   saves the slot's prompt and restores the cached one, so the slot chosen is the least valuable
//   one: the least recently used among slots that have served (an empty slot would not do: with
//   `id_slot` set, llama-server skips its cache for an empty slot, server-context.cpp
//   get_available_slot: f_keep is 0/0 there).
// Without a shared prefix (or without affinity), the instance the routing policy chose, and there an
// empty slot first (it evicts nobody's cache), then the least recently used one.
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
  /** Per instance, the chunks of the prompt its host prompt cache can restore (HostCache.shared). */
  hostShared?: ReadonlyMap<string, number>;
}

export interface SlotPick {
  instanceId: string;
  slot: number;
  /** Chunks of the prompt the chosen slot already holds (0 without affinity). */
  sharedChunks: number;
  /** Chunks llama-server is expected to restore from its host cache into the slot; absent when none. */
  restoreChunks?: number;
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
    const host = bestHost(input);
    // In place beats a restore of the same length: no copy.
    if (host && host.shared > bestShared) {
      const slot = victim(candidates.filter((c) => c.instanceId === host.instanceId));
      if (slot) return { instanceId: host.instanceId, slot: slot.slot, sharedChunks: slot.key ? commonChunks(slot.key, key) : 0, restoreChunks: host.shared };
    }
    if (best && bestShared > 0) return { instanceId: best.instanceId, slot: best.slot, sharedChunks: bestShared };
  }
  const onChosen = candidates.filter((c) => c.instanceId === input.instanceId);
  const pool = onChosen.length > 0 ? onChosen : candidates;
  const cold = pool.find((c) => !c.key && c.lastUsedAt === 0);
  const pick = cold ?? lru(pool);
  return pick && { instanceId: pick.instanceId, slot: pick.slot, sharedChunks: 0 };
}

/** The instance with a free slot whose host cache restores the most of the prompt (ties: the policy's). */
function bestHost(input: SlotPickInput): { instanceId: string; shared: number } | undefined {
  if (!input.hostShared) return undefined;
  const open = new Set(input.candidates.map((c) => c.instanceId));
  let best: { instanceId: string; shared: number } | undefined;
  for (const [instanceId, shared] of input.hostShared) {
    if (!open.has(instanceId) || instanceId === input.avoid || shared <= 0) continue;
    if (!best || shared > best.shared || (shared === best.shared && instanceId === input.instanceId)) best = { instanceId, shared };
  }
  return best;
}

/** The slot to restore into: a used one (least recently), since llama-server skips its cache for an empty slot; else any. */
function victim(pool: readonly SlotCandidate[]): SlotCandidate | undefined {
  return lru(pool.filter((c) => c.key || c.lastUsedAt > 0)) ?? pool[0];
}

function lru(pool: readonly SlotCandidate[]): SlotCandidate | undefined {
  return pool.reduce<SlotCandidate | undefined>((lru, c) => (!lru || c.lastUsedAt < lru.lastUsedAt ? c : lru), undefined);
}

function better(c: SlotCandidate, best: SlotCandidate, preferred: string): boolean {
  const cp = c.instanceId === preferred;
  const bp = best.instanceId === preferred;
  if (cp !== bp) return cp;
  return c.lastUsedAt > best.lastUsedAt;
}

/**
 * Where the prompt is cached with a slot free now: the instance of the free slot or host cache that
 * holds the most of it, and how much; undefined when it would be a miss wherever it went (cache-order.ts).
 */
export function cachedAt(input: Omit<SlotPickInput, 'instanceId' | 'affinity'>): { instanceId: string; shared: number } | undefined {
  const { key } = input;
  if (!key || key.length === 0) return undefined;
  let best: { instanceId: string; shared: number } | undefined;
  for (const c of input.candidates) {
    if (!c.key || c.instanceId === input.avoid) continue;
    const shared = commonChunks(c.key, key);
    if (shared > 0 && (!best || shared > best.shared)) best = { instanceId: c.instanceId, shared };
  }
  const host = bestHost({ ...input, instanceId: '', affinity: true });
  if (host && host.shared > (best?.shared ?? 0)) best = host;
  return best;
}
