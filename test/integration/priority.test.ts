// Priority classes, newest-wins sessions and queue position/ETA through the daemon, against the real
// llama-server (the `slow` tiny model keeps slots busy long enough to watch; `fim` serves /infill).
import { describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorBody, ModelStatus, Snapshot } from '../../shared/protocol';
import { sseData } from '../../daemon/api/upstream';
import { startTestDaemon, waitUntil, type TestDaemon } from '../helpers/daemon';

const ready = (s: Snapshot): boolean => s.models.length > 0 && s.models.every((m) => m.instances.length > 0 && m.instances.every((i) => i.state === 'ready' && i.slots.length > 0));
const model = (s: Snapshot, name: string): ModelStatus => s.models.find((m) => m.name === name)!;
/** Slots leased to the daemon's requests right now (exact: from the leases). */
const leased = (m: ModelStatus): number => m.instances.reduce((n, i) => n + i.slots.filter((x) => x.requestId !== undefined).length, 0);

function post(d: TestDaemon, path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return d.fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body), signal });
}

/** Reads a whole response; returns when it was finished (epoch ms) and the last SSE event, if any. */
async function drain(res: Response): Promise<{ endedAt: number; last?: string }> {
  let last: string | undefined;
  if ((res.headers.get('content-type') ?? '').includes('text/event-stream')) {
    for await (const data of sseData(res.body!)) last = data;
  } else await res.text();
  return { endedAt: Date.now(), last };
}

describe('newest wins (X-Slotwise-Session)', () => {
  it('20 keystroke-like /infill requests 50 ms apart: one runs at a time, only the last completes, 19 get 409 SW_ERR_SUPERSEDED, most of them held without a slot', async () => {
    const d = await startTestDaemon({ models: { coder: { slots: 4, ctxPerSlot: 1024, size: 'slow', variant: 'fim' } } });
    await d.waitFor(ready, 'ready', 120_000);
    let maxLeased = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        maxLeased = Math.max(maxLeased, leased(model(await d.status(), 'coder')));
        await sleep(10);
      }
    })();
    const session = 'file:///work/src/main.py';
    const sent: Promise<{ status: number; code?: string }>[] = [];
    for (let i = 0; i < 20; i++) {
      const body = { model: 'coder', input_prefix: `def f${i}(a, b):\n    `, input_suffix: '\n', n_predict: 300, ignore_eos: true, temperature: 0 };
      sent.push(
        post(d, '/infill', body, { 'X-Slotwise-Session': session }).then(async (res) => {
          const json = (await res.json()) as { error?: ErrorBody };
          return { status: res.status, code: json.error?.code };
        }),
      );
      await sleep(50);
    }
    const results = await Promise.all(sent);
    watching = false;
    await watcher;
    expect(results.slice(0, 19), JSON.stringify(results)).toEqual(Array.from({ length: 19 }, () => ({ status: 409, code: 'SW_ERR_SUPERSEDED' })));
    expect(results[19]).toEqual({ status: 200, code: undefined });
    expect(maxLeased).toBe(1);
    const m = await d.waitFor((s) => model(s, 'coder').outcomes!.completed === 1, 'the last one counted');
    const c = model(m, 'coder');
    expect(c.superseded).toBe(19);
    // The typing-burst hold (queue.sessionHoldMs): the first request had no history and started at
    // once; the others waited ~1.2 × the learned 50 ms gap and were superseded before taking a slot.
    // A send that this loaded machine delays past the hold lets one start briefly, hence not exactly 18.
    expect(c.supersededUnstarted).toBeGreaterThanOrEqual(15);
    expect(c.supersededUnstarted).toBeLessThanOrEqual(18);
    expect(c.outcomes).toEqual({ completed: 1, cancelled: 19, rejected: 0, failed: 0 });
    expect(c.requests).toBe(20);
    const metrics = await (await d.fetch('/metrics')).text();
    expect(metrics).toMatch(/slotwise_requests_superseded_total\{model="coder"\} 19/);
    expect(metrics).toContain(`slotwise_requests_superseded_unstarted_total{model="coder"} ${c.supersededUnstarted}`);
  });

  it('a started stream ends with an SW_ERR_SUPERSEDED event; a WS job of the same session gets job.error; another session is untouched', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 4, ctxPerSlot: 1024, size: 'slow' } } });
    await d.waitFor(ready, 'ready', 120_000);
    const body = { model: 'tiny', prompt: 'Once upon a time', max_tokens: 800, ignore_eos: true, stream: true };
    const first = await post(d, '/v1/completions', body, { 'X-Slotwise-Session': 'a' });
    const other = await post(d, '/v1/completions', body, { 'X-Slotwise-Session': 'b' });
    expect(first.status).toBe(200);
    const firstDone = drain(first);
    const otherDone = drain(other);
    const ws = await d.client();
    const errors: { jobId: string; code: string }[] = [];
    ws.on('job.error', (e: { jobId: string; code: string }) => errors.push(e));
    const { jobId } = await ws.call('prompt.submit', { model: 'tiny', prompt: 'x', maxTokens: 800, session: 'a' });
    expect(JSON.parse((await firstDone).last!)).toMatchObject({ error: { code: 'SW_ERR_SUPERSEDED' } });
    // A running WS job is superseded in turn by a later HTTP request of the session.
    const last = await post(d, '/v1/completions', { ...body, stream: false, max_tokens: 4 }, { 'X-Slotwise-Session': 'a' });
    expect(last.status).toBe(200);
    await waitUntil(() => errors.length > 0, 'job.error');
    expect(errors).toEqual([{ jobId, code: 'SW_ERR_SUPERSEDED', message: expect.stringMatching(/superseded by a newer request of session "a"/) as unknown }]);
    const s = await d.waitFor((x) => x.models[0]!.superseded === 2, 'two superseded');
    expect(leased(s.models[0]!)).toBe(1); // session "b" still streams
    expect((await otherDone).last).toBe('[DONE]');
  });
});

