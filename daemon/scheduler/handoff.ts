// Slot handoff: the next queued request reaches llama-server just before its slot frees, so llama-server
// starts it the moment the slot is released (it defers a task whose `id_slot` is busy and pops it on
// release: server-queue.cpp pop_deferred_task) instead of one round trip later (final chunk → daemon →
// release → plan → request written → parsed), which costs a decode iteration per slot turnover on a
// GPU. Pure: which slots are near their end, and which waiter each is handed to. The effects (the
// early forward, the lease that begins at the predecessor's release) are in scheduler.ts; design.md
// "Slot handoff".
import { freeSlots, plan, type InstanceLoad, type PlanInput, type Waiter } from './policy';

/**
 * The most tokens a request may generate, as llama-server reads its body: `n_predict`, else
 * `max_output_tokens` (the Responses API's: its conversion makes it `max_tokens`, server-chat.cpp),
 * else `max_tokens`, else `max_completion_tokens` (server-common.cpp: n_predict overrides the others).
 * Undefined when unknown (absent, or -1: until the context is full): such a request is never
 * near its end.
 */
export function endTokens(body: Record<string, unknown>): number | undefined {
  for (const key of ['n_predict', 'max_output_tokens', 'max_tokens', 'max_completion_tokens']) {
    const v = body[key];
    if (v === undefined || v === null) continue;
    return typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : undefined;
  }
  return undefined;
}

/**
 * Whether a request that may generate `end` tokens and has relayed `tokens` SSE events is within
 * `handoffTokens` of its end. Events can run one ahead of tokens (a chat stream's first event carries
 * only the role): that only hands the slot off one token earlier. `handoffTokens` 0 is off.
 */
export function nearEnd(end: number | undefined, tokens: number, handoffTokens: number): boolean {
  if (handoffTokens <= 0 || end === undefined) return false;
  return end - tokens <= handoffTokens;
}

/** A leased slot near its request's end with no successor yet. */
export interface EndingSlot {
  instanceId: string;
  slot: number;
  /** Tokens its request may still generate (fewest first gets the first waiter). */
  remaining: number;
}

export interface HandoffInput<W extends Waiter> extends Omit<PlanInput, 'waiters' | 'instances' | 'rrCursor'> {
  /** The order plan() would serve them in now (cache-aware order applied, holds marked `held`). */
  waiters: readonly W[];
  instances: readonly InstanceLoad[];
  ending: readonly EndingSlot[];
  now: number;
  /** Whether the waiter's request can be forwarded before its slot frees (a streamed HTTP request). */
  canHandoff: (w: W) => boolean;
}

export interface Handoff<W extends Waiter> {
  waiter: W;
  instanceId: string;
  slot: number;
}

/**
 * Which waiter each ending slot goes to: exactly the ones plan() would start there if those slots
 * were free now, so priority classes, aging, reserved slots, holds and the cache-aware order decide
 * who, as they would a moment later. An instance with a truly free slot hands nothing off (normal
 * dispatch applies); a slot whose next waiter cannot be sent early is not handed to the one behind it
 * (that would jump the queue). One successor per slot: slots that have one are not `ending`.
 */
export function chooseHandoffs<W extends Waiter>(input: HandoffInput<W>): Handoff<W>[] {
  if (input.mode !== 'slot-aware' || input.ending.length === 0 || input.waiters.length === 0) return [];
  const bySlot = new Map<string, EndingSlot[]>();
  for (const e of input.ending) {
    const load = input.instances.find((i) => i.id === e.instanceId);
    if (!load || !load.ready || freeSlots(load) > 0) continue;
    const list = bySlot.get(e.instanceId) ?? [];
    list.push(e);
    bySlot.set(e.instanceId, list);
  }
  if (bySlot.size === 0) return [];
  for (const list of bySlot.values()) list.sort((a, b) => a.remaining - b.remaining || a.slot - b.slot);
  // As if the ending slots were free now; other instances as they are (none of them has a free slot
  // a waiter could take, or plan() would already have started it there).
  const instances = input.instances.map((i) => {
    const n = bySlot.get(i.id)?.length ?? 0;
    return n > 0 ? { ...i, inFlight: i.inFlight - n } : i;
  });
  const p = plan({ ...input, rrCursor: 0, waiters: input.waiters, instances }, input.now);
  const byId = new Map(input.waiters.map((w) => [w.id, w]));
  const out: Handoff<W>[] = [];
  for (const a of p.assignments) {
    const slot = bySlot.get(a.instanceId)?.shift();
    const waiter = byId.get(a.waiterId);
    if (!slot || !waiter) continue;
    if (input.canHandoff(waiter)) out.push({ waiter, instanceId: a.instanceId, slot: slot.slot });
  }
  return out;
}
