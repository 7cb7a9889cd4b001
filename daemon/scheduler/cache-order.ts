// Cache-aware dequeue: when a slot frees up, prefer a request whose prompt is already cached where the
// slot is free (in that slot, or in that replica's host prompt cache) over one that would be a miss
// there. Pure: the service order in, a permutation and the requests to hold back for now out.
//
// Two moves, both bounded (design.md "Cache-aware dequeue"):
// - pull forward: when more wait than can start, a cache hit from at most SKIP_WINDOW places behind
//   the requests that would start takes the place of one that would miss. A request is passed over
//   at most MAX_SKIPS times (the caller counts `skips`), and only by one of its own class (same
//   priority, same aged or not), so priority classes, aging and reserved slots work as before.
// - hold: a request whose prompt is cached on a replica with no free slot (its "home"), or on one whose
//   free slots the hits before it take, is not sent to a free slot elsewhere, where it would be computed
//   again, until `cacheHoldUntil` (the caller sets it once: holdMs). After that it goes wherever is free.
// Retries (`avoid` set) and held requests are never passed over, pulled or held back.
import { servedAs, type Waiter } from './policy';
import { TOKENS_PER_CHUNK } from './host-cache';

/** How far behind the requests that would start now a cache hit may be pulled from. */
export const SKIP_WINDOW = 8;
/** How many times one request may be passed over for a cache hit behind it. */
export const MAX_SKIPS = 2;
/** The longest a request is held back for its home replica, ms. */
export const MAX_HOLD_MS = 2000;
/** A hold lasts at most this many mean lease durations. */
export const HOLD_SERVICE_TIMES = 2;
/** A hold lasts at most this many times the recompute it saves. */
export const HOLD_PREFILL_TIMES = 2;

export interface CacheOrderInput<W extends Waiter> {
  /** Service order (policy.serviceOrder). */
  ordered: readonly W[];
  /** Free slots per ready instance now. */
  freeByInstance: ReadonlyMap<string, number>;
  /** Where the waiter's prompt is cached with a slot free now (instance id), undefined for a miss. */
  hitAt: (w: W) => string | undefined;
  /** Where the waiter's prompt is cached on a ready instance with no free slot now (only asked after a miss). */
  homeAt?: (w: W) => string | undefined;
  /** How long the waiter may be held for its home, or for its hit instance once that has no slot left for it (0: do not hold); see holdMs(). */
  holdMs?: (w: W) => number;
  now: number;
  backgroundMaxWaitMs?: number;
}

export interface CacheOrder<W extends Waiter> {
  /** The service order to plan with. */
  order: W[];
  /** Waiters moved behind a cache hit: the caller adds one to their `skips` if they did not start. */
  passedOver: W[];
  /** Waiters not to start in this plan, with the time their hold ends (the caller keeps the first). */
  holds: { waiter: W; until: number }[];
}

export function cacheAwareOrder<W extends Waiter>(input: CacheOrderInput<W>): CacheOrder<W> {
  const order = [...input.ordered];
  const passedOver: W[] = [];
  const holds: { waiter: W; until: number }[] = [];
  const remaining = new Map(input.freeByInstance);
  const free = [...remaining.values()].reduce((a, b) => a + b, 0);
  if (free <= 0) return { order, passedOver, holds };
  const front = Math.min(free, order.length);
  const window = Math.min(order.length, front + SKIP_WINDOW);
  const hits = new Map<W, string | undefined>();
  const hitAt = (w: W): string | undefined => {
    if (!hits.has(w)) hits.set(w, input.hitAt(w));
    return hits.get(w);
  };
  // Hits already at the front take their instance's free slots first.
  const covered = order.slice(0, front).map((w) => take(remaining, hitAt(w)));
  const classOf = (w: W): string => `${w.priority ?? 'interactive'}/${servedAs(w, input.now, input.backgroundMaxWaitMs)}`;
  const pulled = new Set<W>();
  for (let i = 0; i < front && order.length > free; i++) {
    const a = order[i]!;
    if (covered[i] || a.held || a.avoid !== undefined || (a.skips ?? 0) >= MAX_SKIPS) continue;
    for (let j = front; j < window; j++) {
      const z = order[j]!;
      if (pulled.has(z) || z.held || z.avoid !== undefined || z.deadline <= input.now || classOf(z) !== classOf(a)) continue;
      if (!take(remaining, hitAt(z))) continue;
      order[i] = z;
      order[j] = a;
      pulled.add(z);
      passedOver.push(a);
      break;
    }
  }
  if (input.homeAt && input.holdMs) {
    // A hit counts only while its instance has a slot left for it after the hits before it in this
    // order: plan() assigns slots knowing nothing of hits, so the second of two hits on one free slot
    // would start on another replica and compute its prompt again. It is held like one whose home is full.
    const left = new Map(input.freeByInstance);
    for (const w of order.slice(0, window)) {
      if (w.held || w.avoid !== undefined) continue;
      const hit = hitAt(w);
      if (hit !== undefined && take(left, hit)) continue;
      if (w.cacheHoldUntil !== undefined && w.cacheHoldUntil <= input.now) continue; // held once already: it goes where it can
      const ms = hit === undefined && input.homeAt(w) === undefined ? 0 : Math.min(MAX_HOLD_MS, input.holdMs(w));
      if (ms > 0) holds.push({ waiter: w, until: w.cacheHoldUntil ?? input.now + ms });
    }
  }
  return { order, passedOver, holds };
}

/**
 * How long a request may wait for its home replica: about what computing the part of its prompt only
 * home holds would cost elsewhere (`extraChunks` × tokens per chunk × prefill ms per token, times
 * HOLD_PREFILL_TIMES: the recompute also slows the other slots of the replica it lands on, which
 * share its batches), at most HOLD_SERVICE_TIMES mean lease durations (by then a slot there has freed
 * even for the last in line) and MAX_HOLD_MS. 0 while either rate is unknown: no hold.
 */
export function holdMs(extraChunks: number, serviceMs: number | undefined, prefillMsPerToken: number | undefined): number {
  if (extraChunks <= 0 || serviceMs === undefined || prefillMsPerToken === undefined) return 0;
  return Math.min(MAX_HOLD_MS, HOLD_SERVICE_TIMES * serviceMs, HOLD_PREFILL_TIMES * extraChunks * TOKENS_PER_CHUNK * prefillMsPerToken);
}

function take(remaining: Map<string, number>, instanceId: string | undefined): boolean {
  if (instanceId === undefined) return false;
  const n = remaining.get(instanceId) ?? 0;
  if (n <= 0) return false;
  remaining.set(instanceId, n - 1);
  return true;
}