describe('priority classes', () => {
  it('an interactive request takes the first slot that frees, ahead of 12 waiting background streams', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 4, ctxPerSlot: 1024, size: 'slow' } } });
    await d.waitFor(ready, 'ready', 120_000);
    const bg = Array.from({ length: 16 }, (_, i) =>
      post(d, '/v1/completions', { model: 'tiny', prompt: `bg ${i}`, max_tokens: 120, ignore_eos: true, stream: true }, { 'X-Slotwise-Priority': 'background' }).then(async (res) => {
        const { endedAt } = await drain(res);
        return { id: res.headers.get('x-slotwise-request-id')!, endedAt, status: res.status };
      }),
    );
    const full = await d.waitFor((s) => s.models[0]!.queue.byClass?.background === 12 && leased(s.models[0]!) === 4, '4 running, 12 background waiting');
    const first4 = new Set(full.models[0]!.instances[0]!.slots.map((x) => x.requestId));
    // Lease start times (the daemon's `since`) of every request seen holding a slot.
    const since = new Map<string, number>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const x of (await d.status()).models[0]!.instances[0]!.slots) if (x.requestId && x.since) since.set(x.requestId, x.since);
        await sleep(10);
      }
    })();
    const iSent = Date.now();
    const ires = await post(d, '/v1/completions', { model: 'tiny', prompt: 'now', max_tokens: 60, ignore_eos: true });
    expect(ires.status).toBe(200);
    const iWait = Number(ires.headers.get('x-slotwise-queue-wait-ms'));
    const iId = ires.headers.get('x-slotwise-request-id')!;
    expect(ires.headers.get('x-slotwise-queue-position')).toBe('1');
    await ires.text();
    const done = await Promise.all(bg);
    watching = false;
    await watcher;
    expect(done.every((r) => r.status === 200)).toBe(true);
    const firstBgEnd = Math.min(...done.map((r) => r.endedAt));
    // It started as soon as one slot freed: its wait ends before the first background stream's end reached us (+ margin).
    expect(iWait).toBeLessThan(firstBgEnd - iSent + 300);
    // The 12 background requests queued before it all started after it (lease start, daemon clock).
    const waited = done.filter((r) => !first4.has(r.id));
    expect(waited).toHaveLength(12);
    expect(since.has(iId)).toBe(true);
    for (const r of waited) expect(since.get(r.id)).toBeGreaterThanOrEqual(since.get(iId)!);
  });

  it('aging: with a steady interactive stream, a background request is served within backgroundMaxWaitMs', async () => {
    const bound = 1500;
    const d = await startTestDaemon({
      models: { tiny: { slots: 2, ctxPerSlot: 1024, size: 'slow' } },
      config: { queue: { maxWaiting: 64, timeoutMs: 60_000, backgroundMaxWaitMs: bound } },
    });
    await d.waitFor(ready, 'ready', 120_000);
    let running = true;
    const interactive = async (): Promise<number> => {
      let n = 0;
      while (running) {
        await (await post(d, '/v1/completions', { model: 'tiny', prompt: `i${n}`, max_tokens: 24, ignore_eos: true })).text();
        n++;
      }
      return n;
    };
    // Eight interactive clients on two slots: at least four interactive requests always wait, so only aging lets background in.
    const loops = Array.from({ length: 8 }, interactive);
    await d.waitFor((s) => s.models[0]!.queue.waiting >= 6, 'interactive work queued');
    const sentAt = Date.now();
    const res = await post(d, '/v1/completions', { model: 'tiny', prompt: 'bg', max_tokens: 8 }, { 'X-Slotwise-Priority': 'background' });
    const wait = Number(res.headers.get('x-slotwise-queue-wait-ms'));
    await res.text();
    const servedAfter = Date.now() - sentAt;
    running = false;
    const served = await Promise.all(loops);
    expect(res.status).toBe(200);
    // Held back while younger interactive work waited, then served at the next free slot after the bound.
    expect(wait).toBeGreaterThanOrEqual(bound - 50);
    expect(wait).toBeLessThan(bound + 1500);
    expect(servedAfter).toBeGreaterThan(wait);
    expect(served.reduce((a, b) => a + b, 0)).toBeGreaterThan(4); // the interactive stream really was steady
  });

  it('reservedSlots: 1 keeps one slot free from background work for an interactive request', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 4, ctxPerSlot: 1024, size: 'slow', reservedSlots: 1 } } });
    await d.waitFor(ready, 'ready', 120_000);
    const ctrl = new AbortController();
    const bg = Array.from({ length: 6 }, (_, i) =>
      post(d, '/v1/completions', { model: 'tiny', prompt: `bg ${i}`, max_tokens: 800, ignore_eos: true, stream: true }, { 'X-Slotwise-Priority': 'background' }, ctrl.signal)
        .then(drain)
        .catch(() => undefined),
    );
    await d.waitFor((s) => leased(s.models[0]!) === 3 && s.models[0]!.queue.byClass?.background === 3, '3 background running, 3 waiting');
    for (let i = 0; i < 10; i++) {
      expect(leased((await d.status()).models[0]!)).toBe(3);
      await sleep(50);
    }
    const ires = await post(d, '/v1/completions', { model: 'tiny', prompt: 'now', max_tokens: 4 });
    expect(ires.status).toBe(200);
    expect(Number(ires.headers.get('x-slotwise-queue-wait-ms'))).toBeLessThan(100);
    await ires.text();
    ctrl.abort();
    await Promise.all(bg);
  });
});

