// The scheduler's effects around the pure policy (policy.ts): per-model FIFO queues, slot leases
// (which request holds which llama-server slot: slot-table.ts), deadlines, cancellation and outcome
// accounting. Every event ends in #pump(), which asks plan() what to do and does it, picking the slot
// with slot-pick.ts. Invariants: ./design.md.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/types';
import { SlotwiseError } from '../../shared/errors';
import type { LlamaInstance } from '../runtime/instance';
import type { Priority, QueueStatus, RequestOutcome, RequestSource, SlotStatus } from '../../shared/protocol';
import type { Supervisor } from '../runtime/supervisor';
import { admit, countByClass, etaMs, ewma, oldestWaitMs, plan, positions, serviceOrder, type InstanceLoad, type Waiter } from './policy';
import { Sessions, sessionKey } from './sessions';
import { SessionPace } from './session-pace';
import { promptKey, type PromptKey } from './prompt-key';
import { SlotTable } from './slot-table';
import { busyRange, cachedAt, pickSlot, takeIn, type BusyRange, type SlotCandidate } from './slot-pick';
import { HostCache } from './host-cache';
import { cacheAwareOrder, holdMs, type CacheOrder } from './cache-order';
import { chooseHandoffs, nearEnd, type EndingSlot } from './handoff';

/** One accepted request: it ends with exactly one outcome, recorded by finish(). */
export interface Ticket {
  readonly id: string;
  readonly model: string;
  readonly source: RequestSource;
  readonly acceptedAt: number;
  /** The prompt's prefix hashes, when the model routes by prompt-cache affinity. */
  readonly prompt?: PromptKey;
  /** Default interactive. */
  readonly priority: Priority;
  /** Session key (X-Slotwise-Session, prompt.submit `session`): a newer ticket of the same key and model supersedes this one. */
  readonly session?: string;
  /**
   * Aborts (reason SW_ERR_SUPERSEDED) when a newer ticket supersedes this one while it runs; the way
   * in combines it with its client's signal so the upstream request stops and the lease is released.
   */
  readonly signal: AbortSignal;
  /**
   * Epoch ms before which it takes no slot: a session's request inside a typing burst waits about one
   * learned keystroke gap (session-pace.ts, queue.sessionHoldMs), so the next keystroke supersedes it
   * before it runs. Absent when it may start at once.
   */
  readonly holdUntil?: number;
  /** The most tokens it may generate (max_tokens, n_predict), for a streamed HTTP request: near it, its slot may be handed off (handoff.ts). */
  readonly maxTokens?: number;
  outcome?: RequestOutcome;
}

/** One ended lease as the scheduler saw it: who held which slot from when to when (the bench's slot-time accounting). */
export interface LeaseRecord {
  requestId: string;
  model: string;
  instanceId: string;
  /** Undefined in round-robin mode (llama-server picked the slot). */
  slot?: number;
  priority: Priority;
  session?: string;
  /** Epoch ms: the request was accepted (open), took the slot, gave it back. */
  acceptedAt: number;
  leasedAt: number;
  releasedAt: number;
  /**
   * Epoch ms the slot was handed to it while still leased (slot handoff): the scheduler's decision,
   * made then; its lease began at `leasedAt`, when the predecessor's ended.
   */
  handedOffAt?: number;
  /** A newer request of its session superseded it (the slot time went to work nobody sees). */
  superseded: boolean;
}

export interface OpenOptions {
  /** Default interactive. */
  priority?: Priority;
  session?: string;
  /** A streamed HTTP request's most tokens (handoff.ts endTokens): its slot may be handed to the next waiter near its end. */
  maxTokens?: number;
}

/** A slot held on one instance from dispatch until release(), which every path calls (dispatch.ts). */
export interface Lease {
  readonly instance: LlamaInstance;
  /** The ticket's id: `X-Slotwise-Request-Id`, or the job id. */
  readonly requestId: string;
  /** llama-server's slot (`id_slot`), chosen by the daemon; undefined in round-robin mode (llama-server picks). */
  readonly slot?: number;
  /** Time spent in the queue, ms (for a handed-off request, known once `handoff` resolved). */
  readonly waitedMs: number;
  /**
   * Set when the slot was handed off before it freed (design.md "Slot handoff"): the request is
   * forwarded now, llama-server defers it until the slot frees, and the lease itself begins when the
   * predecessor's ends (this resolves then). Rejects if the request left the queue first (its client
   * left or it was superseded). Until then the request counts as queued.
   */
  readonly handoff?: Promise<void>;
  /** 1-based position in service order when the request entered the queue (1 = next). */
  readonly queuePosition: number;
  /** Tokens decoded so far, for the slot's status row. */
  progress(tokens: number): void;
  /** From llama-server's final `timings`: prompt tokens reused from the KV cache and computed, the ms computing took, and a draft model's proposed and accepted tokens. */
  promptTokens(cached: number, processed: number, promptMs?: number, draft?: { drafted: number; accepted: number }): void;
  release(): void;
}

export interface AcquireOptions {
  signal?: AbortSignal;
  /** Called with the 1-based queue position (and the estimated wait, once known) whenever the position changes while waiting. */
  onQueued?: (position: number, etaMs?: number) => void;
  /** An instance that just failed this request before its first byte: use another if one is free. */
  avoid?: string;
  /** A retry: it goes back in at the head of the queue (it was admitted before everyone waiting). */
  retry?: boolean;
  /** The caller can forward the request before its slot frees and then waits for `lease.handoff` (streamed HTTP). */
  handoff?: boolean;
}

