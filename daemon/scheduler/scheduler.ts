// The scheduler's effects around the pure policy (policy.ts): per-model FIFO queues, slot leases,
// deadlines, cancellation and outcome accounting. Every event ends in #pump(), which asks plan()
// what to do and does it. Invariants: ./design.md.
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config';
import { SlotwiseError } from '../../shared/errors';
import type { LlamaInstance } from '../runtime/instance';
import type { QueueStatus, RequestOutcome, RequestSource } from '../../shared/protocol';
import type { Supervisor } from '../runtime/supervisor';
import { admit, oldestWaitMs, plan, positions, type InstanceLoad, type Waiter } from './policy';

/** One accepted request: it ends with exactly one outcome, recorded by finish(). */
export interface Ticket {
  readonly id: string;
  readonly model: string;
  readonly source: RequestSource;
  readonly acceptedAt: number;
  outcome?: RequestOutcome;
}

/** A slot held on one instance until release(). */
export interface Lease {
  readonly instance: LlamaInstance;
  /** Time spent in the queue, ms. */
  readonly waitedMs: number;
  release(): void;
}

export interface AcquireOptions {
  signal?: AbortSignal;
  /** Called with the 1-based queue position whenever it changes while waiting. */
  onQueued?: (position: number) => void;
  /** An instance that just failed this request before its first byte: use another if one is free. */
  avoid?: string;
  /** A retry: it goes back in at the head of the queue (it was admitted before everyone waiting). */
  retry?: boolean;
}

export interface SchedulerHooks {
  onQueueWait?: (model: string, seconds: number) => void;
  onOutcome?: (model: string, outcome: RequestOutcome) => void;
}

interface QueuedRequest extends Waiter {
  ticket: Ticket;
  resolve: (lease: Lease) => void;
  reject: (err: Error) => void;
  onQueued?: (position: number) => void;
  lastPosition?: number;
  cleanup: () => void;
}

interface ModelQueue {
  waiters: QueuedRequest[];
  rrCursor: number;
  /** Every request that named this model; each ends in exactly one of `outcomes`. */
  received: number;
  outcomes: Record<RequestOutcome, number>;
}

interface InstanceBook {
  inFlight: number;
  /** When the daemon's recent requests here ended: /slots may still show their slots busy. */
  releasedAt: number[];
  ownBusySeen?: number;
  lastAssignedAt?: number;
}

/**
 * How long after the daemon's request ended a busy slot in /slots may still be that request's.
 * Without it, a poll that lands just after a request ended counts its slot as foreign (held by a
 * client outside the daemon) and the next request waits a whole poll (250 ms) for a free slot:
 * measured as a 109 ms p95 queue wait at 8 clients on 8 slots.
 */
const RELEASE_LAG_MS = 250;

const emptyOutcomes = (): Record<RequestOutcome, number> => ({ completed: 0, cancelled: 0, rejected: 0, failed: 0 });

export class Scheduler extends EventEmitter<{ change: [] }> {
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

