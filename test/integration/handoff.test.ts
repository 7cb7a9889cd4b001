// Slot handoff (queue.handoffTokens, daemon/scheduler/handoff.ts): a queued stream is sent to
// llama-server for a slot shortly before that slot frees, counted as queued until it does.
// The stand-in (test/fixtures/fake-llama-server.mjs) is used where its `--fake-times` stamps are the only
// way to see when a request reached the upstream and when it started there; the real llama-server
// shows that it defers such a request and answers both correctly.
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SlotStatus, Snapshot } from '../../shared/protocol';
import { FAST_SUPERVISOR, instanceAuth, startTestDaemon, waitUntil, type TestDaemon } from '../helpers/daemon';
import { parseServerTiming } from '../../daemon/api/stage-timing';

const STAND_IN = resolve(__dirname, '../fixtures/fake-llama-server.mjs');

const ready = (s: Snapshot) => s.models.length > 0 && s.models.every((m) => m.instances.length > 0 && m.instances.every((i) => i.state === 'ready' && i.slots.length > 0));
const slot0 = (s: Snapshot): SlotStatus => s.models[0]!.instances[0]!.slots[0]!;

interface Streamed {
  status: number;
  requestId: string | null;
  waitMs: number;
  text: string;
  events: Record<string, unknown>[];
  /** Epoch ms the client saw the end. */
  endedAt: number;
  /** The daemon's Server-Timing stages, ms. */
  stages: Record<string, number>;
}

/** A streamed completion through the daemon, read to its end (rejects if the client aborts it). */
async function stream(d: TestDaemon, body: Record<string, unknown>, signal?: AbortSignal): Promise<Streamed> {
  const res = await d.fetch('/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', stream: true, ...body }),
    signal,
  });
  const raw = await res.text();
  const events = raw
    .split('\n\n')
    .filter((e) => e.startsWith('data: ') && e !== 'data: [DONE]')
    .map((e) => JSON.parse(e.slice(6)) as Record<string, unknown>);
  const text = events.map((e) => (e.choices as { text?: string }[] | undefined)?.[0]?.text ?? '').join('');
  return { status: res.status, requestId: res.headers.get('x-slotwise-request-id'), waitMs: Number(res.headers.get('x-slotwise-queue-wait-ms')), text, events, endedAt: Date.now(), stages: parseServerTiming(res.headers.get('server-timing') ?? undefined) };
}

function fakeDaemon(config: Record<string, unknown> = {}): Promise<TestDaemon> {
  return startTestDaemon({
    models: { m: { slots: 1, ctxPerSlot: 128, args: ['--fake-token-ms', '30', '--fake-times'] } },
    config: { llamaServer: STAND_IN, supervisor: FAST_SUPERVISOR, queue: { handoffTokens: 5 }, ...config },
  });
}

