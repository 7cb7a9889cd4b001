// /metrics exposition: every series and value from a known snapshot, counters and the queue-wait histogram.
import { describe, expect, it } from 'vitest';
import { MetricsRegistry } from '../../daemon/status/metrics';
import type { InstanceStatus, ModelStatus, Snapshot } from '../../shared/protocol';

const MIB = 1024 * 1024;

function instance(over: Partial<InstanceStatus> & Pick<InstanceStatus, 'id' | 'state'>): InstanceStatus {
  return { since: 0, restarts: 0, slots: [], ...over };
}

function model(over: Partial<ModelStatus> & Pick<ModelStatus, 'name' | 'instances'>): ModelStatus {
  return { path: `/m/${over.name}.gguf`, slotsPerInstance: 4, ctxPerSlot: 4096, gpuLayers: 'auto', replicas: 1, queue: { waiting: 0, oldestWaitMs: 0 }, ...over };
}

function snapshot(models: ModelStatus[]): Snapshot {
  return {
    protocol: 1,
    version: '0.1.0',
    daemon: { pid: 1, uptimeMs: 1, url: 'http://127.0.0.1:1' },
    models,
    gpus: [
      { index: 0, name: 'NVIDIA H100 80GB HBM3', utilizationPct: 95, memoryUsedMiB: 72790, memoryTotalMiB: 81559, temperatureC: 39, powerW: 145 },
      { index: 1, name: 'GeForce GTX 1050 Ti', utilizationPct: 0, memoryUsedMiB: 0, memoryTotalMiB: 4040 },
    ],
    capacity: { busySlots: 2, totalSlots: 4, queued: 3, headroomSlots: 2, verdict: 'busy', reason: '' },
    warnings: [],
  };
}

const CODER = model({
  name: 'coder',
  queue: { waiting: 3, oldestWaitMs: 1200 },
  instances: [
    instance({
      id: 'coder#1',
      state: 'ready',
      restarts: 1,
      pid: 100,
      slots: [{ id: 0, busy: true }, { id: 1, busy: false }, { id: 2, busy: true }, { id: 3, busy: false }],
      usage: { cpuPct: 180, rssBytes: 500 * MIB, vramBytes: 990 * MIB },
    }),
    instance({ id: 'coder#2', state: 'backoff', restarts: 3 }),
  ],
});
const CHAT = model({ name: 'chat', instances: [instance({ id: 'chat#1', state: 'loading', pid: 200, usage: { cpuPct: 95, rssBytes: 64 * MIB } })] });