export interface SchedulerHooks {
  onQueueWait?: (model: string, seconds: number) => void;
  onOutcome?: (model: string, outcome: RequestOutcome) => void;
  /** A request ended `cancelled` because a newer one of its session superseded it; `started`: it had taken a slot. */
  onSuperseded?: (model: string, started: boolean) => void;
  /**
   * A request for a model that is not running: true when the model loads on demand (the loader starts
   * it once; the request waits in the queue meanwhile), false to refuse it as today; throws the reason
   * when the model cannot load (its memory plan never fits), which the request gets.
   */
  onDemand?: (model: string) => boolean;
  /** A request of the model took a slot. */
  onLease?: (model: string) => void;
  /** A queued request was handed a slot before it freed (sent to llama-server early; design.md "Slot handoff"). */
  onHandoff?: (model: string) => void;
  /** The model has no lease and nothing queued any more (a release, a cancelled or failed waiter). */
  onIdle?: (model: string) => void;
  /** Whether a load of the model is being planned (nothing runs yet): its waiters wait for it, not a stop. */
  preparing?: (model: string) => boolean;
  /** Whether that planned load waits for another model to go idle: the queue timeout runs then, as for a slot. */
  waitingForRoom?: (model: string) => boolean;
}

interface QueuedRequest extends Waiter {
  ticket: Ticket;
  resolve: (lease: Lease) => void;
  reject: (err: Error) => void;
  onQueued?: (position: number, etaMs?: number) => void;
  lastPosition?: number;
  /** Position in service order when it entered the queue (X-Slotwise-Queue-Position). */
  admittedPosition: number;
  cleanup: () => void;
  /** It may be handed a slot before the slot frees (AcquireOptions.handoff). */
  canHandoff: boolean;
  /** Handed a slot near its end: forwarded, still queued until that slot's lease ends. */
  handoff?: PendingHandoff;
  /** Epoch ms it was handed that slot (kept after the handoff begins, for its lease record). */
  handedOffAt?: number;
}

/** A waiter handed a slot that is still leased: it begins when that lease ends, or is dropped. */
interface PendingHandoff {
  waiter: QueuedRequest;
  inst: LlamaInstance;
  slot: number;
  /** Called by the predecessor's release(): the successor's lease begins now. */
  begin(now: number): void;
  /** The successor left before its slot freed: clear the slot's successor, reject `handoff`. Idempotent. */
  drop(reason: Error): void;
}

interface ModelQueue {
  waiters: QueuedRequest[];
  rrCursor: number;
  /** Every request that named this model; each ends in exactly one of `outcomes`. */
  received: number;
  outcomes: Record<RequestOutcome, number>;
  promptTokens: { cached: number; processed: number; reported: number };
  /** A draft model's tokens over finished requests that reported them (speculative decoding). */
  draftTokens: { drafted: number; accepted: number };
  /** Of outcomes.cancelled, those superseded by a newer request of their session. */
  superseded: number;
  /** Of superseded, those that never took a slot (queued, or held in a typing burst): no slot time lost. */
  supersededUnstarted: number;
  /** The model was loading at the last pump with waiters: their queue timeout starts once the load ends. */
  wasLoading?: boolean;
  /** EWMA of lease durations (ms) of requests that ran to their end: the ETA's service time. */
  serviceMs?: number;
  /** EWMA of llama-server's prompt ms per computed token: what recomputing a cached prefix elsewhere would cost. */
  prefillMsPerToken?: number;
  /** Epoch ms the last interactive request for this model was accepted: background work is handed no slot near it. */
  lastInteractiveAt?: number;
}

/**
 * While interactive requests arrived this recently, no slot is handed off to background work: a
 * handoff commits the slot a few tokens before it frees, and an editor's request arriving in that
 * window would wait for the next slot instead (the priority bench showed it: 1.02× → 1.15×).
 */
export const HANDOFF_INTERACTIVE_QUIET_MS = 5000;

interface InstanceBook {
  /** Upstream exchanges not yet ended; in slot-aware mode, equal to the table's leases. */
  inFlight: number;
  table: SlotTable;
  /** What its llama-server probably holds in its host prompt cache (affinity routing). */
  host: HostCache;
  lastAssignedAt?: number;
  /** Leased slots whose request is within queue.handoffTokens of its end: tokens it may still generate. */
  ending: Map<number, number>;
  /** Each slot's handed-off successor (at most one). */
  next: Map<number, PendingHandoff>;
}

/** Prompt tokens computed below which a request's prompt_ms is not used for the prefill rate. */
const MIN_PREFILL_SAMPLE = 64;

/** One more skip for each waiter the cache-aware order passed over that did not start after all (cache-order.ts MAX_SKIPS). */
function countSkips(order: CacheOrder<QueuedRequest> | undefined, started: ReadonlySet<string>): void {
  for (const w of order?.passedOver ?? []) if (!started.has(w.id)) w.skips = (w.skips ?? 0) + 1;
}

const emptyOutcomes = (): Record<RequestOutcome, number> => ({ completed: 0, cancelled: 0, rejected: 0, failed: 0 });

export class Scheduler extends EventEmitter<{ change: []; lease: [LeaseRecord] }> {
  #supervisor: Supervisor;
  #queueConfig: Config['queue'];
  #routing: Config['routing'];
  #hooks: SchedulerHooks;
  #queues = new Map<string, ModelQueue>();
  #books = new Map<string, InstanceBook>();
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** Set by close(): new requests are refused with it. */
  #closedReason: string | undefined;
  #pumping = false;
  /** Recent dispatch times per model, for the Retry-After estimate. */
  #served = new Map<string, number[]>();
  /** Unfinished tickets by session key and model: newest wins. */
  #sessions = new Sessions<Ticket>();
  /** Each unfinished ticket's supersede switch (its `signal`). */
  #supersedeOf = new WeakMap<Ticket, AbortController>();
  /** The older tickets a ticket superseded: it starts only once none of them holds a slot. */
  #supersededBy = new WeakMap<Ticket, Ticket[]>();
  /** Tickets holding a lease now. */
  #leased = new WeakSet<Ticket>();
  /** Tickets that ever held a lease (a superseded one that never did cost no slot time). */
  #started = new WeakSet<Ticket>();
  /** Each session key's pace of requests: the typing-burst hold. */
  #pace = new SessionPace();

