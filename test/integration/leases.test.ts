// Slot leases against the real llama-server: every status read shows exactly the daemon's running
// requests in their slots (no poll lag), a client talking to llama-server directly shows as foreign
// and its slot is not handed out, and prompt-cache affinity keeps a conversation in its slot.
import { describe, expect, it } from 'vitest';
import type { SlotStatus, Snapshot } from '../../shared/protocol';
import { instanceAuth, startTestDaemon, type TestDaemon } from '../helpers/daemon';

const ready = (s: Snapshot) => s.models.length > 0 && s.models.every((m) => m.instances.length > 0 && m.instances.every((i) => i.state === 'ready' && i.slots.length > 0));

const busyRows = (s: Snapshot): SlotStatus[] => s.models.flatMap((m) => m.instances.flatMap((i) => i.slots.filter((x) => x.busy)));

interface Stream {
  requestId: string;
  slot: string;
  abort: AbortController;
  done: Promise<void>;
}

/** Starts a long streaming completion through the daemon; resolves once its headers (first byte) arrived. */
async function startStream(d: TestDaemon, prompt: string, maxTokens = 4000): Promise<Stream> {
  const abort = new AbortController();
  const res = await d.fetch('/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', prompt, max_tokens: maxTokens, stream: true }),
    signal: abort.signal,
  });
  expect(res.status).toBe(200);
  const done = (async () => {
    try {
      for await (const _ of res.body!) {
        // drain
      }
    } catch {
      // aborted by the test
    }
  })();
  return { requestId: res.headers.get('x-slotwise-request-id')!, slot: res.headers.get('x-slotwise-slot')!, abort, done };
}

describe('slot leases (real llama-server)', () => {
  it('shows exactly the running requests in their slots at every status read, and none after', async () => {
    const d = await startTestDaemon({ models: { m: { slots: 4, ctxPerSlot: 4096, size: 'long' } } });
    await d.waitFor(ready, 'ready');
    const http = await Promise.all([startStream(d, 'Once upon a time'), startStream(d, 'The lighthouse')]);
    const client = await d.client();
    const { jobId } = await client.call('prompt.submit', { model: 'm', prompt: 'In a village', maxTokens: 4000 });
    const want = new Set([...http.map((s) => s.requestId), jobId]);
    expect(want.size).toBe(3);
    expect(http.every((s) => /^m#1\/[0-3]$/.test(s.slot))).toBe(true);

    // Poll as fast as we can for ~2 s: never a lagging 0, never a stale id.
    const until = Date.now() + 2000;
    let reads = 0;
    while (Date.now() < until) {
      const rows = busyRows(await d.status());
      reads++;
      expect(rows.map((r) => r.requestId).sort()).toEqual([...want].sort());
      expect(rows.every((r) => !r.foreign && typeof r.since === 'number')).toBe(true);
      expect(rows.filter((r) => r.source === 'ws').map((r) => r.requestId)).toEqual([jobId]);
    }
    expect(reads).toBeGreaterThan(10);
    // Tokens as the daemon sees them stream: the job's deltas, the HTTP streams' SSE events.
    expect(busyRows(await d.status()).every((r) => (r.tokens ?? 0) > 0)).toBe(true);
    const metrics = await (await d.fetch('/metrics')).text();
    expect(metrics).toContain('slotwise_num_requests_running{model="m"} 3');
    expect(metrics).toContain('slotwise_num_requests_waiting{model="m"} 0');
    const kv = Number(/slotwise_kv_cache_usage_perc\{model="m"\} (\S+)/.exec(metrics)?.[1]);
    expect(kv).toBeGreaterThan(0); // from /slots: the three running prompts and their output hold cells
    expect(kv).toBeLessThan(1);

    for (const s of http) s.abort.abort();
    await client.call('prompt.cancel', { jobId });
    await Promise.all(http.map((s) => s.done));
    await d.waitFor((s) => busyRows(s).length === 0, 'every lease released', 3000);
    for (let i = 0; i < 5; i++) expect(busyRows(await d.status())).toEqual([]);
    expect((await d.status()).models[0]!.instances[0]!.inFlight).toBe(0);
  });

  it("shows a client talking to llama-server directly as foreign within two polls and never leases its slot", async () => {
    const d = await startTestDaemon({ models: { m: { slots: 2, ctxPerSlot: 4096, size: 'long' } } });
    const s0 = await d.waitFor(ready, 'ready');
    const port = s0.models[0]!.instances[0]!.port!;
    const foreignAbort = new AbortController();
    // Straight to llama-server's port (with the replica's key, as a process that read it could): the
    // daemon did not send it, so only /slots can reveal it.
    const foreign = await fetch(`http://127.0.0.1:${port}/completion`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...instanceAuth(s0.models[0]!.instances[0]!.pid!) },
      body: JSON.stringify({ prompt: 'Far away', n_predict: 4000, stream: true }),
      signal: foreignAbort.signal,
    });
    const foreignDone = (async () => {
      try {
        for await (const _ of foreign.body!) {
          // drain
        }
      } catch {
        // aborted by the test
      }
    })();
    const startedAt = Date.now();
    const seen = await d.waitFor((s) => busyRows(s).some((r) => r.foreign), 'a foreign slot', 3000);
    // Two polls at the fixed 250 ms cadence, plus the first token and the status read.
    expect(Date.now() - startedAt).toBeLessThan(1500);
    const foreignSlot = busyRows(seen).find((r) => r.foreign)!.id;
    expect(busyRows(seen).filter((r) => r.foreign).length).toBe(1);
    expect(seen.capacity.busySlots).toBe(1); // counted busy: leased + foreign

    // Two requests for one free slot: one runs there, the other waits rather than share the foreign slot.
    const first = await startStream(d, 'Ours one');
    expect(first.slot).toBe(`m#1/${1 - foreignSlot}`);
    const second = d.fetch('/v1/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', prompt: 'Ours two', max_tokens: 8 }),
    });
    const queued = await d.waitFor((s) => s.models[0]!.queue.waiting === 1, 'the second request queued', 3000);
    expect(busyRows(queued).map((r) => (r.foreign ? 'foreign' : r.requestId)).sort()).toEqual([first.requestId, 'foreign'].sort());

    // When the foreign client leaves, its slot is free again and the waiting request takes it.
    foreignAbort.abort();
    await foreignDone;
    const res = await second;
    expect(res.status).toBe(200);
    expect(res.headers.get('x-slotwise-slot')).toBe(`m#1/${foreignSlot}`);
    first.abort.abort();
    await first.done;
  });
});

