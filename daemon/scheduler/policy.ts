// Routing and queue policy: pure functions the scheduler's effect loop calls on every event.
// No I/O, no timers, no clock: time comes in as `now` (epoch ms), so every decision is a table test.
// States, invariants and the effect loop around these functions: ./design.md.

/** `slot-aware` is the product; `round-robin` exists only as the benchmark's baseline. */
export type RoutingMode = 'slot-aware' | 'round-robin';

/** What the scheduler knows about one instance of a model when it routes. */
export interface InstanceLoad {
  id: string;
  /** Only ready instances (health 200) receive requests. */
  ready: boolean;
  /** Slots of this instance (`--parallel`). */
  slots: number;
  /** Requests the daemon has dispatched here and not yet seen finish. */
  inFlight: number;
  /** Busy slots in the last `/slots` poll, whoever sent their requests. */
  busySeen: number;
  /**
   * Of `busySeen`, how many were the daemon's own at poll time. Record it as
   * `min(busySeen, inFlight)` when the poll lands and leave it until the next poll; see `freeSlots`.
   */
  ownBusySeen?: number;
  /** Epoch ms of the last dispatch here; breaks ties so equal instances take turns. */
  lastAssignedAt?: number;
}

/**
 * `interactive`: someone waits on it now (editor completions, prompts; the default).
 * `background`: batch work (benchmarks, `X-Slotwise-Priority: background`): served after every
 * interactive request, until it has waited `backgroundMaxWaitMs` (then it is served like one).
 */
export type Priority = 'interactive' | 'background';

/** A request waiting in a model's queue; the queue array is in arrival order, index 0 is the head. */
export interface Waiter {
  id: string;
  /** Default `interactive`. */
  priority?: Priority;
  /** Epoch ms at which the request entered the queue. */
  enqueuedAt: number;
  /** Epoch ms at which it fails with SW_ERR_QUEUE_TIMEOUT if it has not started. */
  deadline: number;
  /** Instance that just failed this request before its first byte: placed elsewhere if possible. */
  avoid?: string;
  /**
   * Not startable yet, whatever is free: a request that superseded older ones of its session waits
   * until their slots are released, so one session never holds two slots. Others go ahead of it.
   */
  held?: boolean;
  /** Times a cache hit behind it was started first (cache-order.ts); bounded by MAX_SKIPS. */
  skips?: number;
  /** Held back for the replica that has its prompt cached until then (cache-order.ts); set once. */
  cacheHoldUntil?: number;
  /**
   * Epoch ms before which it does not start, whatever is free: a request of a session in a typing
   * burst waits about one learned keystroke gap (session-pace.ts), so the next keystroke's request
   * supersedes it before it takes a slot. Others go ahead of it meanwhile.
   */
  holdUntil?: number;
}

export interface Pick {
  instanceId: string;
  /** Round-robin position to pass to the next call; unchanged in slot-aware mode. */
  nextCursor: number;
}

export type Admission = { ok: true } | { ok: false; code: 'SW_ERR_QUEUE_FULL'; retryAfterS: number };

export interface PlanInput {
  mode: RoutingMode;
  rrCursor: number;
  /** FIFO order: index 0 is the head. Waiters whose client left must already be removed. */
  waiters: readonly Waiter[];
  /** In a stable order (instance number): round-robin rotates in this order. */
  instances: readonly InstanceLoad[];
  /** A background waiter that has waited this long is ordered like an interactive one. Default: never. */
  backgroundMaxWaitMs?: number;
  /** Free slots (over all ready instances) that background waiters never take, slot-aware mode only. Default 0. */
  reservedSlots?: number;
}

export interface Assignment {
  waiterId: string;
  instanceId: string;
}

export interface Plan {
  /** Dispatch these now, in this order. */
  assignments: Assignment[];
  /** Fail these with SW_ERR_QUEUE_TIMEOUT; none of them is in `assignments`. */
  expired: string[];
  nextCursor: number;
}

/** Retry-After bounds in seconds when the queue is full. */
export const RETRY_AFTER_MIN_S = 1;
export const RETRY_AFTER_MAX_S = 60;
/** Used when nothing finished recently, so there is no service rate to estimate from. */
export const RETRY_AFTER_UNKNOWN_S = 5;

// ---------------------------------------------------------------------------------------------
// Routing

/**
 * Slots a new request could start in now:
 *
 *   free = slots − inFlight − foreign,   foreign = busySeen − own   (floored at 0)
 *
 * llama-server's port can also be used directly (someone curls it), so /slots may show busy slots
 * the daemon did not send; handing those out would make llama-server queue our request. But /slots
 * also shows the daemon's own requests, which `inFlight` already counts: subtracting `busySeen`
 * whole would count them twice. So only the busy slots the daemon cannot account for are foreign.
 *
 * Without `ownBusySeen`, own = min(busySeen, inFlight): every busy slot that could be ours is taken
 * to be ours. Between polls that guess drifts both ways: a request dispatched after the poll "explains"
 * a foreign busy slot (so the slot is handed out twice), and a request that finished before the poll
 * catches up leaves its slot reading foreign (not free) until the poll. With `ownBusySeen` frozen at
 * poll time neither happens, so the effects layer should always set it; `plan` freezes it itself.
 */