async function upstreamMetric(s: Snapshot, name: string): Promise<number> {
  const inst = s.models[0]!.instances[0]!;
  const text = await (await fetch(`http://127.0.0.1:${inst.port!}/metrics`, { headers: instanceAuth(inst.pid!) })).text();
  const m = new RegExp(`^llamacpp:${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

describe('slot handoff (stand-in: --fake-times stamps when a request reached it and started)', () => {
  it('1 slot, 2 streams: the second reaches the upstream before the first ends, shows queued as the slot\'s next, then busy', async () => {
    const d = await fakeDaemon();
    await d.waitFor(ready, 'ready');
    const first = stream(d, { prompt: 'one', max_tokens: 12 });
    await d.waitFor((s) => slot0(s).busy, 'the first stream leased');
    const second = stream(d, { prompt: 'two', max_tokens: 12 });
    // Until the first ends, the second is queued (waiting 1) and named as the slot's next.
    const s = await d.waitFor((x) => slot0(x).next !== undefined, 'the slot handed off');
    expect(s.models[0]!.queue.waiting).toBe(1);
    expect(slot0(s).next).toBe(s.models[0]!.queue.entries![0]!.id);
    expect(slot0(s).requestId).not.toBe(slot0(s).next);
    expect(await upstreamMetric(s, 'requests_deferred')).toBe(1); // it is in the upstream, waiting for the slot
    const [a, b] = await Promise.all([first, second]);
    expect([a.status, b.status]).toEqual([200, 200]);
    const times = (r: Streamed) => r.events.at(-1)!.fake_times as { received: number; started: number; ended: number };
    expect(times(b).received).toBeLessThan(times(a).ended);
    expect(times(b).started).toBeGreaterThanOrEqual(times(a).ended);
    expect(b.requestId).toBe(slot0(s).next);
    // Its queue wait runs to the first one's release, not to the handoff.
    expect(b.waitMs).toBeGreaterThanOrEqual(times(a).ended - times(b).received - 50);
    // Server-Timing puts the stand-in's own start (its head comes with the first token, 30 ms after the
    // slot freed) in `upstream`, not in `queue`: the queue stage ends at the release.
    expect(b.stages.upstream).toBeGreaterThanOrEqual(20);
    expect(b.stages.queue).toBeLessThan(b.waitMs + 15);
    const end = await d.waitFor((x) => x.models[0]!.queue.waiting === 0 && !slot0(x).busy, 'drained');
    expect(slot0(end).next).toBeUndefined();
    expect(end.models[0]!.requests).toBe(2);
    expect(end.models[0]!.outcomes).toEqual({ completed: 2, cancelled: 0, failed: 0, rejected: 0 });
    expect(await (await d.fetch('/metrics')).text()).toMatch(/^slotwise_slot_handoffs_total\{model="m"\} 1$/m);
  });

  it('a successor whose client leaves while handed off frees nothing and leaves no task behind; the next one takes its place', async () => {
    const d = await fakeDaemon({ queue: { handoffTokens: 8 } });
    await d.waitFor(ready, 'ready');
    const first = stream(d, { prompt: 'one', max_tokens: 20 });
    await d.waitFor((s) => slot0(s).busy, 'the first stream leased');
    const leaver = new AbortController();
    const second = stream(d, { prompt: 'two', max_tokens: 5 }, leaver.signal).catch((e: Error) => e);
    await d.waitFor((s) => s.models[0]!.queue.waiting === 1, 'the second queued');
    const third = stream(d, { prompt: 'three', max_tokens: 5 });
    const s = await d.waitFor((x) => x.models[0]!.queue.waiting === 2 && slot0(x).next !== undefined, 'the slot handed to the second');
    const secondId = s.models[0]!.queue.entries![0]!.id;
    expect(slot0(s).next).toBe(secondId);
    leaver.abort();
    expect(await second).toBeInstanceOf(Error);
    // The slot is still the first one's; its next is now the third; the upstream holds only the third.
    const after = await d.waitFor((x) => x.models[0]!.queue.waiting === 1 && slot0(x).next !== undefined && slot0(x).next !== secondId, 'the third handed the slot');
    expect(slot0(after).requestId).toBe(slot0(s).requestId);
    await waitUntil(async () => (await upstreamMetric(after, 'requests_deferred')) === 1, 'the stand-in dropped the second');
    const [a, c] = await Promise.all([first, third]);
    expect(a.text.length).toBeGreaterThan(0);
    expect(a.events.at(-1)!.usage).toMatchObject({ completion_tokens: 20 }); // the first ran to its end
    expect(c.events.at(-1)!.usage).toMatchObject({ completion_tokens: 5 });
    const end = await d.waitFor((x) => x.models[0]!.queue.waiting === 0 && !slot0(x).busy, 'drained');
    expect(await upstreamMetric(end, 'requests_deferred')).toBe(0);
    expect(await upstreamMetric(end, 'requests_processing')).toBe(0);
    expect(end.models[0]!.requests).toBe(3);
    expect(end.models[0]!.outcomes).toEqual({ completed: 2, cancelled: 1, failed: 0, rejected: 0 });
  });

  it('the instance dies while a successor is handed off: the running stream fails, the successor is retried on the restarted instance', async () => {
    const d = await fakeDaemon({ queue: { handoffTokens: 15 } });
    const s0 = await d.waitFor(ready, 'ready');
    const first = stream(d, { prompt: 'one', max_tokens: 20 });
    await d.waitFor((s) => slot0(s).busy, 'the first stream leased');
    const second = stream(d, { prompt: 'two', max_tokens: 5 });
    await d.waitFor((s) => slot0(s).next !== undefined, 'the slot handed off');
    process.kill(s0.models[0]!.instances[0]!.pid!, 'SIGKILL');
    const [a, b] = await Promise.all([first, second]);
    expect(a.status).toBe(200); // it had started: the failure is an in-band error event
    expect(JSON.stringify(a.events.at(-1))).toContain('SW_ERR_');
    expect(b.status).toBe(200);
    expect(b.events.at(-1)!.usage).toMatchObject({ completion_tokens: 5 });
    const end = await d.waitFor((x) => ready(x) && x.models[0]!.queue.waiting === 0 && !slot0(x).busy, 'drained');
    expect(end.models[0]!.instances[0]!.restarts).toBe(1);
    expect(end.models[0]!.outcomes).toEqual({ completed: 1, cancelled: 0, failed: 1, rejected: 0 });
  });
});

describe('slot handoff (real llama-server)', () => {
  it('1 slot, 2 streams with max_tokens: llama-server defers the second until the first ended, and both answer as they do alone', async () => {
    // A long handoff window so the deferred stretch is long enough to observe on a shared CPU.
    const d = await startTestDaemon({ models: { m: { slots: 1, ctxPerSlot: 1024, size: 'slow' } }, config: { queue: { handoffTokens: 150 } } });
    const s0 = await d.waitFor(ready, 'ready');
    const inst = s0.models[0]!.instances[0]!;
    const body = (prompt: string) => ({ prompt, max_tokens: 200, temperature: 0, cache_prompt: false });
    const alone = [await stream(d, body('Once upon a time')), await stream(d, body('The lighthouse keeper'))];
    expect(alone.map((r) => r.status)).toEqual([200, 200]);

    const first = stream(d, body('Once upon a time'));
    await d.waitFor((s) => slot0(s).busy, 'the first stream leased');
    const second = stream(d, body('The lighthouse keeper'));
    let done = false;
    void Promise.all([first, second]).finally(() => (done = true));
    // llama-server's own view, polled until both ended: one task at a time, the first to its end, then the second.
    const samples: { processing: boolean; task?: number; decoded?: number }[] = [];
    let sawNext = false;
    let deferred = NaN;
    while (!done) {
      const polled = (await (await fetch(`http://127.0.0.1:${inst.port!}/slots`, { headers: instanceAuth(inst.pid!) })).json()) as {
        is_processing: boolean;
        id_task?: number;
        next_token?: { n_decoded: number }[];
      }[];
      expect(polled).toHaveLength(1);
      samples.push({ processing: polled[0]!.is_processing, task: polled[0]!.id_task, decoded: polled[0]!.next_token?.[0]?.n_decoded });
      if (!sawNext) {
        const s = await d.status();
        if (slot0(s).next !== undefined) {
          sawNext = true;
          expect(s.models[0]!.queue.waiting).toBe(1);
          // The daemon names the slot's next as it sends the request: llama-server's HTTP thread may not
          // have queued it yet when its /metrics answers (another thread), so read until it has, or the first ended.
          deferred = await upstreamMetric(s, 'requests_deferred');
          for (const t0 = Date.now(); deferred !== 1 && !done && Date.now() - t0 < 2_000; ) deferred = await upstreamMetric(s, 'requests_deferred');
        }
      }
    }
    const [a, b] = await Promise.all([first, second]);
    expect(sawNext).toBe(true);
    expect(deferred).toBe(1); // the second was inside llama-server, deferred on the busy slot
    expect(a.text).toBe(alone[0]!.text);
    expect(b.text).toBe(alone[1]!.text);
    expect(a.events.at(-1)!.usage).toMatchObject({ completion_tokens: 200 });
    expect(b.events.at(-1)!.usage).toMatchObject({ completion_tokens: 200 });
    // The task ids llama-server ran, in order: the first's, then the second's, never back.
    const running = samples.filter((x) => x.processing && x.task !== undefined);
    const order = running.map((x) => x.task!).filter((t, i, all) => i === 0 || all[i - 1] !== t);
    expect(order.length).toBeLessThanOrEqual(2);
    expect(new Set(order).size).toBe(order.length);
    const end = await d.waitFor((x) => x.models[0]!.queue.waiting === 0 && !slot0(x).busy, 'drained');
    expect(end.models[0]!.requests).toBe(4);
    expect(end.models[0]!.outcomes).toEqual({ completed: 4, cancelled: 0, failed: 0, rejected: 0 });
  });
});
