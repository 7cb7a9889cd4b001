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
// Among otherwise equal slots, the one next to the slots in use: llama-server keeps a KV stream per
// slot (kv_unified off, its default) and every decode step attends over the streams from the lowest
// to the highest busy slot, idle ones between included (src/llama-kv-cache.cpp get_k/get_v: a view of
// s1 - s0 + 1 streams), and rebuilds its compute graph whenever that range moves. Measured (tiny model,
// 8 slots, 4 streams of 128 tokens, 64 requests): slots {0,4,5,6} took 1,889 and 1,837 ms with 28 and
// 77 graphs reused; {4,5,6,7} 1,565 and 1,662 ms with 1,891 and 2,019 reused.
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
  /** Per instance, the range of its slots in use (leased, someone else's, still cancelling): a pick stays next to them. */
  busy?: ReadonlyMap<string, BusyRange>;
}

/** The lowest and highest slot in use on an instance; none in use: `lo` > `hi` (see busyRange). */
export interface BusyRange {
  lo: number;
  hi: number;
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
      // Ties: the routing policy's instance, then the slot nearest those in use, then the one used most recently (its cache is warmest).
      if (shared > bestShared || (shared === bestShared && best && shared > 0 && better(c, best, input))) {
        best = c;
        bestShared = shared;
      }
    }
    const host = bestHost(input, input.instanceId);
    // In place beats a restore of the same length: no copy.
    if (host && host.shared > bestShared) {
      const slot = victim(candidates.filter((c) => c.instanceId === host.instanceId), input.busy);
      if (slot) return { instanceId: host.instanceId, slot: slot.slot, sharedChunks: slot.key ? commonChunks(slot.key, key) : 0, restoreChunks: host.shared };
    }
    if (best && bestShared > 0) return { instanceId: best.instanceId, slot: best.slot, sharedChunks: bestShared };
  }
  const onChosen = candidates.filter((c) => c.instanceId === input.instanceId);
  const pool = nearest(onChosen.length > 0 ? onChosen : candidates, input.busy);
  // A gap between slots in use (or any slot of an idle replica): an empty one first (it evicts nobody's
  // cache), then the least recently used. Beside them: the lower side, so the slots in use drift down
  // and stay put, and with them llama-server's range of streams and its graph.
  const inGap = pool.filter((c) => !outside(input.busy?.get(c.instanceId), c.slot));
  const pick = inGap.length > 0 ? (inGap.find((c) => !c.key && c.lastUsedAt === 0) ?? lru(inGap)) : lowest(pool);
  return pick && { instanceId: pick.instanceId, slot: pick.slot, sharedChunks: 0 };
}

/** The range of `slots` (none: an empty range), to which takeIn() adds the slots picked after. */
export function busyRange(slots: Iterable<number> = []): BusyRange {
  const r = { lo: Number.POSITIVE_INFINITY, hi: Number.NEGATIVE_INFINITY };
  for (const slot of slots) takeIn(r, slot);
  return r;
}

export function takeIn(r: BusyRange, slot: number): void {
  if (slot < r.lo) r.lo = slot;
  if (slot > r.hi) r.hi = slot;
}

/** Whether `slot` lies beyond the range of the slots in use (never for an instance with none). */
function outside(busy: BusyRange | undefined, slot: number): boolean {
  return !!busy && busy.lo <= busy.hi && (slot < busy.lo || slot > busy.hi);
}

function lowest(pool: readonly SlotCandidate[]): SlotCandidate | undefined {
  return pool.reduce<SlotCandidate | undefined>((low, c) => (!low || c.slot < low.slot ? c : low), undefined);
}

/**
 * How far apart the instance's slots in use would be with `slot` taken too (highest minus lowest):
 * llama-server attends over every stream in that range (see the top of this file).
 */
export function spanWith(busy: BusyRange | undefined, slot: number): number {
  return busy ? Math.max(busy.hi, slot) - Math.min(busy.lo, slot) : 0;
}

/** The candidates whose pick keeps their instance's slots in use closest together. */
function nearest(pool: readonly SlotCandidate[], busy: SlotPickInput['busy']): SlotCandidate[] {
  const spans = pool.map((c) => spanWith(busy?.get(c.instanceId), c.slot));
  const least = Math.min(...spans);
  return pool.filter((_, i) => spans[i] === least);
}

/**
 * The instance with a free slot whose host cache restores the most of the prompt (ties: `prefer`, the
 * policy's). Runs for every waiter at every pump under saturation: no set or object built but the answer.
 */
function bestHost(input: Pick<SlotPickInput, 'candidates' | 'hostShared' | 'avoid'>, prefer?: string): { instanceId: string; shared: number } | undefined {
  if (!input.hostShared) return undefined;
  let bestId: string | undefined;
  let bestShared = 0;
  for (const [instanceId, shared] of input.hostShared) {
    if (shared <= 0 || instanceId === input.avoid || !(shared > bestShared || (shared === bestShared && instanceId === prefer))) continue;
    if (!hasSlotOn(input.candidates, instanceId)) continue;
    bestId = instanceId;
    bestShared = shared;
  }
  return bestId === undefined ? undefined : { instanceId: bestId, shared: bestShared };
}

function hasSlotOn(candidates: readonly SlotCandidate[], instanceId: string): boolean {
  for (const c of candidates) if (c.instanceId === instanceId) return true;
  return false;
}

/** The slot to restore into: a used one (next to those in use, then least recently used), since llama-server skips its cache for an empty slot; else any. */
function victim(pool: readonly SlotCandidate[], busy: SlotPickInput['busy']): SlotCandidate | undefined {
  const used = pool.filter((c) => c.key || c.lastUsedAt > 0);
  return lru(nearest(used, busy)) ?? nearest(pool, busy)[0];
}

function lru(pool: readonly SlotCandidate[]): SlotCandidate | undefined {
  return pool.reduce<SlotCandidate | undefined>((lru, c) => (!lru || c.lastUsedAt < lru.lastUsedAt ? c : lru), undefined);
}

function better(c: SlotCandidate, best: SlotCandidate, input: SlotPickInput): boolean {
  const cp = c.instanceId === input.instanceId;
  const bp = best.instanceId === input.instanceId;
  if (cp !== bp) return cp;
  const cs = spanWith(input.busy?.get(c.instanceId), c.slot);
  const bs = spanWith(input.busy?.get(best.instanceId), best.slot);
  if (cs !== bs) return cs < bs;
  // Beside the slots in use, as the cold pick: the lower side.
  if (outside(input.busy?.get(c.instanceId), c.slot) && outside(input.busy?.get(best.instanceId), best.slot)) return c.slot < best.slot;
  return c.lastUsedAt > best.lastUsedAt;
}

/**
 * Where the prompt is cached with a slot free now: the instance of the free slot or host cache that
 * holds the most of it, and how much; undefined when it would be a miss wherever it went (cache-order.ts).
 */
export function cachedAt(input: Omit<SlotPickInput, 'instanceId' | 'affinity'>): { instanceId: string; shared: number } | undefined {
  const { key } = input;
  if (!key || key.length === 0) return undefined;
  let bestId: string | undefined;
  let bestShared = 0;
  for (const c of input.candidates) {
    if (!c.key || c.instanceId === input.avoid) continue;
    const shared = commonChunks(c.key, key);
    if (shared > bestShared) {
      bestId = c.instanceId;
      bestShared = shared;
    }
  }
  const host = bestHost(input);
  if (host && host.shared > bestShared) return host;
  return bestId === undefined ? undefined : { instanceId: bestId, shared: bestShared };
}
