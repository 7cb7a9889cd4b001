// Slot-aware scheduling through the daemon, against the real llama-server: the official openai
// client, queueing, cancellation freeing slots, queue bounds and deadlines, prompt jobs.
import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../shared/protocol';
import { instanceAuth, startTestDaemon, waitUntil, type TestDaemon } from '../helpers/daemon';

const ready = (s: Snapshot) => s.models.length > 0 && s.models.every((m) => m.instances.length > 0 && m.instances.every((i) => i.state === 'ready' && i.slots.length > 0));

/** `is_processing` of every slot, read straight from llama-server's /slots (not the daemon's view). */
async function llamaBusy(d: TestDaemon, model = 'tiny'): Promise<boolean[]> {
  const s = await d.status();
  const inst = s.models.find((m) => m.name === model)!.instances[0]!;
  const slots = (await (await fetch(`http://127.0.0.1:${inst.port}/slots`, { headers: instanceAuth(inst.pid!) })).json()) as { is_processing: boolean }[];
  return slots.map((x) => x.is_processing);
}

function openai(d: TestDaemon): OpenAI {
  return new OpenAI({ baseURL: `${d.url}/v1`, apiKey: d.token, maxRetries: 0 });
}

describe('scheduling through the daemon (real llama-server)', () => {
  it('streams and completes with the official openai client; unknown model is a 404 listing known models', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 4, ctxPerSlot: 512 } } });
    await d.waitFor(ready, 'ready');
    const client = openai(d);

    const done = await client.completions.create({ model: 'tiny', prompt: 'Hello', max_tokens: 12 });
    expect(done.choices[0]!.text.length).toBeGreaterThan(0);
    expect(done.usage?.completion_tokens).toBe(12);
    expect(done.model).toBe('tiny');

    const stream = await client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 16, stream: true });
    let text = '';
    let chunks = 0;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? '';
      finish ??= chunk.choices[0]?.finish_reason;
    }
    expect(chunks).toBeGreaterThan(3);
    expect(text.length).toBeGreaterThan(0);
    expect(finish).toBe('length');

    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny']);

    const err = await client.completions.create({ model: 'gpt-9', prompt: 'x' }).then(() => undefined, (e: unknown) => e as InstanceType<typeof OpenAI.APIError>);
    expect(err?.status).toBe(404);
    expect(err?.message).toContain('unknown model "gpt-9" — configured models: tiny');

    const s = await d.status();
    expect(s.models[0]!.outcomes).toMatchObject({ completed: 2, rejected: 0, failed: 0 });
  });

  it('frees the slot within 1 s when a streaming client aborts mid-stream', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 2, ctxPerSlot: 2048, size: 'slow' } } });
    await d.waitFor(ready, 'ready');
    const abort = new AbortController();
    const stream = await openai(d).completions.create({ model: 'tiny', prompt: 'Once', max_tokens: 1500, stream: true }, { signal: abort.signal });
    let got = 0;
    try {
      for await (const _ of stream) {
        if (++got === 5) {
          abort.abort();
          break;
        }
      }
    } catch (e) {
      expect((e as Error).name).toMatch(/Abort/);
    }
    expect(got).toBe(5);
    const abortedAt = Date.now();
    await waitUntil(async () => !(await llamaBusy(d)).some(Boolean), 'llama-server slot idle', 3000);
    expect(Date.now() - abortedAt).toBeLessThan(1000);
    await d.waitFor((s) => s.models[0]!.outcomes?.cancelled === 1, 'cancelled outcome counted', 3000);
  });

  it('runs 12 concurrent requests on 4 slots: all finish, with a visible queue in between', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 4, ctxPerSlot: 1024, size: 'slow' } } });
    await d.waitFor(ready, 'ready');
    const client = await d.client();
    let maxQueued = 0;
    let maxBusy = 0;
    let maxInFlight = 0;
    client.on('status', ({ snapshot }) => {
      maxQueued = Math.max(maxQueued, snapshot.models[0]!.queue.waiting);
      maxBusy = Math.max(maxBusy, snapshot.capacity.busySlots);
      maxInFlight = Math.max(maxInFlight, snapshot.models[0]!.instances[0]!.inFlight ?? 0);
    });
    await client.call('status.subscribe');
    const api = openai(d);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        api.completions.create({ model: 'tiny', prompt: `Request ${i}`, max_tokens: 200, temperature: 0 }).withResponse(),
      ),
    );
    for (const { data } of results) expect(data.usage?.completion_tokens).toBe(200);
    const waits = results.map(({ response }) => Number(response.headers.get('x-slotwise-queue-wait-ms')));
    expect(waits.filter((w) => w > 0).length).toBeGreaterThanOrEqual(8); // 8 of 12 had to wait for a slot
    expect(maxQueued).toBeGreaterThanOrEqual(4);
    expect(maxInFlight).toBe(4); // never more requests on the instance than it has slots
    expect(maxBusy).toBeGreaterThanOrEqual(3); // llama-server's own view, sampled every 250 ms
    const s = await d.waitFor((x) => x.models[0]!.queue.waiting === 0 && x.capacity.busySlots === 0, 'drained');
    expect(s.models[0]!.outcomes).toMatchObject({ completed: 12, cancelled: 0, rejected: 0, failed: 0 });
  });

  it('holds the queue bound (503 + Retry-After) and the queue deadline (504)', async () => {
    const d = await startTestDaemon({
      models: { tiny: { slots: 1, ctxPerSlot: 8192, size: 'slow' } },
      config: { queue: { maxWaiting: 2, timeoutMs: 1000 } },
    });
    await d.waitFor(ready, 'ready');
    const post = (max: number, signal?: AbortSignal) =>
      d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'x', max_tokens: max, ignore_eos: true }), signal });
    const holder = new AbortController();
    const long = post(8000, holder.signal).catch((e: Error) => e); // holds the only slot past the queued ones' deadline
    await d.waitFor((s) => s.models[0]!.instances[0]!.inFlight === 1, 'first request running');
    const q1 = post(4);
    const q2 = post(4);
    await d.waitFor((s) => s.models[0]!.queue.waiting === 2, 'two queued');
    const s = await d.status();
    expect(s.models[0]!.queue.entries?.map((e) => e.position)).toEqual([1, 2]);
    const full = await post(4);
    expect(full.status).toBe(503);
    expect(Number(full.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await full.json()) as { error: { code: string } }).error.code).toBe('SW_ERR_QUEUE_FULL');
    const [r1, r2] = await Promise.all([q1, q2]);
    expect(r1.status).toBe(504);
    expect(((await r1.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'SW_ERR_QUEUE_TIMEOUT', message: expect.stringContaining('queue.timeoutMs') });
    expect(r2.status).toBe(504);
    holder.abort();
    expect(await long).toBeInstanceOf(Error);
    const end = await d.waitFor((x) => x.models[0]!.outcomes?.cancelled === 1, 'long one cancelled');
    expect(end.models[0]!.outcomes).toMatchObject({ completed: 0, cancelled: 1, rejected: 3, failed: 0 });
  });

  it('rejects bad bodies with clear 4xx errors in the OpenAI shape and keeps serving', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 256 } }, config: { limits: { maxBodyBytes: 4096 } } });
    await d.waitFor(ready, 'ready');
    const cases: [string, string, number, string, RegExp][] = [
      ['/v1/completions', '{not json', 400, 'SW_ERR_BAD_REQUEST', /not valid JSON/],
      ['/v1/completions', '[1,2]', 400, 'SW_ERR_BAD_REQUEST', /expected a JSON object, got an array/],
      ['/v1/completions', '{"model":"tiny","prompt":42}', 400, 'SW_ERR_BAD_REQUEST', /"prompt" must be a string/],
      ['/v1/completions', '{"model":"tiny","prompt":"x","max_tokens":"ten"}', 400, 'SW_ERR_BAD_REQUEST', /"max_tokens" must be an integer from 1 to 256 \(the model's context per slot, models\.tiny\.ctxPerSlot\), got a string \("ten"\)/],
      ['/v1/completions', '{"model":7,"prompt":"x"}', 400, 'SW_ERR_BAD_REQUEST', /"model" must be a string, got the number 7/],
      ['/v1/chat/completions', '{"model":"tiny","messages":[]}', 400, 'SW_ERR_BAD_REQUEST', /"messages" must be a non-empty array/],
      ['/v1/chat/completions', '{"model":"tiny","messages":[{"content":"x"}]}', 400, 'SW_ERR_BAD_REQUEST', /messages\[0\]\.role must be a string/],
      ['/v1/completions', '{"model":"nope","prompt":"x"}', 404, 'SW_ERR_MODEL_NOT_FOUND', /configured models: tiny/],
      ['/v1/completions', JSON.stringify({ model: 'tiny', prompt: 'x'.repeat(5000) }), 413, 'SW_ERR_BODY_TOO_LARGE', /larger than 4 KiB/],
    ];
    for (const [path, body, status, code, message] of cases) {
      const res = await d.fetch(path, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      expect(res.status, body.slice(0, 60)).toBe(status);
      const json = (await res.json()) as { error: { code: string; type: string; message: string } };
      expect(json.error.code, body.slice(0, 60)).toBe(code);
      expect(json.error.type).toMatch(/_error$/);
      expect(json.error.message).toMatch(message);
    }
    // Far over the limit (an image in a text-sized limit): the 413 reaches a client still sending, not a connection reset.
    const huge = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'x'.repeat(3 * 2 ** 20) }), headers: { 'content-type': 'application/json' } });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: { code: string } }).error.code).toBe('SW_ERR_BODY_TOO_LARGE');
    const ok = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'x', max_tokens: 2 }) });
    expect(ok.status).toBe(200);
  });

  it('runs prompt jobs over the WebSocket: deltas in order, cancel, and re-attach after reconnect loses nothing', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 2, ctxPerSlot: 2048, size: 'slow' } } });
    await d.waitFor(ready, 'ready');
    const c1 = await d.client();
    const deltas: { seq: number; text: string }[] = [];
    c1.on('job.delta', (x) => deltas.push(x));
    const { jobId } = await c1.call('prompt.submit', { model: 'tiny', prompt: 'Hello', maxTokens: 400 });
    expect(jobId).toMatch(/^[0-9a-f-]{36}$/);
    // Disconnect mid-stream, reconnect, re-attach from the last seq seen.
    await waitUntil(() => deltas.length >= 10, 'some deltas', 10_000);
    c1.close();
    const seen = deltas.length;
    const c2 = await d.client();
    const more: { seq: number; text: string }[] = [];
    c2.on('job.delta', (x) => x.jobId === jobId && more.push(x));
    const end2 = new Promise<{ usage: { completionTokens: number }; finishReason: string }>((resolve) => c2.on('job.end', resolve));
    await c2.call('prompt.attach', { jobId, fromSeq: seen });
    const end = await end2;
    const all = [...deltas.slice(0, seen), ...more];
    expect(all.map((x) => x.seq)).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    expect(end.usage.completionTokens).toBe(400);
    expect(end.finishReason).toBe('length');

    // Cancel a running job: job.error with SW_ERR_CANCELLED and the slot is freed.
    const errors: { jobId: string; code: string; message: string }[] = [];
    c2.on('job.error', (e) => errors.push(e));
    const { jobId: j2 } = await c2.call('prompt.submit', { model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], maxTokens: 1800 });
    await waitUntil(async () => (await c2.call('jobs.list')).find((j) => j.jobId === j2)?.state === 'running', 'job running');
    expect((await c2.call('prompt.cancel', { jobId: j2 })).state).toBe('cancelled');
    await waitUntil(() => errors.some((e) => e.jobId === j2 && e.code === 'SW_ERR_CANCELLED'), 'job.error cancelled', 3000);
    // Its reason is the cancel, not a client that left.
    expect(errors.find((e) => e.jobId === j2)!.message).toBe(`job ${j2.slice(0, 8)} was cancelled (prompt.cancel)`);
    await waitUntil(async () => !(await llamaBusy(d)).some(Boolean), 'slot freed', 2000);
    const list = await c2.call('jobs.list');
    expect(list.find((j) => j.jobId === jobId)?.state).toBe('completed');
    expect(list.find((j) => j.jobId === j2)?.state).toBe('cancelled');
    await expect(c2.call('prompt.attach', { jobId: 'nope' })).rejects.toMatchObject({ code: 'SW_ERR_JOB_NOT_FOUND' });
    await expect(c2.call('prompt.submit', { model: 'tiny' })).rejects.toMatchObject({ code: 'SW_ERR_BAD_REQUEST' });
  });
});
