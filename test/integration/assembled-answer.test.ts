// A non-streamed generation request goes to llama-server as a stream and its answer is assembled
// (daemon/api/assembled-answer.ts), so that a client that leaves cancels it. Real llama-server is the
// oracle: the same request sent to it directly, without `stream`, must give the same answer. And a
// non-streamed request whose client left, or that a newer request of its session superseded, must stop
// in llama-server, not run on for nobody (which it did: its /slots showed the slot busy for seconds).
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instanceAuth, startTestDaemon, type TestDaemon } from '../helpers/daemon';
import type { Snapshot } from '../../shared/protocol';

let d: TestDaemon;
let snap: Snapshot;

beforeAll(async () => {
  d = await startTestDaemon({
    stopInAfterAll: true,
    models: {
      plain: { slots: 1, ctxPerSlot: 512 },
      coder: { slots: 1, ctxPerSlot: 1024, variant: 'fim' },
      slow: { size: 'slow', slots: 1, ctxPerSlot: 4096 },
    },
  });
  snap = await d.waitFor((s) => s.models.every((m) => m.instances.length > 0 && m.instances.every((i) => i.state === 'ready')), 'all models ready', 120_000);
}, 180_000);
afterAll(() => d?.stop());

/** The model's one llama-server, reached directly with its key. */
function direct(model: string): { url: string; headers: Record<string, string> } {
  const inst = snap.models.find((m) => m.name === model)!.instances[0]!;
  return { url: `http://127.0.0.1:${inst.port}`, headers: { 'content-type': 'application/json', ...instanceAuth(inst.pid!) } };
}

async function viaDaemon(path: string, body: Record<string, unknown>): Promise<{ status: number; type: string | null; json: Record<string, unknown> }> {
  const res = await d.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, type: res.headers.get('content-type'), json: (await res.json()) as Record<string, unknown> };
}