/** Exposition text → `name{labels}` → value, comments left out. */
function series(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

function family(all: Map<string, number>, name: string): Record<string, number> {
  return Object.fromEntries([...all].filter(([k]) => k === name || k.startsWith(`${name}{`)));
}

describe('MetricsRegistry', () => {
  it('renders every gauge from the snapshot, with exact series and values', async () => {
    const text = await new MetricsRegistry().render(snapshot([CODER, CHAT]));
    const all = series(text);
    expect(family(all, 'slotwise_slots_total')).toEqual({
      'slotwise_slots_total{model="coder",instance="coder#1"}': 4,
      'slotwise_slots_total{model="coder",instance="coder#2"}': 0,
      'slotwise_slots_total{model="chat",instance="chat#1"}': 0,
    });
    expect(family(all, 'slotwise_slots_busy')).toEqual({
      'slotwise_slots_busy{model="coder",instance="coder#1"}': 2,
      'slotwise_slots_busy{model="coder",instance="coder#2"}': 0,
      'slotwise_slots_busy{model="chat",instance="chat#1"}': 0,
    });
    expect(family(all, 'slotwise_queue_waiting')).toEqual({
      'slotwise_queue_waiting{model="coder"}': 3,
      'slotwise_queue_waiting{model="chat"}': 0,
    });
    expect(family(all, 'slotwise_instance_up')).toEqual({
      'slotwise_instance_up{model="coder",instance="coder#1"}': 1,
      'slotwise_instance_up{model="coder",instance="coder#2"}': 0,
      'slotwise_instance_up{model="chat",instance="chat#1"}': 0,
    });
    expect(family(all, 'slotwise_instance_restarts_total')).toEqual({
      'slotwise_instance_restarts_total{model="coder",instance="coder#1"}': 1,
      'slotwise_instance_restarts_total{model="coder",instance="coder#2"}': 3,
      'slotwise_instance_restarts_total{model="chat",instance="chat#1"}': 0,
    });
    expect(family(all, 'slotwise_gpu_utilization_ratio')).toEqual({
      'slotwise_gpu_utilization_ratio{gpu="0"}': 0.95,
      'slotwise_gpu_utilization_ratio{gpu="1"}': 0,
    });
    expect(family(all, 'slotwise_gpu_memory_used_bytes')).toEqual({
      'slotwise_gpu_memory_used_bytes{gpu="0"}': 72790 * MIB,
      'slotwise_gpu_memory_used_bytes{gpu="1"}': 0,
    });
    expect(family(all, 'slotwise_gpu_memory_total_bytes')).toEqual({
      'slotwise_gpu_memory_total_bytes{gpu="0"}': 81559 * MIB,
      'slotwise_gpu_memory_total_bytes{gpu="1"}': 4040 * MIB,
    });
    expect(family(all, 'slotwise_gpu_temperature_celsius')).toEqual({ 'slotwise_gpu_temperature_celsius{gpu="0"}': 39 });
    expect(family(all, 'slotwise_gpu_power_watts')).toEqual({ 'slotwise_gpu_power_watts{gpu="0"}': 145 });
    expect(family(all, 'slotwise_process_memory_bytes')).toEqual({
      'slotwise_process_memory_bytes{instance="coder#1",kind="rss"}': 500 * MIB,
      'slotwise_process_memory_bytes{instance="coder#1",kind="vram"}': 990 * MIB,
      'slotwise_process_memory_bytes{instance="chat#1",kind="rss"}': 64 * MIB,
    });
    expect(family(all, 'slotwise_capacity_headroom_slots')).toEqual({ slotwise_capacity_headroom_slots: 2 });
    // Counters and the histogram have no series before anything is counted.
    expect(family(all, 'slotwise_requests_total')).toEqual({});
    expect(family(all, 'slotwise_tokens_generated_total')).toEqual({});
    expect(text).toContain('# TYPE slotwise_instance_restarts_total counter');
    expect(text).toContain('# TYPE slotwise_queue_wait_seconds histogram');
    expect(text).toContain('# TYPE slotwise_slots_busy gauge');
  });

  it('drops series of instances and GPUs that left the snapshot', async () => {
    const metrics = new MetricsRegistry();
    await metrics.render(snapshot([CODER, CHAT]));
    const next = { ...snapshot([{ ...CODER, instances: [CODER.instances[0]!] }]), gpus: [] };
    const all = series(await metrics.render(next));
    expect(Object.keys(family(all, 'slotwise_instance_up'))).toEqual(['slotwise_instance_up{model="coder",instance="coder#1"}']);
    expect(family(all, 'slotwise_queue_waiting')).toEqual({ 'slotwise_queue_waiting{model="coder"}': 3 });
    expect(family(all, 'slotwise_gpu_utilization_ratio')).toEqual({});
  });

  it('counts requests and tokens, and observes queue waits into the histogram', async () => {
    const metrics = new MetricsRegistry();
    metrics.countRequest('coder', 'completed');
    metrics.countRequest('coder', 'completed');
    metrics.countRequest('coder', 'rejected');
    metrics.countRequest('chat', 'cancelled');
    metrics.addTokens('coder', 10);
    metrics.addTokens('coder', 5);
    metrics.addTokens('coder', -3); // ignored: a counter never goes down
    metrics.addTokens('coder', Number.NaN);
    metrics.observeQueueWait('coder', 0.3);
    metrics.observeQueueWait('coder', 2);
    metrics.observeQueueWait('coder', -1); // ignored
    const all = series(await metrics.render(snapshot([])));
    expect(family(all, 'slotwise_requests_total')).toEqual({
      'slotwise_requests_total{model="coder",outcome="completed"}': 2,
      'slotwise_requests_total{model="coder",outcome="rejected"}': 1,
      'slotwise_requests_total{model="chat",outcome="cancelled"}': 1,
    });
    expect(family(all, 'slotwise_tokens_generated_total')).toEqual({ 'slotwise_tokens_generated_total{model="coder"}': 15 });
    expect(family(all, 'slotwise_queue_wait_seconds_bucket')).toEqual({
      'slotwise_queue_wait_seconds_bucket{le="0.005",model="coder"}': 0,
      'slotwise_queue_wait_seconds_bucket{le="0.025",model="coder"}': 0,
      'slotwise_queue_wait_seconds_bucket{le="0.1",model="coder"}': 0,
      'slotwise_queue_wait_seconds_bucket{le="0.25",model="coder"}': 0,
      'slotwise_queue_wait_seconds_bucket{le="0.5",model="coder"}': 1,
      'slotwise_queue_wait_seconds_bucket{le="1",model="coder"}': 1,
      'slotwise_queue_wait_seconds_bucket{le="2.5",model="coder"}': 2,
      'slotwise_queue_wait_seconds_bucket{le="5",model="coder"}': 2,
      'slotwise_queue_wait_seconds_bucket{le="10",model="coder"}': 2,
      'slotwise_queue_wait_seconds_bucket{le="30",model="coder"}': 2,
      'slotwise_queue_wait_seconds_bucket{le="60",model="coder"}': 2,
      'slotwise_queue_wait_seconds_bucket{le="120",model="coder"}': 2,
      'slotwise_queue_wait_seconds_bucket{le="+Inf",model="coder"}': 2,
    });
    expect(all.get('slotwise_queue_wait_seconds_sum{model="coder"}')).toBeCloseTo(2.3);
    expect(all.get('slotwise_queue_wait_seconds_count{model="coder"}')).toBe(2);

    // Counters keep counting across renders; gauges are re-set each time.
    metrics.countRequest('coder', 'completed');
    const again = series(await metrics.render(snapshot([])));
    expect(again.get('slotwise_requests_total{model="coder",outcome="completed"}')).toBe(3);
  });

  it('exposes the model server protocol gauges (running, queued, KV cache) and prompt-cache tokens per model', async () => {
    const coder = model({
      name: 'coder',
      queue: { waiting: 5, oldestWaitMs: 900 },
      promptTokens: { cached: 300, processed: 100 },
      promptCacheHitRatio: 0.75,
      instances: [
        instance({
          id: 'coder#1',
          state: 'ready',
          slots: [{ id: 0, busy: true, requestId: 'a' }, { id: 1, busy: true, foreign: true }, { id: 2, busy: false }, { id: 3, busy: false }],
          kvCache: { usedTokens: 1024, totalTokens: 4096 },
        }),
        instance({ id: 'coder#2', state: 'ready', slots: [{ id: 0, busy: true }, { id: 1, busy: false }, { id: 2, busy: false }, { id: 3, busy: false }], kvCache: { usedTokens: 0, totalTokens: 4096 } }),
        // Not ready: neither its slots nor its cache count.
        instance({ id: 'coder#3', state: 'loading', slots: [{ id: 0, busy: true }], kvCache: { usedTokens: 4096, totalTokens: 4096 } }),
      ],
    });
    const text = await new MetricsRegistry().render(snapshot([coder, CHAT]));
    const all = series(text);
    expect(family(all, 'slotwise_num_requests_running')).toEqual({ 'slotwise_num_requests_running{model="coder"}': 3, 'slotwise_num_requests_running{model="chat"}': 0 });
    expect(family(all, 'slotwise_num_requests_waiting')).toEqual({ 'slotwise_num_requests_waiting{model="coder"}': 5, 'slotwise_num_requests_waiting{model="chat"}': 0 });
    expect(family(all, 'slotwise_kv_cache_usage_perc')).toEqual({ 'slotwise_kv_cache_usage_perc{model="coder"}': 0.125, 'slotwise_kv_cache_usage_perc{model="chat"}': 0 });
    expect(family(all, 'slotwise_prompt_tokens_total')).toEqual({
      'slotwise_prompt_tokens_total{model="coder",kind="cached"}': 300,
      'slotwise_prompt_tokens_total{model="coder",kind="processed"}': 100,
    });
    expect(family(all, 'slotwise_prompt_cache_hit_ratio')).toEqual({ 'slotwise_prompt_cache_hit_ratio{model="coder"}': 0.75 });
    for (const name of ['slotwise_num_requests_running', 'slotwise_num_requests_waiting', 'slotwise_kv_cache_usage_perc', 'slotwise_prompt_cache_hit_ratio']) {
      expect(text).toContain(`# TYPE ${name} gauge`);
    }
    expect(text).toContain('# TYPE slotwise_prompt_tokens_total counter');
    // Totals come from the scheduler: a second render shows them, not twice them.
    const metrics = new MetricsRegistry();
    await metrics.render(snapshot([coder]));
    const again = series(await metrics.render(snapshot([coder])));
    expect(again.get('slotwise_prompt_tokens_total{model="coder",kind="cached"}')).toBe(300);
  });

  it("reports each model's memory: the plan, llama-server's buffers and, apart from them, the prompt cache at its limit", async () => {
    const coder = model({ name: 'coder', instances: [], memory: { planBytes: 300 * MIB, actualBytes: 290 * MIB, promptCacheBytes: 64 * MIB, byDevice: [] } });
    const chat = model({ name: 'chat', instances: [], memory: { planBytes: 100 * MIB, byDevice: [] } });
    const all = series(await new MetricsRegistry().render(snapshot([coder, chat])));
    expect(family(all, 'slotwise_model_memory_bytes')).toEqual({
      'slotwise_model_memory_bytes{model="coder",kind="plan"}': 300 * MIB,
      'slotwise_model_memory_bytes{model="coder",kind="actual"}': 290 * MIB,
      'slotwise_model_memory_bytes{model="coder",kind="prompt_cache"}': 64 * MIB,
      'slotwise_model_memory_bytes{model="chat",kind="plan"}': 100 * MIB,
    });
  });

  it('keeps registries apart: two daemons in one process do not share series', async () => {
    const a = new MetricsRegistry();
    const b = new MetricsRegistry();
    a.countRequest('coder', 'completed');
    expect(family(series(await b.render(snapshot([]))), 'slotwise_requests_total')).toEqual({});
  });
});
