// The status snapshot (`Snapshot` in shared/protocol.ts; its path: docs/architecture.md#the-status-path)
// and the hub that pushes it to subscribers: at most every 250 ms (a model's load state change at once),
// and only when something other than the clock changed.
import { EventEmitter } from 'node:events';
import { modelSlots } from '../../shared/slots';
import { CapacityWindow } from './capacity';
import { freeFromStatus, markFitsNow, type PlanPreview } from '../memory/fit-now';
import type { Supervisor } from '../runtime/supervisor';
import type { GpuStatus, InstanceStatus, ModelStatus, ProcessUsage, Snapshot, Capacity, QueueStatus, RequestOutcome, SlotStatus } from '../../shared/protocol';

/** What the scheduler tells status about one model's queue. */
export interface QueueView extends QueueStatus {
  received: number;
  outcomes: Record<RequestOutcome, number>;
  /** Of outcomes.cancelled, those superseded by a newer request of their session. */
  superseded?: number;
  /** Of superseded, those that never took a slot. */
  supersededUnstarted?: number;
  /** Prompt tokens reused from the KV cache and computed, over finished requests that reported them. */
  promptTokens?: { cached: number; processed: number };
  /** A draft model's proposed and accepted tokens, over finished requests that reported them. */
  draftTokens?: { drafted: number; accepted: number };
  inFlight: (instanceId: string) => number;
  /** The slot rows from the leases, given llama-server's last /slots poll of that instance. */
  slots?: (instanceId: string, polled: SlotStatus[]) => SlotStatus[];
}

/** What the resource sampler tells status. */
export interface ResourceView {
  gpus: GpuStatus[];
  host?: Snapshot['host'];
  warnings: string[];
  usage: (pid: number) => ProcessUsage | undefined;
}

export interface StatusSources {
  version: string;
  startedAt: number;
  url: () => string;
  /** The config file read, or the default path where none was. */
  config?: { path: string; exists: boolean };
  supervisor: Supervisor;
  queue?: (model: string) => QueueView | undefined;
  resources?: () => ResourceView;
  /** The config's memoryBudgetMiB, for the fit of models that are down. */
  memoryBudgetMiB?: number;
  /** The plan of a down model the loader has not planned yet (on-demand `slots: "auto"` before its first load). */
  planPreview?: PlanPreview;
}

export function buildSnapshot(src: StatusSources, capacity: Capacity): Snapshot {
  const res = src.resources?.();
  const models = src.supervisor.models().map((m) => {
    const q = src.queue?.(m.name);
    if (q) {
      m.queue = { waiting: q.waiting, oldestWaitMs: q.oldestWaitMs, ...(q.entries?.length ? { entries: q.entries } : {}), ...(q.byClass ? { byClass: { ...q.byClass } } : {}) };
      m.outcomes = { ...q.outcomes };
      if (q.superseded !== undefined) m.superseded = q.superseded;
      if (q.supersededUnstarted !== undefined) m.supersededUnstarted = q.supersededUnstarted;
      m.requests = q.received;
      if (q.promptTokens) {
        const { cached, processed } = q.promptTokens;
        m.promptTokens = { cached, processed };
        if (cached + processed > 0) m.promptCacheHitRatio = cached / (cached + processed);
      }
      if (q.draftTokens && q.draftTokens.drafted > 0) {
        m.draftTokens = { ...q.draftTokens };
        m.draftAcceptance = q.draftTokens.accepted / q.draftTokens.drafted;
      }
    }
    for (const inst of m.instances) {
      if (inst.state === 'ready' && inst.slots.length > 0) inst.kvCache = kvCacheOf(inst.slots);
      if (q) inst.inFlight = q.inFlight(inst.id);
      if (q?.slots && inst.state === 'ready') inst.slots = q.slots(inst.id, inst.slots);
      const usage = inst.pid !== undefined ? res?.usage(inst.pid) : undefined;
      if (usage) inst.usage = usage;
    }
    return m;
  });
  // Only with a host reading: before the sampler's first one, every plan would read as not fitting.
  if (res?.host) markFitsNow(models, freeFromStatus(res.host, res.gpus), src.memoryBudgetMiB, src.planPreview);
  return {
    protocol: 1,
    version: src.version,
    daemon: { pid: process.pid, uptimeMs: Date.now() - src.startedAt, url: src.url(), ...(src.config ? { config: src.config } : {}) },
    models,
    gpus: res?.gpus ?? [],
    ...(res?.host ? { host: res.host } : {}),
    ...(src.memoryBudgetMiB !== undefined ? { memoryBudgetMiB: src.memoryBudgetMiB } : {}),
    capacity,
    warnings: [...(res?.warnings ?? []), ...models.flatMap((m) => m.instances.flatMap((i) => (i.warnings ?? []).map((w) => `${i.id}: ${w}`)))],
  };
}

