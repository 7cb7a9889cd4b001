// Prometheus exposition for GET /metrics, on a private prom-client Registry (no global state, one per daemon).
// Gauges mirror the snapshot taken at scrape time; counters and the queue-wait histogram are fed by events.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RequestOutcome, Snapshot } from '../../shared/protocol';
import { busySlotsOf, modelSlots, totalSlotsOf } from '../../shared/slots';

/** Content type of the text exposition format (version 0.0.4). */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Queue-wait histogram buckets in seconds: from an instantly free slot to the default 120 s queue timeout. */
export const QUEUE_WAIT_BUCKETS = [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Event-loop delay buckets in seconds: fine around the 20 ms goal of the bench (bench/targets.ts). */
export const LOOP_LAG_BUCKETS = [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5];

type Labels<T extends string> = Record<T, string>;

export class MetricsRegistry {
  readonly registry = new Registry();
  #slotsTotal: Gauge<'model' | 'instance'>;
  #slotsBusy: Gauge<'model' | 'instance'>;
  #queueWaiting: Gauge<'model'>;
  #instanceUp: Gauge<'model' | 'instance'>;
  #restarts: Counter<'model' | 'instance'>;
  #gpuUtil: Gauge<'gpu'>;
  #gpuMemUsed: Gauge<'gpu'>;
  #gpuMemTotal: Gauge<'gpu'>;
  #gpuTemp: Gauge<'gpu'>;
  #gpuPower: Gauge<'gpu'>;
  #processMemory: Gauge<'instance' | 'kind'>;
  #headroom: Gauge;
  #queueWait: Histogram<'model'>;
  #requests: Counter<'model' | 'outcome'>;
  #tokens: Counter<'model'>;
  #superseded: Counter<'model'>;
  #supersededUnstarted: Counter<'model'>;
  #handoffs: Counter<'model'>;
  #running: Gauge<'model'>;
  #waiting: Gauge<'model'>;
  #kvCache: Gauge<'model'>;
  #promptTokens: Counter<'model' | 'kind'>;
  #draftTokens: Counter<'model' | 'kind'>;
  #cacheHit: Gauge<'model'>;
  #loads: Counter<'model'>;
  #unloads: Counter<'model' | 'reason'>;
  #loadSeconds: Histogram<'model'>;
  #modelMemory: Gauge<'model' | 'kind'>;
  #loopLag: Histogram;
  #loopLagMax: Gauge;
  /** Largest delay since the previous render. */
  #loopLagMaxSince = 0;

  constructor() {
    const registers = [this.registry];
    const gauge = <T extends string>(name: string, help: string, labelNames: readonly T[]): Gauge<T> =>
      new Gauge<T>({ name, help, labelNames, registers });
    this.#slotsTotal = gauge('slotwise_slots_total', 'Slots of each ready llama-server instance (0 while not ready).', ['model', 'instance']);
    this.#slotsBusy = gauge('slotwise_slots_busy', 'Slots processing a request.', ['model', 'instance']);
    this.#queueWaiting = gauge('slotwise_queue_waiting', "Requests waiting in the daemon's queue for a slot.", ['model']);
    this.#instanceUp = gauge('slotwise_instance_up', '1 when the instance is ready to serve, else 0.', ['model', 'instance']);
    // The supervisor keeps the absolute restart count; the counter is set from it at scrape time.
    this.#restarts = new Counter({ name: 'slotwise_instance_restarts_total', help: 'Restarts of the instance after a crash.', labelNames: ['model', 'instance'], registers });
    this.#gpuUtil = gauge('slotwise_gpu_utilization_ratio', 'GPU utilization over the last sample period, 0..1.', ['gpu']);
    this.#gpuMemUsed = gauge('slotwise_gpu_memory_used_bytes', 'GPU memory in use.', ['gpu']);
    this.#gpuMemTotal = gauge('slotwise_gpu_memory_total_bytes', 'GPU memory in total.', ['gpu']);
    this.#gpuTemp = gauge('slotwise_gpu_temperature_celsius', 'GPU temperature, where reported.', ['gpu']);
    this.#gpuPower = gauge('slotwise_gpu_power_watts', 'GPU power draw, where reported.', ['gpu']);
    this.#processMemory = gauge('slotwise_process_memory_bytes', 'Memory of each llama-server process: kind="rss" (host) or "vram" (GPU).', ['instance', 'kind']);
    this.#headroom = new Gauge({ name: 'slotwise_capacity_headroom_slots', help: 'Free slots the capacity verdict counts on.', registers });
    this.#queueWait = new Histogram({
      name: 'slotwise_queue_wait_seconds',
      help: 'Time requests spent in the queue before a slot took them.',
      labelNames: ['model'],
      buckets: QUEUE_WAIT_BUCKETS,
      registers,
    });
    this.#requests = new Counter({ name: 'slotwise_requests_total', help: 'Finished requests by outcome.', labelNames: ['model', 'outcome'], registers });
    this.#superseded = new Counter({ name: 'slotwise_requests_superseded_total', help: 'Of slotwise_requests_total{outcome="cancelled"}: requests a newer one of the same session key superseded (SW_ERR_SUPERSEDED).', labelNames: ['model'], registers });
    this.#supersededUnstarted = new Counter({
      name: 'slotwise_requests_superseded_unstarted_total',
      help: 'Of slotwise_requests_superseded_total: those that never took a slot (still queued, or held in a typing burst: queue.sessionHoldMs), so they cost no slot time.',
      labelNames: ['model'],
      registers,
    });
    this.#handoffs = new Counter({
      name: 'slotwise_slot_handoffs_total',
      help: 'Queued streams handed a slot shortly before it freed (queue.handoffTokens): sent to llama-server early, which started them the moment the slot was released.',
      labelNames: ['model'],
      registers,
    });
    this.#tokens = new Counter({ name: 'slotwise_tokens_generated_total', help: 'Tokens generated.', labelNames: ['model'], registers });
    // The model server protocol of the Kubernetes Gateway API Inference Extension
    // (docs/proposals/003-model-server-protocol): TotalRunningRequests, TotalQueuedRequests and
    // KVCacheUtilization, all gauges, named as vLLM names them. A gateway scheduling across Slotwise
    // daemons reads the model as one model server.
    this.#running = gauge('slotwise_num_requests_running', 'TotalRunningRequests: requests being served now, i.e. busy slots (leased by the daemon, or foreign) over ready instances.', ['model']);
    this.#waiting = gauge('slotwise_num_requests_waiting', "TotalQueuedRequests: requests waiting in the daemon's queue for a slot.", ['model']);
    this.#kvCache = gauge('slotwise_kv_cache_usage_perc', 'KVCacheUtilization, 0..1: context cells held by processing slots over all context cells of ready instances (from llama-server /slots: n_prompt_tokens over n_ctx).', ['model']);
    // The totals live in the scheduler; the counter is set from them at scrape time (as restarts).
    this.#promptTokens = new Counter({ name: 'slotwise_prompt_tokens_total', help: 'Prompt tokens of finished requests: kind="cached" reused from the KV cache, kind="processed" computed (llama-server timings cache_n, prompt_n).', labelNames: ['model', 'kind'], registers });
    this.#draftTokens = new Counter({ name: 'slotwise_draft_tokens_total', help: 'Speculative decoding with a draft model: kind="drafted" tokens it proposed, kind="accepted" those the model kept (llama-server timings draft_n, draft_n_accepted).', labelNames: ['model', 'kind'], registers });
    this.#loads = new Counter({ name: 'slotwise_model_loads_total', help: 'Times the model became ready from not ready: a start, an on-demand load, or a restart after a crash.', labelNames: ['model'], registers });
    this.#unloads = new Counter({ name: 'slotwise_model_unloads_total', help: 'Times the model was unloaded: reason="idle" (idleUnloadMs), "evicted" (to make room), "stopped" (slotwise down).', labelNames: ['model', 'reason'], registers });
    this.#loadSeconds = new Histogram({
      name: 'slotwise_model_load_seconds',
      help: 'From the request (or start) that loaded the model to its first ready replica.',
      labelNames: ['model'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.#modelMemory = gauge('slotwise_model_memory_bytes', 'Memory of one replica: kind="plan" (the memory plan of its load-time buffers), "actual" (llama-server\'s buffers) or "prompt_cache" (its host prompt cache at its limit, not in the other two).', ['model', 'kind']);
    this.#loopLag = new Histogram({
      name: 'slotwise_event_loop_lag_seconds',
      help: "How late the daemon's 10 ms event-loop timer fired: time the daemon's thread was busy with other work. Sampled while a request runs or waits and for 5 s after; an idle daemon records none.",
      buckets: LOOP_LAG_BUCKETS,
      registers,
    });
    this.#loopLagMax = new Gauge({ name: 'slotwise_event_loop_lag_max_seconds', help: 'The largest event-loop lag since the previous scrape of /metrics (with several scrapers, each sees a share).', registers });
    this.#cacheHit = gauge('slotwise_prompt_cache_hit_ratio', 'Prompt-cache hit ratio: cached / (cached + processed) prompt tokens.', ['model']);
  }

  /** The scheduler calls this when a request leaves the queue for a slot. */
  observeQueueWait(model: string, seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.#queueWait.observe({ model }, seconds);
  }

  observeLoad(model: string, seconds: number): void {
    this.#loads.inc({ model });
    if (Number.isFinite(seconds) && seconds >= 0) this.#loadSeconds.observe({ model }, seconds);
  }

  countUnload(model: string, reason: string): void {
    this.#unloads.inc({ model, reason });
  }

  countRequest(model: string, outcome: RequestOutcome): void {
    this.#requests.inc({ model, outcome });
  }

  /** A cancelled request's reason was `superseded` (counted in countRequest as cancelled too); `started`: it had taken a slot. */
  countSuperseded(model: string, started = true): void {
    this.#superseded.inc({ model });
    if (!started) this.#supersededUnstarted.inc({ model });
  }

  /** A queued request was handed a slot before it freed (scheduler "Slot handoff"). */
  countHandoff(model: string): void {
    this.#handoffs.inc({ model });
  }

  /** Adds generated tokens; ignores non-positive or non-finite n (prom-client throws on a decrease). */
  addTokens(model: string, n: number): void {
    if (Number.isFinite(n) && n > 0) this.#tokens.inc({ model }, n);
  }

  /** One tick of the event-loop timer (status/loop-lag.ts): how late it fired, seconds. */
  observeLoopLag(seconds: number): void {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    this.#loopLag.observe(seconds);
    if (seconds > this.#loopLagMaxSince) this.#loopLagMaxSince = seconds;
  }

  /** Sets every gauge from the snapshot and renders the text exposition. Label sets absent from the snapshot vanish. */
  async render(snapshot: Snapshot): Promise<string> {
    this.#setFrom(snapshot);
    this.#loopLagMax.set(this.#loopLagMaxSince);
    this.#loopLagMaxSince = 0;
    return this.registry.metrics();
  }

  #setFrom(s: Snapshot): void {
    for (const g of [this.#slotsTotal, this.#slotsBusy, this.#queueWaiting, this.#instanceUp, this.#restarts, this.#gpuUtil, this.#gpuMemUsed, this.#gpuMemTotal, this.#gpuTemp, this.#gpuPower, this.#processMemory, this.#running, this.#waiting, this.#kvCache, this.#promptTokens, this.#draftTokens, this.#cacheHit, this.#modelMemory]) {
      g.reset();
    }
    for (const m of s.models) {
      this.#queueWaiting.set({ model: m.name }, m.queue.waiting);
      this.#setModelServerGauges(m);
      if (m.memory) {
        this.#modelMemory.set({ model: m.name, kind: 'plan' }, m.memory.planBytes);
        if (m.memory.actualBytes !== undefined) this.#modelMemory.set({ model: m.name, kind: 'actual' }, m.memory.actualBytes);
        if (m.memory.promptCacheBytes) this.#modelMemory.set({ model: m.name, kind: 'prompt_cache' }, m.memory.promptCacheBytes);
      }
      for (const i of m.instances) {
        const l: Labels<'model' | 'instance'> = { model: m.name, instance: i.id };
        const ready = i.state === 'ready';
        this.#slotsTotal.set(l, ready ? totalSlotsOf(i, m.slotsPerInstance) : 0);
        this.#slotsBusy.set(l, ready ? busySlotsOf(i, m.slotsPerInstance) : 0);
        this.#instanceUp.set(l, ready ? 1 : 0);
        this.#restarts.inc(l, i.restarts);
        if (i.usage) {
          this.#processMemory.set({ instance: i.id, kind: 'rss' }, i.usage.rssBytes);
          if (i.usage.vramBytes !== undefined) this.#processMemory.set({ instance: i.id, kind: 'vram' }, i.usage.vramBytes);
        }
      }
    }
    for (const g of s.gpus) {
      const l = { gpu: String(g.index) };
      this.#gpuUtil.set(l, g.utilizationPct / 100);
      this.#gpuMemUsed.set(l, g.memoryUsedMiB * 1024 * 1024);
      this.#gpuMemTotal.set(l, g.memoryTotalMiB * 1024 * 1024);
      if (g.temperatureC !== undefined) this.#gpuTemp.set(l, g.temperatureC);
      if (g.powerW !== undefined) this.#gpuPower.set(l, g.powerW);
    }
    this.#headroom.set(s.capacity.headroomSlots);
  }

  #setModelServerGauges(m: Snapshot['models'][number]): void {
    const model = { model: m.name };
    this.#running.set(model, modelSlots(m).busy);
    this.#waiting.set(model, m.queue.waiting);
    let used = 0;
    let total = 0;
    for (const i of m.instances) {
      if (i.state !== 'ready' || !i.kvCache) continue;
      used += i.kvCache.usedTokens;
      total += i.kvCache.totalTokens;
    }
    this.#kvCache.set(model, total > 0 ? used / total : 0);
    if (m.promptTokens) {
      this.#promptTokens.inc({ model: m.name, kind: 'cached' }, m.promptTokens.cached);
      this.#promptTokens.inc({ model: m.name, kind: 'processed' }, m.promptTokens.processed);
    }
    if (m.promptCacheHitRatio !== undefined) this.#cacheHit.set(model, m.promptCacheHitRatio);
    if (m.draftTokens) {
      this.#draftTokens.inc({ model: m.name, kind: 'drafted' }, m.draftTokens.drafted);
      this.#draftTokens.inc({ model: m.name, kind: 'accepted' }, m.draftTokens.accepted);
    }
  }
}