describe('slot placement (real llama-server, 8 slots)', () => {
  // llama-server attends over the range of busy slots (daemon/scheduler/slot-pick.ts): a new request
  // fills a gap between busy slots, else goes beside them on the lower side, never to a free slot
  // further off.
  it('fills the gap between busy slots, then extends the busy range by one, on the lower side first', async () => {
    const d = await startTestDaemon({ models: { m: { slots: 8, ctxPerSlot: 4096, size: 'long' } } });
    await d.waitFor((s) => ready(s) && s.models[0]!.instances[0]!.slots.length === 8, 'ready with 8 slots');
    const slotOf = (x: Stream): number => Number(/^m#1\/(\d)$/.exec(x.slot)![1]);
    const idle = (slot: number) => d.waitFor((s) => s.models[0]!.instances[0]!.slots.find((r) => r.id === slot)?.busy === false, `slot ${slot} free again`, 10_000);
    const streams: Stream[] = [];
    for (let i = 0; i < 3; i++) streams.push(await startStream(d, `Story ${i}:`));
    expect(streams.map(slotOf)).toEqual([0, 1, 2]); // an idle replica's first slot, then beside it
    streams[1]!.abort.abort();
    await streams[1]!.done;
    await idle(1);
    const gap = await startStream(d, 'Story 3:');
    expect(slotOf(gap)).toBe(1); // the gap, not one of the 5 free slots beyond
    const beside = await startStream(d, 'Story 4:');
    expect(slotOf(beside)).toBe(3);
    streams[0]!.abort.abort();
    await streams[0]!.done;
    await idle(0);
    const lower = await startStream(d, 'Story 5:');
    expect(slotOf(lower)).toBe(0); // 0 and 4 are both beside {1,2,3}: the lower one
    for (const x of [streams[2]!, gap, beside, lower]) x.abort.abort();
    await Promise.all([streams[2]!, gap, beside, lower].map((x) => x.done));
  }, 60_000);
});

describe('the client\'s body text is forwarded with the lease\'s slot (real llama-server)', () => {
  it('runs a pretty-printed body with a trailing newline and its own id_slot in the leased slot', async () => {
    const d = await startTestDaemon({ models: { m: { slots: 2, ctxPerSlot: 4096, size: 'long' } } });
    const s0 = await d.waitFor(ready, 'ready');
    const inst = s0.models[0]!.instances[0]!;
    const abort = new AbortController();
    // The daemon forwards the client's text itself (no re-serialisation): the slot must still be
    // spliced in before the final brace, past the whitespace, and win over the client's id_slot.
    const body = `${JSON.stringify({ model: 'm', prompt: 'Once upon a time', max_tokens: 4000, stream: true, id_slot: 1 }, null, 2)}\n\n`;
    const res = await d.fetch('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: abort.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read(); // generating
    const slot = Number(/^m#1\/(\d)$/.exec(res.headers.get('x-slotwise-slot')!)![1]);
    expect(slot).toBe(0); // the first free slot, not the client's 1
    const polled = (await (await fetch(`http://127.0.0.1:${inst.port!}/slots`, { headers: instanceAuth(inst.pid!) })).json()) as { id: number; is_processing: boolean }[];
    expect(polled.filter((x) => x.is_processing).map((x) => x.id)).toEqual([slot]);
    abort.abort();
    await reader.cancel().catch(() => undefined);
  });
});

/** A conversation of three turns over a shared history of about 400 tokens. */
async function converse(d: TestDaemon): Promise<{ slots: string[]; cached: number[] }> {
  const history = Array.from({ length: 80 }, (_, i) => `Note ${i}: the keeper logs the tide and the wind.`).join(' ');
  const messages: { role: string; content: string }[] = [{ role: 'system', content: history }];
  const slots: string[] = [];
  const cached: number[] = [];
  for (const question of ['What did the keeper log?', 'And after that?', 'Summarize it.']) {
    messages.push({ role: 'user', content: question });
    const t = await turn(d, messages);
    slots.push(t.slot);
    cached.push(t.cached);
    messages.push({ role: 'assistant', content: t.reply });
  }
  return { slots, cached };
}

describe('prompt-cache affinity (real llama-server, 2 replicas × 2 slots)', () => {
  it('keeps a 3-turn conversation in one slot and reports the cached prompt tokens', async () => {
    const d = await startTestDaemon({ models: { m: { slots: 2, ctxPerSlot: 2048, replicas: 2 } } });
    await d.waitFor(ready, 'ready');
    const { slots, cached } = await converse(d);
    expect(new Set(slots).size).toBe(1);
    expect(slots[0]).toMatch(/^m#[12]\/[01]$/);
    expect(cached[1]).toBeGreaterThan(300);
    expect(cached[2]).toBeGreaterThan(300);
    const m = (await d.status()).models[0]!;
    expect(m.promptTokens!.cached).toBeGreaterThanOrEqual(cached[1]! + cached[2]!);
    expect(m.promptTokens!.processed).toBeGreaterThan(300); // the first turn computed the history
    expect(m.promptCacheHitRatio).toBeCloseTo(m.promptTokens!.cached / (m.promptTokens!.cached + m.promptTokens!.processed), 6);
    const metrics = await (await d.fetch('/metrics')).text();
    expect(metrics).toContain(`slotwise_prompt_tokens_total{model="m",kind="cached"} ${m.promptTokens!.cached}`);
    expect(metrics).toMatch(/slotwise_prompt_cache_hit_ratio\{model="m"\} 0\.\d+/);
    expect(metrics).toContain('slotwise_num_requests_running{model="m"} 0');
  });

  it('with affinity off, the conversation does not stick to one slot', async () => {
    const d = await startTestDaemon({ models: { m: { slots: 2, ctxPerSlot: 2048, replicas: 2, affinity: false } } });
    await d.waitFor(ready, 'ready');
    const { slots } = await converse(d);
    expect(new Set(slots).size).toBeGreaterThan(1);
  });
});

/** One chat turn through the daemon: the slot it ran in and llama-server's cached prompt tokens. */
async function turn(d: TestDaemon, messages: { role: string; content: string }[]): Promise<{ slot: string; cached: number; reply: string }> {
  const res = await d.fetch('/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages, max_tokens: 8, temperature: 0 }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { choices: { message: { content: string } }[]; timings?: { cache_n?: number } };
  return { slot: res.headers.get('x-slotwise-slot')!, cached: body.timings?.cache_n ?? -1, reply: body.choices[0]!.message.content };
}

const history = (topic: string): { role: string; content: string }[] => [
  { role: 'system', content: Array.from({ length: 80 }, (_, i) => `${topic} ${i}: the keeper logs the tide and the wind.`).join(' ') },
  { role: 'user', content: `Tell me about the ${topic}.` },
];

describe('prompt-cache affinity across slots (real llama-server, 2 replicas × 1 slot)', () => {
  it("sends a conversation back to the replica whose host cache holds it, into another conversation's slot, and llama-server restores its prefix", async () => {
    const d = await startTestDaemon({ models: { m: { slots: 1, ctxPerSlot: 2048, replicas: 2 } } });
    await d.waitFor(ready, 'ready');
    const a = history('Lighthouse');
    const first = await turn(d, a);
    expect(first.cached).toBeLessThan(50); // nothing to reuse yet
    const b = await turn(d, history('Harbour')); // the other replica's slot
    expect(b.slot).not.toBe(first.slot);
    const c = await turn(d, history('Orchard')); // evicts conversation A from its slot into that replica's host cache
    expect(c.slot).toBe(first.slot);
    expect(c.cached).toBeLessThan(50);

    // Both slots are free and hold other conversations. A's prefix is only in the host RAM of the replica
    // it ran on: the daemon sends it there, and llama-server saves C and restores A into the slot.
    const again = await turn(d, [...a, { role: 'assistant', content: first.reply }, { role: 'user', content: 'And after that?' }]);
    expect(again.slot).toBe(first.slot);
    expect(again.cached).toBeGreaterThan(300);
  });
});