describe('queue position and ETA', () => {
  it('job.queued positions count down for a waiting WS job, with an ETA once a service time is known', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 1024, size: 'slow' } } });
    await d.waitFor(ready, 'ready', 120_000);
    const ws = await d.client();
    const queued = new Map<string, { position: number; etaMs?: number }[]>();
    const ended = new Set<string>();
    ws.on('job.queued', (e: { jobId: string; position: number; etaMs?: number }) => {
      const list = queued.get(e.jobId) ?? [];
      list.push({ position: e.position, ...(e.etaMs !== undefined ? { etaMs: e.etaMs } : {}) });
      queued.set(e.jobId, list);
    });
    ws.on('job.end', (e: { jobId: string }) => ended.add(e.jobId));
    // A first job gives the daemon a service time; then five more queue behind a running one. Each
    // runs longer than the 250-ms coalescing interval, so every position change reaches the client.
    const { jobId: warm } = await ws.call('prompt.submit', { model: 'tiny', prompt: 'warm', maxTokens: 400 });
    await waitUntil(() => ended.has(warm), 'warm-up job ended');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await ws.call('prompt.submit', { model: 'tiny', prompt: `job ${i}`, maxTokens: 400 })).jobId);
    await waitUntil(() => ids.every((id) => ended.has(id)), 'all jobs ended', 60_000);
    const last = queued.get(ids[4]!)!;
    const positions = last.map((q) => q.position);
    expect(positions[0]).toBe(4);
    expect(positions.at(-1)).toBe(1);
    for (let i = 1; i < positions.length; i++) expect(positions[i]!).toBeLessThan(positions[i - 1]!);
    expect(last.every((q) => q.etaMs !== undefined && q.etaMs > 0)).toBe(true);
    expect(last[0]!.etaMs!).toBeGreaterThan(last.at(-1)!.etaMs!);
    expect(queued.has(ids[0]!)).toBe(false); // it started at once
  });
});