  constructor(opts: { supervisor: Supervisor; config: Config; hooks?: SchedulerHooks }) {
    super();
    this.#supervisor = opts.supervisor;
    this.#queueConfig = opts.config.queue;
    this.#routing = opts.config.routing;
    this.#hooks = opts.hooks ?? {};
    for (const name of this.#supervisor.modelNames()) this.#queues.set(name, { waiters: [], rrCursor: 0, received: 0, outcomes: emptyOutcomes() });
    opts.supervisor.on('scrape', (inst) => {
      const book = this.#book(inst.id);
      const busy = this.#supervisor.scrape(inst)?.slots.filter((s) => s.busy).length ?? 0;
      // Frozen until the next poll; see policy.freeSlots. A request that ended just before this poll
      // may still read busy (llama-server frees the slot after the last byte): that slot is ours too.
      const since = Date.now() - RELEASE_LAG_MS;
      book.releasedAt = book.releasedAt.filter((t) => t >= since);
      book.ownBusySeen = Math.min(busy, book.inFlight + book.releasedAt.length);
      this.#pump();
    });
    opts.supervisor.on('instanceState', () => this.#pump());
  }

  /**
   * Accepts a request for a model or refuses it at once: unknown model (404), model down (503),
   * queue full (503 + Retry-After). An accepted ticket must be finished exactly once.
   */
  open(model: string, source: RequestSource): Ticket {
    const queue = this.#queue(model); // throws SW_ERR_MODEL_NOT_FOUND with the known names
    queue.received++;
    if (this.#closedReason !== undefined) {
      this.#count(model, queue, 'rejected');
      throw shuttingDown(this.#closedReason, `request for "${model}" was not accepted`);
    }
    const instances = this.#supervisor.instances(model);
    const wanted = this.#supervisor.modelStatus(model).replicas;
    if (wanted === 0 || instances.length === 0) {
      this.#count(model, queue, 'rejected');
      throw new SlotwiseError('SW_ERR_NO_INSTANCE', `model "${model}" is not running — start it with \`slotwise up ${model}\``);
    }
    if (instances.every((i) => i.state === 'failed')) {
      this.#count(model, queue, 'rejected');
      const reason = instances[0]!.status().lastError ?? 'see `slotwise logs`';
      throw new SlotwiseError('SW_ERR_INSTANCE_FAILED', `model "${model}" failed: ${reason}`);
    }
    const admission = admit(queue.waiters.length, this.#queueConfig.maxWaiting, this.#servedPerSecond(model));
    if (!admission.ok) {
      this.#count(model, queue, 'rejected');
      throw Object.assign(
        new SlotwiseError('SW_ERR_QUEUE_FULL', `queue for "${model}" is full (${this.#queueConfig.maxWaiting} waiting) — retry in ${admission.retryAfterS} s or add slots/replicas`),
        { retryAfterS: admission.retryAfterS },
      );
    }
    return { id: randomUUID(), model, source, acceptedAt: Date.now() };
  }

  /** Waits for a free slot (FIFO per model), honouring the queue deadline and the signal. */
  acquire(ticket: Ticket, opts: AcquireOptions = {}): Promise<Lease> {
    const queue = this.#queue(ticket.model);
    if (opts.signal?.aborted) return Promise.reject(cancelled(ticket));
    return new Promise<Lease>((resolve, reject) => {
      const now = Date.now();
      const onAbort = (): void => {
        // A queued request whose client left is dropped before it starts.
        const i = queue.waiters.indexOf(entry);
        if (i >= 0) {
          queue.waiters.splice(i, 1);
          entry.cleanup();
          reject(cancelled(ticket));
          this.#pump();
        }
      };
      const entry: QueuedRequest = {
        id: ticket.id,
        enqueuedAt: now,
        deadline: now + this.#queueConfig.timeoutMs,
        avoid: opts.avoid,
        ticket,
        resolve,
        reject,
        onQueued: opts.onQueued,
        cleanup: () => opts.signal?.removeEventListener('abort', onAbort),
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.retry) queue.waiters.unshift(entry);
      else queue.waiters.push(entry);
      this.#pump();
    });
  }

  /** Records the ticket's one outcome; later calls are ignored (the first outcome is the truth). */
  finish(ticket: Ticket, outcome: RequestOutcome): void {
    if (ticket.outcome) return;
    ticket.outcome = outcome;
    this.#count(ticket.model, this.#queue(ticket.model), outcome);
  }

  queueView(model: string): { queue: QueueStatus; received: number; outcomes: Record<RequestOutcome, number>; inFlight: (id: string) => number } | undefined {
    const q = this.#queues.get(model);
    if (!q) return undefined;
    const now = Date.now();
    const pos = positions(q.waiters);
    return {
      queue: {
        waiting: q.waiters.length,
        oldestWaitMs: oldestWaitMs(q.waiters, now),
        entries: q.waiters.map((w) => ({ id: w.id, position: pos.get(w.id)!, waitMs: now - w.enqueuedAt, source: w.ticket.source })),
      },
      received: q.received,
      outcomes: { ...q.outcomes },
      inFlight: (id) => this.#books.get(id)?.inFlight ?? 0,
    };
  }

  /** Daemon shutdown: fails every waiter and refuses new requests; leases already given keep running. */
  close(reason = 'stop requested'): void {
    this.#closedReason = reason;
    if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
    for (const [model, q] of this.#queues) {
      for (const w of q.waiters.splice(0)) {
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
        const instances = this.#supervisor.instances(model);
        const loads = instances.map((inst) => this.#load(inst));
        const p = plan({ mode: this.#routing, rrCursor: q.rrCursor, waiters: q.waiters, instances: loads }, now);
        q.rrCursor = p.nextCursor;
        for (const id of p.expired) {
          const w = this.#take(q, id);
          w?.reject(new SlotwiseError('SW_ERR_QUEUE_TIMEOUT', `no slot of "${model}" became free within ${Math.round(this.#queueConfig.timeoutMs / 1000)} s — add slots/replicas or raise queue.timeoutMs`));
        }
        for (const a of p.assignments) {
          const w = this.#take(q, a.waiterId);
          const inst = instances.find((i) => i.id === a.instanceId);
          if (w && inst) w.resolve(this.#lease(model, inst, now - w.enqueuedAt));
        }
        this.#notifyPositions(q);
      }
    } finally {
      this.#pumping = false;
    }
    this.#armDeadline();
    this.emit('change');
  }

  #lease(model: string, inst: LlamaInstance, waitedMs: number): Lease {
    const book = this.#book(inst.id);
    book.inFlight++;
    book.lastAssignedAt = Date.now();
    const served = this.#served.get(model) ?? [];
    served.push(book.lastAssignedAt);
    if (served.length > 100) served.splice(0, served.length - 100);
    this.#served.set(model, served);
    this.#hooks.onQueueWait?.(model, waitedMs / 1000);
    let released = false;
    return {
      instance: inst,
      waitedMs,
      release: () => {
        if (released) return;
        released = true;
        book.inFlight--;
        book.releasedAt.push(Date.now());
        this.#supervisor.poke(inst); // see the freed slot in /slots promptly
        queueMicrotask(() => this.#pump());
      },
    };
  }

  #load(inst: LlamaInstance): InstanceLoad {
    const book = this.#book(inst.id);
    const scrape = this.#supervisor.scrape(inst);
    return {
      id: inst.id,
      ready: inst.routable && !this.#supervisor.isDraining(inst),
      slots: scrape?.slots.length || inst.model.slots,
      inFlight: book.inFlight,
      busySeen: scrape?.slots.filter((s) => s.busy).length ?? 0,
      ownBusySeen: book.ownBusySeen,
      lastAssignedAt: book.lastAssignedAt,
    };
  }

  #take(q: ModelQueue, id: string): QueuedRequest | undefined {
    const i = q.waiters.findIndex((w) => w.id === id);
    if (i < 0) return undefined;
    const [w] = q.waiters.splice(i, 1);
    w!.cleanup();
    return w;
  }

  #notifyPositions(q: ModelQueue): void {
    q.waiters.forEach((w, i) => {
      if (w.lastPosition !== i + 1) {
        w.lastPosition = i + 1;
        w.onQueued?.(i + 1);
      }
    });
  }

  #armDeadline(): void {
    if (this.#deadlineTimer) clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    let next = Infinity;
    for (const q of this.#queues.values()) for (const w of q.waiters) next = Math.min(next, w.deadline);
    if (next === Infinity) return;
    this.#deadlineTimer = setTimeout(() => this.#pump(), Math.max(0, next - Date.now()) + 1);
    this.#deadlineTimer.unref();
  }

  #servedPerSecond(model: string): number {
    const served = this.#served.get(model) ?? [];
    const now = Date.now();
    const recent = served.filter((t) => now - t < 30_000);
    return recent.length / 30;
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

  #book(id: string): InstanceBook {
    let b = this.#books.get(id);
    if (!b) this.#books.set(id, (b = { inFlight: 0, releasedAt: [] }));
    return b;
  }
}

function shuttingDown(reason: string, what: string): SlotwiseError {
  return new SlotwiseError('SW_ERR_SHUTTING_DOWN', `daemon is shutting down (${reason}); ${what} — retry once a daemon runs again`);
}

function cancelled(ticket: Ticket): SlotwiseError {
  return new SlotwiseError('SW_ERR_CANCELLED', `request ${ticket.id.slice(0, 8)} for "${ticket.model}" was cancelled by its client before it started`);
}
