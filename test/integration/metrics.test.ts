// /metrics and resource sampling against a real daemon + llama-server on this CPU-only host.
import { describe, expect, it } from 'vitest';
import { startTestDaemon } from '../helpers/daemon';

/** Value of one exposition line `name{labels} value`, by exact name and label subset. */
function series(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('metrics and resources (real llama-server)', () => {
  it('exposes slot, queue, request, token and process series; needs the token', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 3, ctxPerSlot: 256 } } });
    await d.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready' && s.models[0]!.instances[0]!.slots.length === 3, 'ready');
    expect((await fetch(`${d.url}/metrics`)).status).toBe(401);

    const res = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'x', max_tokens: 7 }) });
    expect(res.status).toBe(200);
    // Tokens come from llama-server's own counter, scraped every second.
    let text = '';
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      text = await (await d.fetch('/metrics')).text();
      if ((series(text, 'slotwise_tokens_generated_total', { model: 'tiny' }) ?? 0) >= 7) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(series(text, 'slotwise_slots_total', { model: 'tiny', instance: 'tiny#1' })).toBe(3);
    expect(series(text, 'slotwise_slots_busy', { model: 'tiny', instance: 'tiny#1' })).toBe(0);
    expect(series(text, 'slotwise_queue_waiting', { model: 'tiny' })).toBe(0);
    expect(series(text, 'slotwise_requests_total', { model: 'tiny', outcome: 'completed' })).toBe(1);
    expect(series(text, 'slotwise_tokens_generated_total', { model: 'tiny' })).toBe(7);
    expect(series(text, 'slotwise_instance_up', { instance: 'tiny#1' })).toBe(1);
    expect(series(text, 'slotwise_queue_wait_seconds_count', { model: 'tiny' })).toBe(1);
    expect(series(text, 'slotwise_process_memory_bytes', { instance: 'tiny#1', kind: 'rss' })).toBeGreaterThan(1_000_000);

    // CPU-only host: per-instance CPU and RSS plus host memory in the snapshot.
    const s = await d.waitFor((x) => x.models[0]!.instances[0]!.usage !== undefined, 'usage sampled', 5000);
    expect(s.gpus).toEqual([]);
    expect(s.host?.memoryTotalBytes).toBeGreaterThan(0);
    expect(s.models[0]!.instances[0]!.usage!.rssBytes).toBeGreaterThan(1_000_000);
  });

  it('samples its event-loop lag while a request runs, and not while idle', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 256 } } });
    await d.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready', 'ready');
    const ticks = async (): Promise<number> => series(await (await d.fetch('/metrics')).text(), 'slotwise_event_loop_lag_seconds_count') ?? -1;
    const idle = await ticks();
    await new Promise((r) => setTimeout(r, 300));
    // A 10 ms timer that ran while idle would have ticked ~30 times by now.
    expect(await ticks()).toBe(idle);
    const res = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'x', max_tokens: 64, stream: true }) });
    expect(res.status).toBe(200);
    await res.text();
    expect(await ticks()).toBeGreaterThan(idle);
  });
});