/**
 * KV cache in use from llama-server's own /slots poll (this llama-server build has no
 * `kv_cache_usage_ratio` metric): a processing slot holds `n_prompt_tokens` cells (prompt and the
 * tokens generated so far); an idle slot's cache is reusable, not in use.
 */
export function kvCacheOf(polled: readonly SlotStatus[]): NonNullable<InstanceStatus['kvCache']> {
  let usedTokens = 0;
  let totalTokens = 0;
  for (const s of polled) {
    totalTokens += s.nCtx ?? 0;
    if (s.busy) usedTokens += Math.min(s.nPromptTokens ?? 0, s.nCtx ?? Infinity);
  }
  return { usedTokens, totalTokens };
}

/** Totals across models for one capacity sample. */
export function capacityInputs(models: ModelStatus[], gpus: GpuStatus[]) {
  let busySlots = 0;
  let totalSlots = 0;
  let queued = 0;
  let oldestWaitMs = 0;
  let readyInstances = 0;
  let wantedInstances = 0;
  for (const m of models) {
    queued += m.queue.waiting;
    oldestWaitMs = Math.max(oldestWaitMs, m.queue.oldestWaitMs);
    wantedInstances += m.replicas;
    readyInstances += m.instances.filter((i) => i.state === 'ready').length;
    const slots = modelSlots(m);
    totalSlots += slots.total;
    busySlots += slots.busy;
  }
  const gpuUtilPct = gpus.length ? Math.max(...gpus.map((g) => g.utilizationPct)) : undefined;
  const gpuMemFreeMiB = gpus.length ? gpus.reduce((a, g) => a + (g.memoryTotalMiB - g.memoryUsedMiB), 0) : undefined;
  return { busySlots, totalSlots, queued, oldestWaitMs, readyInstances, wantedInstances, gpuUtilPct, gpuMemFreeMiB };
}

/**
 * Builds snapshots on demand and pushes them to listeners when they change.
 * Pushes are coalesced: a burst of changes within 250 ms yields one push with the latest state.
 */
export class StatusHub extends EventEmitter<{ snapshot: [Snapshot] }> {
  #src: StatusSources;
  #capacity: CapacityWindow;
  #minIntervalMs: number;
  #lastKey = '';
  #lastPushAt = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The pending push is an immediate one (changed({now: true})). */
  #urgent = false;
  #tick: NodeJS.Timeout;

  constructor(src: StatusSources, opts: { minIntervalMs?: number; windowMs?: number } = {}) {
    super();
    this.#src = src;
    this.#minIntervalMs = opts.minIntervalMs ?? 250;
    this.#capacity = new CapacityWindow(opts.windowMs ?? 60_000);
    // Queue waits and the capacity window change with time alone: re-check every second.
    this.#tick = setInterval(() => this.changed(), 1000);
    this.#tick.unref();
  }

  snapshot(): Snapshot {
    const now = Date.now();
    const base = buildSnapshot(this.#src, { busySlots: 0, totalSlots: 0, queued: 0, headroomSlots: 0, verdict: 'idle', reason: '' });
    this.#capacity.add({ at: now, ...capacityInputs(base.models, base.gpus) });
    base.capacity = this.#capacity.verdict(now);
    return base;
  }

  /**
   * Something changed: push soon (coalesced), if the snapshot differs from the last one pushed.
   * `now`: a change subscribers must see at once (a model's load state: unloaded, loading, ready):
   * pushed on the next turn of the event loop, not after the 250 ms spacing. These are rare (a few per
   * load), so the spacing still bounds the pushes that slot and progress churn cause.
   */
  changed(opts: { now?: boolean } = {}): void {
    if (this.listenerCount('snapshot') === 0) return;
    if (opts.now && this.#timer && !this.#urgent) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#timer) return;
    this.#urgent = opts.now === true;
    const wait = opts.now ? 0 : Math.max(0, this.#lastPushAt + this.#minIntervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#urgent = false;
      this.#timer = undefined;
      const snap = this.snapshot();
      const key = changeKey(snap);
      if (key === this.#lastKey) return;
      this.#lastKey = key;
      this.#lastPushAt = Date.now();
      this.emit('snapshot', snap);
    }, wait);
  }

  close(): void {
    clearInterval(this.#tick);
    if (this.#timer) clearTimeout(this.#timer);
  }
}

/** The snapshot minus what changes with the clock alone. */
function changeKey(s: Snapshot): string {
  return JSON.stringify({ ...s, daemon: { ...s.daemon, uptimeMs: 0 } });
}