export function freeSlots(instance: InstanceLoad): number {
  const { slots, inFlight, busySeen, ownBusySeen } = instance;
  const own = ownBusySeen === undefined ? Math.min(busySeen, inFlight) : Math.min(ownBusySeen, busySeen);
  const foreign = Math.max(0, busySeen - own);
  return Math.max(0, slots - inFlight - foreign);
}

/**
 * Picks the instance for the next request, or undefined when it must wait in the queue.
 * slot-aware: a ready instance with a free slot, most free first, then least recently assigned,
 * then id; `avoid` is skipped unless it is the only one with a free slot.
 * round-robin: the next ready instance in the given order, full or not (llama-server then queues
 * the request itself: that is the baseline the benchmark compares against); ignores `avoid`.
 */
export function pickInstance(
  instances: readonly InstanceLoad[],
  mode: RoutingMode,
  rrCursor: number,
  avoid?: string,
): Pick | undefined {
  return mode === 'round-robin' ? pickRoundRobin(instances, rrCursor) : pickSlotAware(instances, rrCursor, avoid);
}

function pickSlotAware(instances: readonly InstanceLoad[], cursor: number, avoid: string | undefined): Pick | undefined {
  const open = instances.filter((i) => i.ready && freeSlots(i) > 0);
  const preferred = open.filter((i) => i.id !== avoid);
  const best = (preferred.length > 0 ? preferred : open).sort(bySlotAwareOrder)[0];
  return best && { instanceId: best.id, nextCursor: cursor };
}

function bySlotAwareOrder(a: InstanceLoad, b: InstanceLoad): number {
  // Never-assigned instances sort first: a fresh replica should take work before a used one.
  const assignedA = a.lastAssignedAt ?? Number.NEGATIVE_INFINITY;
  const assignedB = b.lastAssignedAt ?? Number.NEGATIVE_INFINITY;
  return compare(freeSlots(b), freeSlots(a)) || compare(assignedA, assignedB) || compare(a.id, b.id);
}

function pickRoundRobin(instances: readonly InstanceLoad[], cursor: number): Pick | undefined {
  const ready = instances.filter((i) => i.ready);
  if (ready.length === 0) return undefined;
  const index = ((Math.trunc(cursor) % ready.length) + ready.length) % ready.length;
  const chosen = ready[index];
  return chosen && { instanceId: chosen.id, nextCursor: index + 1 };
}