async function viaDirect(path: string, body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> {
  const { url, headers } = direct(body.model as string);
  const res = await fetch(url + path, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Drops what differs between any two calls: ids, clocks, timings, the slot, cache reuse. */
function comparable(answer: Record<string, unknown>): Record<string, unknown> {
  const { id: _id, created: _c, created_at: _ca, completed_at: _co, timings: _t, id_slot: _s, tokens_cached: _tc, ...rest } = answer;
  const out = structuredClone(rest) as Record<string, unknown> & { usage?: { prompt_tokens_details?: unknown; input_tokens_details?: unknown }; generation_settings?: Record<string, unknown>; output?: { id?: unknown }[] };
  delete out.usage?.prompt_tokens_details;
  delete out.usage?.input_tokens_details;
  for (const item of out.output ?? []) delete item.id; // a Responses answer's items have ids of their own
  if (out.generation_settings) delete out.generation_settings.id_slot;
  return out;
}

// cache_prompt off: both runs then compute the same prompt the same way (a cached prefix changes the
// shapes of the math, and a random-weight model's greedy pick can flip on the last bits).
const CASES: [string, string, Record<string, unknown>][] = [
  ['a text completion', '/v1/completions', { model: 'plain', prompt: 'Once upon a time', max_tokens: 12, temperature: 0, cache_prompt: false }],
  ['a text completion that ends at a stop word', '/v1/completions', { model: 'plain', prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop: ['e'], cache_prompt: false }],
  ['a text completion of prompt tokens', '/v1/completions', { model: 'plain', prompt: [1, 2, 3, 4], max_tokens: 6, temperature: 0, cache_prompt: false }],
  // Several prompts go as sent (not assembled); OpenAI's token-array form was refused before.
  ['several prompts, as token arrays and a string', '/v1/completions', { model: 'plain', prompt: [[1, 2, 3], [4, 5], 'Once'], max_tokens: 5, temperature: 0, cache_prompt: false }],
  ['a chat completion', '/v1/chat/completions', { model: 'plain', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello there' }], max_tokens: 10, temperature: 0, cache_prompt: false }],
  ['a chat completion with a stop word', '/v1/chat/completions', { model: 'plain', messages: [{ role: 'user', content: 'Count' }], max_tokens: 40, temperature: 0, stop: ['a'], cache_prompt: false }],
  ['a response (the Responses API)', '/v1/responses', { model: 'plain', instructions: 'Be brief.', input: [{ role: 'user', content: [{ type: 'input_text', text: 'Hello there' }] }], max_output_tokens: 10, temperature: 0, cache_prompt: false }],
  ['an infill', '/infill', { model: 'coder', input_prefix: 'def add(a, b):\n    ', input_suffix: '\n\nprint(add(1, 2))\n', n_predict: 10, temperature: 0, cache_prompt: false }],
  ['an infill with its tokens', '/infill', { model: 'coder', input_prefix: 'x = ', input_suffix: '\n', n_predict: 6, temperature: 0, return_tokens: true, cache_prompt: false }],
];

describe('a non-streamed answer assembled from the stream', () => {
  for (const [what, path, body] of CASES) {
    it(`is llama-server's own non-streamed answer: ${what}`, async () => {
      const mine = await viaDaemon(path, body);
      const theirs = await viaDirect(path, body);
      expect(mine.status).toBe(200);
      expect(theirs.status).toBe(200);
      expect(mine.type).toBe('application/json; charset=utf-8');
      expect(comparable(mine.json)).toEqual(comparable(theirs.json));
      // Kept where llama-server's own answer has them (a Responses answer has none; its stream's last event does, for the daemon's cache accounting).
      if (theirs.json.timings !== undefined) expect(mine.json.timings).toBeDefined();
    });
  }

  it("passes llama-server's error answer on as before: a 400 for an invalid request", async () => {
    const body = { model: 'plain', prompt: 'x', max_tokens: 4, grammar: 'root ::= (' };
    const mine = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify(body) });
    expect(mine.status).toBe(400);
    // Which request and slot it was, as on every answer the daemon relays.
    expect(mine.headers.get('x-slotwise-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(mine.headers.get('x-slotwise-slot')).toBe('plain#1/0');
    const err = (await mine.json()) as { error: { code: string; message: string } };
    expect(err.error.code).toBe('SW_ERR_UPSTREAM_REJECTED');
  });

  it('leaves requests for token probabilities as they came (their streamed answer differs), and they still answer', async () => {
    const mine = await viaDaemon('/v1/completions', { model: 'plain', prompt: 'Once upon a time', max_tokens: 4, temperature: 0, logprobs: 2, cache_prompt: false });
    expect(mine.status).toBe(200);
    const choice = (mine.json.choices as { logprobs: { content: unknown[] } | null }[])[0]!;
    expect(choice.logprobs?.content).toHaveLength(4);
  });
});

/** The one slot of `model` as llama-server itself reports it. */
async function llamaSlot(model: string): Promise<{ is_processing: boolean; n_decoded: number }> {
  const { url, headers } = direct(model);
  const slots = (await (await fetch(`${url}/slots`, { headers })).json()) as { is_processing: boolean; next_token?: { n_decoded: number }[] }[];
  return { is_processing: slots[0]!.is_processing, n_decoded: slots[0]!.next_token?.[0]?.n_decoded ?? 0 };
}

describe('a non-streamed request that ends early stops in llama-server', () => {
  const LEFT: [string, string, Record<string, unknown>][] = [
    ['a text completion', '/v1/completions', { model: 'slow', prompt: 'Tell a long story.', max_tokens: 3000, ignore_eos: true }],
    ['a Responses API request', '/v1/responses', { model: 'slow', input: 'Tell a long story.', max_output_tokens: 3000, ignore_eos: true }],
  ];
  for (const [what, path, body] of LEFT) {
    it(`when its client leaves: ${what}`, async () => {
      const ac = new AbortController();
      const req = d
        .fetch(path, { method: 'POST', signal: ac.signal, body: JSON.stringify(body) })
        .then((r) => r.text())
        .catch((err: Error) => err.name);
      // Under way in llama-server, then the client goes.
      for (let i = 0; i < 100 && !(await llamaSlot('slow')).is_processing; i++) await sleep(50);
      expect((await llamaSlot('slow')).is_processing).toBe(true);
      ac.abort();
      expect(await req).toBe('AbortError');
      // llama-server cancels it at its next token; before, it decoded on for several seconds.
      let slot = await llamaSlot('slow');
      for (let i = 0; i < 40 && slot.is_processing; i++) slot = (await sleep(50), await llamaSlot('slow'));
      expect(slot.is_processing).toBe(false);
      const s = await d.status();
      expect(s.models.find((m) => m.name === 'slow')!.instances[0]!.slots.some((x) => x.busy)).toBe(false);
    });
  }

  it('when a newer request of its session supersedes it (the editor\'s inline completions)', async () => {
    const session = { 'X-Slotwise-Session': 'file:///src/a.ts' };
    const older = d.fetch('/v1/completions', { method: 'POST', headers: session, body: JSON.stringify({ model: 'slow', prompt: 'Tell a long story.', max_tokens: 3000, ignore_eos: true }) });
    for (let i = 0; i < 100 && !(await llamaSlot('slow')).is_processing; i++) await sleep(50);
    const newer = d.fetch('/v1/completions', { method: 'POST', headers: session, body: JSON.stringify({ model: 'slow', prompt: 'Hi', max_tokens: 4 }) });
    expect((await older).status).toBe(409);
    // A moment later the slot holds the newer request (4 tokens at most) or nothing, not the older one decoding on.
    await sleep(150);
    const slot = await llamaSlot('slow');
    expect(slot.is_processing ? slot.n_decoded : 0).toBeLessThanOrEqual(4);
    const res = await newer;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens).toBe(4);
  });
});
