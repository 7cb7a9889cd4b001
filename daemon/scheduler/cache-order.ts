// Cache-aware dequeue: when slots free up and more requests wait than can start, let a request whose
// prompt is already cached where a slot is free (in that slot, or in that replica's host prompt cache)
// go before one that would be a miss wherever it went. Pure: the service order in, a permutation out.
//
// Fairness stays bounded (design.md "Cache-aware dequeue"):
// - a request is only ever swapped with one of its own class (same priority, same aged or not), so
//   priority classes, aging and reserved slots work as before;
// - the one pulled forward comes from at most SKIP_WINDOW places behind the requests that would start;
// - a request is passed over at most MAX_SKIPS times (the caller counts `skips`), then it starts
//   in plain FIFO order; retries (`avoid` set) and held requests are never passed over or pulled.
import { servedAs, type Waiter } from './policy';

/** How far behind the requests that would start now a cache hit may be pulled from. */
export const SKIP_WINDOW = 8;
/** How many times one request may be passed over for a cache hit behind it. */
export const MAX_SKIPS = 2;

export interface CacheOrderInput<W extends Waiter> {
  /** Service order (policy.serviceOrder). */
  ordered: readonly W[];
  /** Free slots per ready instance now. */
  freeByInstance: ReadonlyMap<string, number>;
  /** Where the waiter's prompt is cached with a slot free now (instance id), undefined for a miss. */
  hitAt: (w: W) => string | undefined;
  now: number;
  backgroundMaxWaitMs?: number;
}

export interface CacheOrder<W extends Waiter> {
  /** The service order to plan with. */
  order: W[];
  /** Waiters moved behind a cache hit: the caller adds one to their `skips` if they did not start. */
  passedOver: W[];
}

export function cacheAwareOrder<W extends Waiter>(input: CacheOrderInput<W>): CacheOrder<W> {
  const order = [...input.ordered];
  const passedOver: W[] = [];
  const remaining = new Map(input.freeByInstance);
  const free = [...remaining.values()].reduce((a, b) => a + b, 0);
  if (free <= 0 || order.length <= free) return { order, passedOver };
  const front = Math.min(free, order.length);
  // Hits already at the front take their instance's free slots first.
  const covered = order.slice(0, front).map((w) => take(remaining, input.hitAt(w)));
  const classOf = (w: W): string => `${w.priority ?? 'interactive'}/${servedAs(w, input.now, input.backgroundMaxWaitMs)}`;
  const pulled = new Set<W>();
  for (let i = 0; i < front; i++) {
    const a = order[i]!;
    if (covered[i] || a.held || a.avoid !== undefined || (a.skips ?? 0) >= MAX_SKIPS) continue;
    for (let j = front; j < Math.min(order.length, front + SKIP_WINDOW); j++) {
      const z = order[j]!;
      if (pulled.has(z) || z.held || z.avoid !== undefined || z.deadline <= input.now || classOf(z) !== classOf(a)) continue;
      if (!take(remaining, input.hitAt(z))) continue;
      order[i] = z;
      order[j] = a;
      pulled.add(z);
      passedOver.push(a);
      break;
    }
  }
  return { order, passedOver };
}

function take(remaining: Map<string, number>, instanceId: string | undefined): boolean {
  if (instanceId === undefined) return false;
  const n = remaining.get(instanceId) ?? 0;
  if (n <= 0) return false;
  remaining.set(instanceId, n - 1);
  return true;
}