// Code-point order, not localeCompare: the same ids must sort the same on every machine.
function compare(a: number | string, b: number | string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Queue

/**
 * Admits a new request when fewer than `maxWaiting` wait, else refuses it with a Retry-After.
 * A place opens each time a request finishes, so the estimate is the time the recent service rate
 * (`servedPerS`, finished requests per second, 0 when unknown) needs to open one place for it:
 * overflow / rate, in [1, 60] s. Retrying sooner would only be refused again.
 */
export function admit(queueLength: number, maxWaiting: number, servedPerS = 0): Admission {
  if (queueLength < maxWaiting) return { ok: true };
  const overflow = queueLength - maxWaiting + 1;
  const estimate = servedPerS > 0 ? Math.ceil(overflow / servedPerS) : RETRY_AFTER_UNKNOWN_S;
  const retryAfterS = Math.min(RETRY_AFTER_MAX_S, Math.max(RETRY_AFTER_MIN_S, estimate));
  return { ok: false, code: 'SW_ERR_QUEUE_FULL', retryAfterS };
}

/** Ids of waiters whose deadline has come (deadline ≤ now), in queue order. */
export function expired(waiters: readonly Waiter[], now: number): string[] {
  return waiters.filter((w) => w.deadline <= now).map((w) => w.id);
}

/**
 * The class a waiter is served in now: background work that waited `backgroundMaxWaitMs` or longer
 * is aged into the interactive class, so a steady interactive stream cannot starve it.
 */
export function servedAs(w: Waiter, now: number, backgroundMaxWaitMs = Number.POSITIVE_INFINITY): Priority {
  if (w.priority !== 'background') return 'interactive';
  return now - w.enqueuedAt >= backgroundMaxWaitMs ? 'interactive' : 'background';
}

/**
 * The order waiters are served in: the interactive class (with aged background work) first, then
 * background; arrival order inside each class (a stable sort of the queue array, so a retry put at
 * the head of the array stays first of its class). Inputs are not mutated.
 */
export function serviceOrder<W extends Waiter>(waiters: readonly W[], now: number, backgroundMaxWaitMs?: number): W[] {
  const rank = (w: W): number => (servedAs(w, now, backgroundMaxWaitMs) === 'interactive' ? 0 : 1);
  return waiters.map((w, i) => ({ w, i, r: rank(w) })).sort((a, b) => a.r - b.r || a.i - b.i).map((x) => x.w);
}

/** 1-based position of each waiter in service order (for `job.queued`, status and headers). */
export function positions(waiters: readonly Waiter[], now = 0, backgroundMaxWaitMs?: number): Map<string, number> {
  return new Map(serviceOrder(waiters, now, backgroundMaxWaitMs).map((w, index) => [w.id, index + 1]));
}

/** Waiting requests by the class they were sent with (status). */
export function countByClass(waiters: readonly Waiter[]): Record<Priority, number> {
  const counts = { interactive: 0, background: 0 };
  for (const w of waiters) counts[w.priority ?? 'interactive']++;
  return counts;
}

/** Weight of the newest sample in the service-time average: about the last 5 leases dominate. */
export const SERVICE_EWMA_ALPHA = 0.3;

/** Exponentially weighted moving average of lease durations (ms); the first sample starts it. */
export function ewma(previous: number | undefined, sample: number, alpha = SERVICE_EWMA_ALPHA): number {
  return previous === undefined ? sample : previous + alpha * (sample - previous);
}

/**
 * Estimated wait of the waiter at `position` (1-based) in ms: with `slots` slots serving, one frees
 * about every serviceMs / slots, and this waiter starts when the position-th one does. Undefined
 * while no lease has ended (no service time known) or no slot exists.
 */
export function etaMs(position: number, slots: number, serviceMs: number | undefined): number | undefined {
  if (serviceMs === undefined || slots <= 0) return undefined;
  return Math.round((position * serviceMs) / slots);
}

/** How long the longest waiter has waited, 0 for an empty queue. */
export function oldestWaitMs(waiters: readonly Waiter[], now: number): number {
  if (waiters.length === 0) return 0;
  const oldest = waiters.reduce((min, w) => Math.min(min, w.enqueuedAt), Number.POSITIVE_INFINITY);
  return Math.max(0, now - oldest);
}

// ---------------------------------------------------------------------------------------------
// Plan

/**
 * What to do now for one model's queue: expire waiters past their deadline, then dispatch in service
 * order (serviceOrder: interactive first, FIFO inside each class) while an instance can take one.
 * When a waiter cannot start for want of a slot, nobody behind it does (every instance of a model
 * serves every request alike); a background waiter held back only by `reservedSlots` lets the
 * interactive waiters behind it (none, unless aged work is ahead) through.
 * An interactive waiter in its typing-burst hold (`holdUntil`) keeps one free slot from background
 * work, like a reserved slot, until its hold ends: otherwise a slot that frees during the hold goes to
 * batch work and the editor's request, once its hold ends, waits for the next slot to free (on a
 * saturated model, up to a whole service time) instead of the ≤ sessionHoldMs it chose to wait.
 * Each assignment is counted into the working copy of the loads before the next pick, so one plan
 * never overfills an instance. Inputs are not mutated.
 */
export function plan(state: PlanInput, now: number): Plan {
  const expiredIds = expired(state.waiters, now);
  const gone = new Set(expiredIds);
  // Freeze which busy slots are ours before counting our own assignments in (see freeSlots).
  const loads = state.instances.map((i) => ({ ...i, ownBusySeen: i.ownBusySeen ?? Math.min(i.busySeen, i.inFlight) }));
  const assignments: Assignment[] = [];
  let cursor = state.rrCursor;
  // Interactive waiters in their typing-burst hold: one free slot each is kept from background work.
  const holding = state.waiters.filter((w) => !gone.has(w.id) && !w.held && (w.holdUntil ?? 0) > now && w.priority !== 'background').length;
  const reserved = state.mode === 'slot-aware' ? (state.reservedSlots ?? 0) + holding : 0;
  for (const waiter of serviceOrder(state.waiters, now, state.backgroundMaxWaitMs)) {
    if (gone.has(waiter.id) || waiter.held || (waiter.holdUntil ?? 0) > now) continue;
    // Reserved slots are for work sent as interactive; aged background work is ordered first but never takes them.
    if (reserved > 0 && waiter.priority === 'background' && totalFree(loads) <= reserved) continue;
    const pick = pickInstance(loads, state.mode, cursor, waiter.avoid);
    if (!pick) break;
    assignments.push({ waiterId: waiter.id, instanceId: pick.instanceId });
    cursor = pick.nextCursor;
    const target = loads.find((i) => i.id === pick.instanceId);
    if (target) {
      target.inFlight += 1;
      target.lastAssignedAt = now;
    }
  }
  return { assignments, expired: expiredIds, nextCursor: cursor };
}

function totalFree(loads: readonly InstanceLoad[]): number {
  return loads.reduce((sum, i) => sum + (i.ready ? freeSlots(i) : 0), 0);
}