  constructor(opts: { supervisor: Supervisor; config: Config; hooks?: SchedulerHooks }) {
    super();
    this.#supervisor = opts.supervisor;
    this.#queueConfig = opts.config.queue;
    this.#routing = opts.config.routing;
    this.#hooks = opts.hooks ?? {};
    for (const name of this.#supervisor.modelNames()) {
      this.#queues.set(name, { waiters: [], rrCursor: 0, received: 0, outcomes: emptyOutcomes(), promptTokens: { cached: 0, processed: 0, reported: 0 }, draftTokens: { drafted: 0, accepted: 0 }, superseded: 0, supersededUnstarted: 0 });
    }
    opts.supervisor.on('scrape', (inst) => {
      const slots = this.#supervisor.scrape(inst)?.slots;
      if (slots) this.#book(inst).table.observe(slots, Date.now());
      this.#pump();
    });
    opts.supervisor.on('instanceState', (inst) => {
      if (!inst.routable) {
        // a new process starts with empty caches
        this.#book(inst).table.forget();
        this.#book(inst).host.clear();
      }
      this.#pump();
    });
  }

  /**
   * Accepts a request for a model or refuses it at once: unknown model (404), model down (503),
   * queue full (503 + Retry-After). An accepted ticket must be finished exactly once.
   */
  open(model: string, source: RequestSource, prompt?: string, opts: OpenOptions = {}): Ticket {
    const queue = this.#queue(model); // throws SW_ERR_MODEL_NOT_FOUND with the known names
    queue.received++;
    if (this.#closedReason !== undefined) {
      this.#count(model, queue, 'rejected');
      throw shuttingDown(this.#closedReason, `request for "${model}" was not accepted`);
    }
    const instances = this.#supervisor.instances(model);
    const wanted = this.#supervisor.wanted(model);
    if (wanted === 0 || instances.length === 0) {
      let loads: boolean;
      try {
        loads = this.#hooks.onDemand?.(model) ?? false;
      } catch (err) {
        this.#count(model, queue, 'rejected'); // the model cannot load (e.g. its memory plan does not fit): that error
        throw err;
      }
      if (!loads) {
        this.#count(model, queue, 'rejected');
        throw new SlotwiseError('SW_ERR_NO_INSTANCE', `model "${model}" is not running — start it with \`slotwise up ${model}\``);
      }
    }
    const failed = this.#supervisor.failedReplica(model);
    if (failed) {
      this.#count(model, queue, 'rejected');
      throw instanceFailed(model, failed);
    }
    const admission = admit(queue.waiters.length, this.#queueConfig.maxWaiting, this.#servedPerSecond(model));
    if (!admission.ok) {
      this.#count(model, queue, 'rejected');
      throw Object.assign(
        new SlotwiseError('SW_ERR_QUEUE_FULL', `queue for "${model}" is full (${this.#queueConfig.maxWaiting} waiting) — retry in ${admission.retryAfterS} s or add slots/replicas`),
        { retryAfterS: admission.retryAfterS },
      );
    }
    const affinity = this.#routing === 'slot-aware' && this.#supervisor.modelConfig(model).affinity;
    const supersede = new AbortController();
    const acceptedAt = Date.now();
    const holdMs = opts.session !== undefined ? this.#pace.arrive(sessionKey(model, opts.session), acceptedAt, this.#queueConfig.sessionHoldMs) : 0;
    const ticket = {
      id: randomUUID(),
      model,
      source,
      acceptedAt,
      priority: opts.priority ?? 'interactive',
      signal: supersede.signal,
      ...(affinity && prompt ? { prompt: promptKey(prompt) } : {}),
      ...(opts.session !== undefined ? { session: opts.session } : {}),
      ...(holdMs > 0 ? { holdUntil: acceptedAt + holdMs } : {}),
      ...(opts.maxTokens !== undefined ? { maxTokens: opts.maxTokens } : {}),
    } satisfies Ticket;
    if (ticket.priority === 'interactive') queue.lastInteractiveAt = acceptedAt;
    this.#supersedeOf.set(ticket, supersede);
    if (opts.session !== undefined) {
      const older = this.#sessions.replace(model, opts.session, ticket);
      this.#supersededBy.set(ticket, older);
      for (const t of older) this.#supersede(t, ticket);
    }
    return ticket;
  }

  /** Waits for a free slot (FIFO per model), honouring the queue deadline and the signal. */
  acquire(ticket: Ticket, opts: AcquireOptions = {}): Promise<Lease> {
    const queue = this.#queue(ticket.model);
    if (opts.signal?.aborted) return Promise.reject(cancelled(ticket));
    return new Promise<Lease>((resolve, reject) => {
      const now = Date.now();
      const onAbort = (): void => {
        // A queued request whose client left, or that a newer one superseded, is dropped before it starts.
        const i = queue.waiters.indexOf(entry);
        if (i >= 0) {
          queue.waiters.splice(i, 1);
          entry.cleanup();
          const reason = ticket.signal.aborted ? (ticket.signal.reason as Error) : cancelled(ticket);
          // Handed off: its upstream request is aborted by the same signal (llama-server drops the deferred task).
          if (entry.handoff) entry.handoff.drop(reason);
          else reject(reason);
          this.#pump();
          this.#checkIdle(ticket.model);
        }
      };
      const entry: QueuedRequest = {
        id: ticket.id,
        // A first try waits from its acceptance, so the queue wait a client is told (and the lease
        // records' acceptedAt) take in what ran between (the prompt key, a GC pause on a loaded host).
        enqueuedAt: opts.retry ? now : Math.min(now, ticket.acceptedAt),
        deadline: now + this.#queueConfig.timeoutMs,
        avoid: opts.avoid,
        // A retry was admitted long ago: it never waits for keystrokes again.
        holdUntil: opts.retry ? undefined : ticket.holdUntil,
        ticket,
        resolve,
        reject,
        priority: ticket.priority,
        onQueued: opts.onQueued,
        admittedPosition: 1,
        canHandoff: opts.handoff === true && this.#routing === 'slot-aware',
        cleanup: () => {
          opts.signal?.removeEventListener('abort', onAbort);
          ticket.signal.removeEventListener('abort', onAbort);
        },
      };
      if (ticket.signal.aborted) return reject(ticket.signal.reason as Error);
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      ticket.signal.addEventListener('abort', onAbort, { once: true });
      if (opts.retry) queue.waiters.unshift(entry);
      else queue.waiters.push(entry);
      // Alone in the queue (the usual case when a slot is free) it is first: no service order to compute.
      entry.admittedPosition = queue.waiters.length === 1 ? 1 : (positions(queue.waiters, now, this.#queueConfig.backgroundMaxWaitMs).get(entry.id) ?? queue.waiters.length);
      this.#pump();
    });
  }

  /** Records the ticket's one outcome; later calls are ignored (the first outcome is the truth). */
  finish(ticket: Ticket, outcome: RequestOutcome): void {
    if (ticket.outcome) return;
    // Whatever the way in made of the abort, a superseded request was cancelled, for one reason.
    const superseded = ticket.signal.aborted;
    ticket.outcome = superseded ? 'cancelled' : outcome;
    if (ticket.session !== undefined) this.#sessions.remove(ticket.model, ticket.session, ticket);
    const q = this.#queue(ticket.model);
    if (superseded) {
      q.superseded++;
      const started = this.#started.has(ticket);
      if (!started) q.supersededUnstarted++;
      this.#hooks.onSuperseded?.(ticket.model, started);
    }
    this.#count(ticket.model, q, ticket.outcome);
  }

  queueView(model: string):
    | {
        queue: QueueStatus;
        received: number;
        outcomes: Record<RequestOutcome, number>;
        superseded: number;
        supersededUnstarted: number;
        promptTokens?: { cached: number; processed: number };
        draftTokens?: { drafted: number; accepted: number };
        inFlight: (id: string) => number;
        slots: (id: string, polled: SlotStatus[]) => SlotStatus[];
      }
    | undefined {
    const q = this.#queues.get(model);
    if (!q) return undefined;
    const now = Date.now();
    const ordered = serviceOrder(q.waiters, now, this.#queueConfig.backgroundMaxWaitMs);
    return {
      queue: {
        waiting: q.waiters.length,
        oldestWaitMs: oldestWaitMs(q.waiters, now),
        entries: ordered.map((w, i) => ({ id: w.id, position: i + 1, waitMs: now - w.enqueuedAt, source: w.ticket.source, priority: w.ticket.priority })),
        byClass: countByClass(q.waiters),
      },
      received: q.received,
      outcomes: { ...q.outcomes },
      superseded: q.superseded,
      supersededUnstarted: q.supersededUnstarted,
      ...(q.promptTokens.reported > 0 ? { promptTokens: { cached: q.promptTokens.cached, processed: q.promptTokens.processed } } : {}),
      ...(q.draftTokens.drafted > 0 ? { draftTokens: { ...q.draftTokens } } : {}),
      inFlight: (id) => this.#books.get(id)?.inFlight ?? 0,
      // Round-robin leaves the slot to llama-server, so only its /slots can say which is busy.
      slots: (id, polled) => {
        const book = this.#books.get(id);
        return book && this.#routing === 'slot-aware' ? book.table.rows(polled) : polled;
      },
    };
  }

  /** Fails every request waiting for the model (its on-demand load cannot happen). */
  failWaiters(model: string, err: Error): void {
    const q = this.#queues.get(model);
    if (!q) return;
    this.#refuseWaiting(model, q, err);
    this.#pump();
  }

  /**
   * Why the model's waiting requests can no longer be served, if so: it was stopped (`slotwise down`,
   * models.stop) with no load being planned, or every replica failed. Checked at each pump, which every
   * instance state change runs; they would otherwise wait out the queue timeout, told to add slots.
   */
  #cannotServe(model: string): SlotwiseError | undefined {
    if (this.#supervisor.wanted(model) === 0) {
      if (this.#hooks.preparing?.(model)) return undefined;
      return new SlotwiseError('SW_ERR_NO_INSTANCE', `model "${model}" was stopped while the request waited — start it with \`slotwise up ${model}\`${this.#hooks.onDemand ? ' or send the request again' : ''}`);
    }
    const failed = this.#supervisor.failedReplica(model);
    return failed ? instanceFailed(model, failed) : undefined;
  }

  /**
   * Whether the model is loading: its load is planned (not waiting for another model to go idle), or a
   * wanted instance starts or loads and none takes requests yet.
   */
  #loading(model: string, instances: readonly LlamaInstance[]): boolean {
    if (this.#hooks.preparing?.(model)) return !this.#hooks.waitingForRoom?.(model);
    const wanted = instances.slice(0, this.#supervisor.wanted(model));
    return !wanted.some((i) => this.#supervisor.takesRequests(i)) && wanted.some((i) => i.state === 'starting' || i.state === 'loading');
  }

  /** Fails the waiting requests with `err` (a handed-off one was sent already and runs). */
  #refuseWaiting(model: string, q: ModelQueue, err: Error): void {
    for (const w of [...q.waiters]) {
      if (w.handoff) continue;
      this.#take(q, w.id);
      w.reject(err);
    }
    if (q.waiters.length === 0) queueMicrotask(() => this.#checkIdle(model));
  }

  /** Whether the model has a lease or a queued request. */
  busy(model: string): boolean {
    return this.waiting(model) > 0 || this.#supervisor.instances(model).some((i) => (this.#books.get(i.id)?.inFlight ?? 0) > 0);
  }

  /** Whether any request holds a lease or waits for one, for any model. */
  active(): boolean {
    for (const q of this.#queues.values()) if (q.waiters.length > 0) return true;
    for (const b of this.#books.values()) if (b.inFlight > 0) return true;
    return false;
  }

  waiting(model: string): number {
    return this.#queues.get(model)?.waiters.length ?? 0;
  }

  /** Daemon shutdown: fails every waiter and refuses new requests; leases already given keep running. */
  close(reason = 'stop requested'): void {
    this.#closedReason = reason;
    if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
    for (const [model, q] of this.#queues) {
      for (const w of q.waiters.splice(0)) {
        // A handed-off request was sent already: like a lease given, it runs (from its predecessor's release).
        if (w.handoff) continue;
        w.cleanup();
        w.reject(shuttingDown(reason, `request for "${model}" was not started`));
      }
    }
  }

  // ------------------------------------------------------------------------------------------

  #pump(): void {
    if (this.#pumping) return; // resolve() callbacks may re-enter via release(); the running pump sees their effects
    this.#pumping = true;
    try {
      const now = Date.now();
      for (const [model, q] of this.#queues) {
        if (q.waiters.length === 0) continue;
        const refusal = this.#cannotServe(model);
        if (refusal) {
          this.#refuseWaiting(model, q, refusal);
          continue;
        }
        const instances = this.#supervisor.instances(model);
        // The queue timeout is for a slot to free up, not for llama-server to load the model: a load
        // longer than it would never finish (each timeout stopped it). So the waiters' deadlines move on
        // while it loads, and once more at the pump that sees it end (a late timer must not expire them
        // then, with the slots free). A load that fails fails them (#cannotServe).
        const loading = this.#loading(model, instances);
        if (loading || q.wasLoading) for (const w of q.waiters) w.deadline = Math.max(w.deadline, now + this.#queueConfig.timeoutMs);
        q.wasLoading = loading;
        const loads = instances.map((inst) => this.#load(inst));
        for (const w of q.waiters) w.held = this.#heldNow(w);
        // The free slots, listed once for this plan (with 1,000 slots, listing them was most of a pump) and
        // kept current below as assignments take them.
        const free = this.#routing === 'slot-aware' ? this.#freeSlots(instances) : undefined;
        const order = this.#cacheAwareOrder(model, q, instances, now, [], free);
        for (const h of order?.holds ?? []) {
          h.waiter.cacheHoldUntil ??= h.until;
          h.waiter.held = true; // for this plan only: the next pump recomputes `held`
        }
        const p = plan(
          {
            mode: this.#routing,
            rrCursor: q.rrCursor,
            waiters: order?.order ?? q.waiters,
            instances: loads,
            backgroundMaxWaitMs: this.#queueConfig.backgroundMaxWaitMs,
            reservedSlots: this.#supervisor.modelConfig(model).reservedSlots,
          },
          now,
        );
        q.rrCursor = p.nextCursor;
        for (const id of p.expired) {
          // A handed-off request is not expired: it starts within queue.handoffTokens decode steps.
          if (q.waiters.find((x) => x.id === id)?.handoff) continue;
          const w = this.#take(q, id);
          if (q.waiters.length === 0) queueMicrotask(() => this.#checkIdle(model));
          w?.reject(new SlotwiseError('SW_ERR_QUEUE_TIMEOUT', `no slot of "${model}" became free within ${Math.round(this.#queueConfig.timeoutMs / 1000)} s — add slots/replicas or raise queue.timeoutMs`));
        }
        for (const a of p.assignments) {
          const w = this.#take(q, a.waiterId);
          if (!w) continue;
          const where = this.#chooseSlot(model, a.instanceId, w, free);
          const inst = instances.find((i) => i.id === where.instanceId);
          if (inst) w.resolve(this.#lease(model, inst, where.slot, w, now));
          if (free && where.slot !== undefined) takeFree(free, where.instanceId, where.slot);
        }
        countSkips(order, new Set(p.assignments.map((a) => a.waiterId)));
        this.#handOff(model, q, instances, now);
        this.#notifyPositions(q, loads, now);
        // Work still waits while slots read busy with no lease at the last poll (a client of llama-server's
        // own, or a read of one that has ended since): ask whether they are free now, not at the next poll.
        // (`loads` counted those slots at the top of this pump; assignments only take free ones.)
        if (q.waiters.some((w) => !w.handoff && !w.held)) {
          instances.forEach((inst, i) => {
            if (inst.routable && loads[i]!.busySeen > 0) this.#supervisor.recheckSlots(inst);
          });
        }
      }
    } finally {
      this.#pumping = false;
    }
    this.#armDeadline();
    this.emit('change');
  }

  /**
   * The slot for an assignment of plan(): in slot-aware mode a free slot of a ready instance (plan()
   * counted one free for each assignment), preferring the one that holds the prompt's prefix.
   */
  #chooseSlot(model: string, instanceId: string, w: QueuedRequest, free: FreeSlots | undefined): { instanceId: string; slot?: number } {
    if (!free) return { instanceId }; // round-robin: llama-server picks the slot
    const { candidates, open } = free;
    const affinity = this.#supervisor.modelConfig(model).affinity;
    const key = w.ticket.prompt;
    const hostShared = affinity && key ? this.#hostShared(open, key) : undefined;
    const pick = pickSlot({ candidates, instanceId, key, affinity, avoid: w.avoid, hostShared, busy: free.busy });
    return pick ?? { instanceId }; // unreachable while plan() and the tables agree; llama-server then picks
  }

  /** Free slots of the ready instances, and those instances; `ending`: slots counted free as well (a handoff's what-if). */
  #freeSlots(instances: LlamaInstance[], ending: readonly EndingSlot[] = []): FreeSlots {
    const candidates: SlotCandidate[] = [];
    const open: LlamaInstance[] = [];
    const busy = new Map<string, BusyRange>();
    for (const inst of instances) {
      if (!this.#supervisor.takesRequests(inst)) continue;
      const table = this.#book(inst).table;
      const before = candidates.length;
      table.free(inst.id, candidates);
      let inUse = table.inUse();
      for (const e of ending) {
        if (e.instanceId !== inst.id) continue;
        candidates.push({ ...table.slotInfo(e.slot), instanceId: inst.id });
        inUse = inUse.filter((slot) => slot !== e.slot);
      }
      busy.set(inst.id, busyRange(inUse));
      if (candidates.length > before) open.push(inst);
    }
    return { candidates, open, busy };
  }

  /** Not startable whatever is free: handed off already, or a newer request of a session whose older one still holds a slot. */
  #heldNow(w: QueuedRequest): boolean {
    return w.handoff !== undefined || (this.#supersededBy.get(w.ticket)?.some((t) => this.#leased.has(t)) ?? false);
  }

  /**
   * Slot handoff (design.md): each leased slot near its request's end, on an instance with no free
   * slot, goes to the waiter plan() would start there if it were free now (handoff.ts). That waiter's
   * request is forwarded now with the slot's id_slot (llama-server defers it until the slot frees);
   * it stays in the queue, counted as waiting, until the predecessor's lease ends.
   */
  #handOff(model: string, q: ModelQueue, instances: LlamaInstance[], now: number): void {
    if (this.#routing !== 'slot-aware' || this.#queueConfig.handoffTokens <= 0 || q.waiters.length === 0) return;
    const ending: EndingSlot[] = [];
    for (const inst of instances) {
      if (!this.#supervisor.takesRequests(inst)) continue;
      const book = this.#book(inst);
      for (const [slot, remaining] of book.ending) if (!book.next.has(slot)) ending.push({ instanceId: inst.id, slot, remaining });
    }
    if (ending.length === 0 || !q.waiters.some((w) => w.canHandoff && !w.handoff)) return;
    // Who would go next, decided as a real plan would with those slots free: holds and the cache-aware order included.
    for (const w of q.waiters) w.held = this.#heldNow(w);
    const order = this.#cacheAwareOrder(model, q, instances, now, ending);
    for (const h of order?.holds ?? []) h.waiter.held = true; // what-if only: no hold clock starts
    const interactiveNear = q.lastInteractiveAt !== undefined && now - q.lastInteractiveAt < HANDOFF_INTERACTIVE_QUIET_MS;
    const handoffs = chooseHandoffs({
      mode: this.#routing,
      waiters: order?.order ?? q.waiters,
      instances: instances.map((inst) => this.#load(inst)),
      ending,
      canHandoff: (w) => w.canHandoff && !(interactiveNear && w.priority === 'background'),
      backgroundMaxWaitMs: this.#queueConfig.backgroundMaxWaitMs,
      reservedSlots: this.#supervisor.modelConfig(model).reservedSlots,
      now,
    });
    for (const h of handoffs) {
      const inst = instances.find((i) => i.id === h.instanceId);
      if (inst) this.#handTo(model, q, inst, h.slot, h.waiter, now);
    }
    // A cache hit handed a slot ahead of a miss passed it over, as in a plan: count it, or the
    // MAX_SKIPS bound never holds once most slots change hands this way (a miss then starved).
    if (handoffs.length > 0) countSkips(order, new Set(handoffs.map((h) => h.waiter.id)));
  }

  /** Hands `slot` (still leased) to waiter `w`: resolves its acquire() now with a lease that begins at the slot's release. */
  #handTo(model: string, q: ModelQueue, inst: LlamaInstance, slot: number, w: QueuedRequest, now: number): void {
    const book = this.#book(inst);
    let inner: Lease | undefined;
    let done = false;
    let began!: () => void;
    let failed!: (err: Error) => void;
    const begun = new Promise<void>((resolve, reject) => {
      began = resolve;
      failed = reject;
    });
    begun.catch(() => {}); // nobody may be waiting on it when it is dropped
    const clear = (): void => {
      if (book.next.get(slot) !== pending) return;
      book.next.delete(slot);
      book.table.setNext(slot, undefined);
    };
    const pending: PendingHandoff = {
      waiter: w,
      inst,
      slot,
      begin: (releasedAt) => {
        if (done) return;
        done = true;
        clear();
        this.#take(q, w.id); // leaves the queue now (if close() has not emptied it)
        w.handoff = undefined;
        inner = this.#lease(model, inst, slot, w, releasedAt);
        began();
      },
      drop: (reason) => {
        if (done) return;
        done = true;
        clear();
        const i = q.waiters.indexOf(w);
        if (i >= 0) {
          q.waiters.splice(i, 1);
          w.cleanup();
        }
        failed(reason);
        queueMicrotask(() => {
          this.#pump(); // the slot may go to the next waiter
          this.#checkIdle(model);
        });
      },
    };
    w.handoff = pending;
    w.handedOffAt = now; // the pump's clock, as the other stamps of this decision
    this.#hooks.onHandoff?.(model);
    book.next.set(slot, pending);
    book.table.setNext(slot, w.ticket.id);
    w.resolve({
      instance: inst,
      requestId: w.ticket.id,
      slot,
      get waitedMs() {
        return inner?.waitedMs ?? Date.now() - w.enqueuedAt;
      },
      queuePosition: w.admittedPosition,
      handoff: begun,
      progress: (tokens) => inner?.progress(tokens),
      promptTokens: (cached, processed, promptMs, draft) => inner?.promptTokens(cached, processed, promptMs, draft),
      // Ended before its slot freed (its client left, llama-server refused it, the instance went away): nothing was leased.
      release: () => (inner ? inner.release() : pending.drop(cancelled(w.ticket))),
    });
  }

  #hostShared(instances: LlamaInstance[], key: PromptKey): Map<string, number> {
    return new Map(instances.map((inst) => [inst.id, this.#book(inst).host.shared(key)]));
  }

  /**
   * With affinity, when more wait than can start: the service order with cache hits pulled ahead of
   * misses, within the bounds of cache-order.ts. Undefined: plan with the queue as it is.
   */
  #cacheAwareOrder(model: string, q: ModelQueue, instances: LlamaInstance[], now: number, ending: readonly EndingSlot[] = [], free?: FreeSlots): CacheOrder<QueuedRequest> | undefined {
    if (this.#routing !== 'slot-aware' || !this.#supervisor.modelConfig(model).affinity) return undefined;
    const { candidates, open: openInstances } = free ?? this.#freeSlots(instances, ending);
    if (candidates.length === 0) return undefined;
    const full = instances.filter((i) => this.#supervisor.takesRequests(i) && !openInstances.includes(i));
    // Alone, with a free slot on every replica: nobody to reorder, and no full replica to hold it for
    // (a replica holding its prompt has a slot free). The usual case below saturation, kept cheap:
    // the reorder cost a third of such a pump (40 of 135 µs at c=1 on the 2-core VM).
    if (q.waiters.length === 1 && full.length === 0) return undefined;
    const freeByInstance = new Map<string, number>();
    for (const c of candidates) freeByInstance.set(c.instanceId, (freeByInstance.get(c.instanceId) ?? 0) + 1);
    // Where each waiter's prompt is best served: a hit on an instance with a free slot, when one holds
    // as much of it as any instance; else its home, a full instance holding more, worth a hold of `hold` ms.
    const where = new Map<QueuedRequest, { hit?: string; home?: string; hold: number }>();
    const locate = (w: QueuedRequest) => {
      let found = where.get(w);
      if (found) return found;
      found = { hold: 0 };
      const key = w.ticket.prompt;
      if (key && key.length > 0) {
        const open = cachedAt({ candidates, key, avoid: w.avoid, hostShared: this.#hostShared(openInstances, key) });
        let home: { instanceId: string; shared: number } | undefined;
        for (const inst of full) {
          if (inst.id === w.avoid) continue;
          const book = this.#book(inst);
          const shared = Math.max(book.host.shared(key), book.table.shared(key));
          if (shared > 0 && (!home || shared > home.shared)) home = { instanceId: inst.id, shared };
        }
        if (home && (!open || home.shared > open.shared)) found = { home: home.instanceId, hold: holdMs(home.shared - (open?.shared ?? 0), q.serviceMs, q.prefillMsPerToken) };
        // Its hit instance may have no slot left for it: elsewhere it would (at worst) compute all of it again.
        else if (open) found = { hit: open.instanceId, hold: holdMs(open.shared, q.serviceMs, q.prefillMsPerToken) };
      }
      where.set(w, found);
      return found;
    };
    return cacheAwareOrder({
      ordered: serviceOrder(q.waiters, now, this.#queueConfig.backgroundMaxWaitMs),
      freeByInstance,
      hitAt: (w) => locate(w).hit,
      homeAt: (w) => locate(w).home,
      holdMs: (w) => locate(w).hold,
      now,
      backgroundMaxWaitMs: this.#queueConfig.backgroundMaxWaitMs,
    });
  }

  #lease(model: string, inst: LlamaInstance, slot: number | undefined, w: QueuedRequest, now: number): Lease {
    const book = this.#book(inst);
    const waitedMs = now - w.enqueuedAt;
    const ticket = w.ticket;
    book.inFlight++;
    book.lastAssignedAt = now;
    this.#leased.add(ticket);
    this.#started.add(ticket);
    const slotLease = { requestId: ticket.id, source: ticket.source, since: now, tokens: undefined as number | undefined };
    if (slot !== undefined) {
      const before = book.table.take(slot, slotLease, ticket.prompt);
      // What llama-server does with its host cache as this prompt starts (host-cache.ts).
      if (ticket.prompt) book.host.restore(ticket.prompt, before);
      book.host.save(before);
    }
    const served = this.#served.get(model) ?? [];
    served.push(book.lastAssignedAt);
    if (served.length > 100) served.splice(0, served.length - 100);
    this.#served.set(model, served);
    this.#hooks.onQueueWait?.(model, waitedMs / 1000);
    this.#hooks.onLease?.(model);
    let released = false;
    let ending = false;
    const q = this.#queue(model);
    return {
      instance: inst,
      requestId: ticket.id,
      slot,
      waitedMs,
      queuePosition: w.admittedPosition,
      progress: (tokens) => {
        if (released) return;
        slotLease.tokens = tokens;
        if (!ending && slot !== undefined && nearEnd(ticket.maxTokens, tokens, this.#queueConfig.handoffTokens)) {
          ending = true;
          book.ending.set(slot, Math.max(0, (ticket.maxTokens ?? tokens) - tokens));
          if (q.waiters.length > 0) this.#pump(); // its slot may go to the next waiter now
        }
      },
      promptTokens: (cached, processed, promptMs, draft) => {
        // Few tokens say more about overhead than about the rate.
        if (promptMs !== undefined && processed >= MIN_PREFILL_SAMPLE) q.prefillMsPerToken = ewma(q.prefillMsPerToken, promptMs / processed);
        q.promptTokens.cached += cached;
        q.promptTokens.processed += processed;
        q.promptTokens.reported++;
        if (draft) {
          q.draftTokens.drafted += draft.drafted;
          q.draftTokens.accepted += draft.accepted;
        }
      },
      // The one place a lease ends, whatever ended the request (dispatch.ts calls it in `finally`).
      release: () => {
        if (released) return;
        released = true;
        book.inFlight--;
        this.#leased.delete(ticket);
        const end = Date.now();
        if (slot !== undefined) book.table.release(slot, end, ticket.outcome === 'completed');
        const next = slot !== undefined ? book.next.get(slot) : undefined;
        if (slot !== undefined) book.ending.delete(slot);
        // Only completed requests (dispatch finishes them before release) count: aborted ones say nothing about how long a request takes.
        if (ticket.outcome === 'completed') q.serviceMs = ewma(q.serviceMs, end - now);
        this.emit('lease', {
          requestId: ticket.id,
          model,
          instanceId: inst.id,
          ...(slot !== undefined ? { slot } : {}),
          priority: ticket.priority,
          ...(ticket.session !== undefined ? { session: ticket.session } : {}),
          acceptedAt: ticket.acceptedAt,
          leasedAt: now,
          releasedAt: end,
          ...(w.handedOffAt !== undefined ? { handedOffAt: w.handedOffAt } : {}),
          superseded: ticket.signal.aborted,
        });
        // Its handed-off successor (already in llama-server, deferred on this slot) starts now.
        next?.begin(end);
        queueMicrotask(() => {
          this.#pump();
          this.#checkIdle(model);
        });
      },
    };
  }

  #load(inst: LlamaInstance): InstanceLoad {
    const book = this.#book(inst);
    // The leases are exact, so every busy slot /slots shows beyond them is someone else's.
    return {
      id: inst.id,
      ready: this.#supervisor.takesRequests(inst),
      slots: book.table.size,
      inFlight: book.inFlight,
      busySeen: book.table.unavailable(),
      ownBusySeen: 0,
      lastAssignedAt: book.lastAssignedAt,
    };
  }

  #checkIdle(model: string): void {
    if (!this.busy(model)) this.#hooks.onIdle?.(model);
  }

  #take(q: ModelQueue, id: string): QueuedRequest | undefined {
    const i = q.waiters.findIndex((w) => w.id === id);
    if (i < 0) return undefined;
    const [w] = q.waiters.splice(i, 1);
    w!.cleanup();
    return w;
  }

  #notifyPositions(q: ModelQueue, loads: InstanceLoad[], now: number): void {
    const slots = loads.reduce((sum, l) => sum + (l.ready ? l.slots : 0), 0);
    serviceOrder(q.waiters, now, this.#queueConfig.backgroundMaxWaitMs).forEach((w, i) => {
      if (w.lastPosition !== i + 1) {
        w.lastPosition = i + 1;
        w.onQueued?.(i + 1, etaMs(i + 1, slots, q.serviceMs));
      }
    });
  }

  /** Newest wins: a queued older ticket leaves the queue at once, a running one has its upstream request aborted. */
  #supersede(older: Ticket, newer: Ticket): void {
    const err = new SlotwiseError(
      'SW_ERR_SUPERSEDED',
      `request ${older.id.slice(0, 8)} for "${older.model}" was superseded by a newer request of session "${newer.session}" (${newer.id.slice(0, 8)}) — expected while typing; send no session key to keep every request`,
    );
    this.#supersedeOf.get(older)?.abort(err);
  }

  #armDeadline(): void {
    if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    let next = Infinity;
    const now = Date.now();
    for (const q of this.#queues.values()) {
      for (const w of q.waiters) {
        if (w.handoff) continue; // sent already: no deadline, no hold (else a past deadline would re-arm at once)
        next = Math.min(next, w.deadline);
        // A hold ends (typing burst or cache home): plan again then.
        if (w.holdUntil !== undefined && w.holdUntil > now) next = Math.min(next, w.holdUntil);
        if (w.cacheHoldUntil !== undefined && w.cacheHoldUntil > now) next = Math.min(next, w.cacheHoldUntil);
      }
    }
    if (next === Infinity) return;
    this.#deadlineTimer = setTimeout(() => this.#pump(), Math.max(0, next - now) + 1);
    this.#deadlineTimer.unref();
  }

  #servedPerSecond(model: string): number {
    const served = this.#served.get(model) ?? [];
    const now = Date.now();
    // Counted, not filtered: this runs on every request's admission, and a copy of up to 100 times is garbage.
    let recent = 0;
    for (const t of served) if (now - t < 30_000) recent++;
    return recent / 30;
  }

  #count(model: string, q: ModelQueue, outcome: RequestOutcome): void {
    q.outcomes[outcome]++;
    this.#hooks.onOutcome?.(model, outcome);
    this.emit('change');
  }

  #queue(model: string): ModelQueue {
    this.#supervisor.modelConfig(model); // throws SW_ERR_MODEL_NOT_FOUND listing known models
    return this.#queues.get(model)!;
  }

  #book(inst: LlamaInstance): InstanceBook {
    let b = this.#books.get(inst.id);
    if (!b) this.#books.set(inst.id, (b = { inFlight: 0, table: new SlotTable(inst.model.slots), host: new HostCache(inst.promptCacheTokens ?? Number.POSITIVE_INFINITY), ending: new Map(), next: new Map() }));
    else b.host.capacityTokens = inst.promptCacheTokens ?? Number.POSITIVE_INFINITY; // known once the process launched
    return b;
  }
}

/** The free slots of a model's ready instances, and those instances (scheduler #freeSlots). */
interface FreeSlots {
  candidates: SlotCandidate[];
  open: LlamaInstance[];
  /** Per instance, the range of the slots in use (slot-pick.ts keeps a pick next to them). */
  busy: Map<string, BusyRange>;
}

/** Takes a slot just leased out of `free`, and its instance once it has none left. */
function takeFree(free: FreeSlots, instanceId: string, slot: number): void {
  const i = free.candidates.findIndex((c) => c.instanceId === instanceId && c.slot === slot);
  if (i < 0) return;
  free.candidates.splice(i, 1);
  const busy = free.busy.get(instanceId);
  if (busy) takeIn(busy, slot);
  if (!free.candidates.some((c) => c.instanceId === instanceId)) free.open = free.open.filter((inst) => inst.id !== instanceId);
}

/** A model whose every replica failed: what its requests get, new or waiting. */
function instanceFailed(model: string, failed: LlamaInstance): SlotwiseError {
  return new SlotwiseError('SW_ERR_INSTANCE_FAILED', `model "${model}" failed: ${failed.status().lastError ?? 'see `slotwise logs`'}`);
}

function shuttingDown(reason: string, what: string): SlotwiseError {
  return new SlotwiseError('SW_ERR_SHUTTING_DOWN', `daemon is shutting down (${reason}); ${what} — retry once a daemon runs again`);
}

function cancelled(ticket: Ticket): SlotwiseError {
  return new SlotwiseError('SW_ERR_CANCELLED', `request ${ticket.id.slice(0, 8)} for "${ticket.model}" was cancelled by its client before it started`);
}
