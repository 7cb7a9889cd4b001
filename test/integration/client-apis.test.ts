// Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens) and OpenAI's Responses API
// (/v1/responses) through the daemon, against the real llama-server. llama-server's own /v1/messages is
// the oracle for the daemon's conversion (the same prompt, by token count) and its event stream (the
// same events). Both routes must run in the slot the daemon leased: llama-server's own /v1/messages
// drops `id_slot`, which is why the daemon converts that API itself.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../shared/protocol';
import { CLI, instanceAuth, startTestDaemon, waitUntil, type TestDaemon } from '../helpers/daemon';
import { SseSplitter } from '../../daemon/api/sse';

let d: TestDaemon;
let snap: Snapshot;

beforeAll(async () => {
  d = await startTestDaemon({
    stopInAfterAll: true,
    models: { m: { size: 'long', slots: 2, ctxPerSlot: 4096 }, lazy: { load: 'on-demand', slots: 1, ctxPerSlot: 2048 }, tools: { variant: 'tools', slots: 1, ctxPerSlot: 2048 } },
  });
  const ready = (s: Snapshot, name: string) => s.models.some((m) => m.name === name && m.instances.length > 0 && m.instances.every((i) => i.state === 'ready'));
  snap = await d.waitFor((s) => ready(s, 'm') && ready(s, 'tools'), 'models ready', 120_000);
}, 180_000);
afterAll(() => d?.stop());

/** A model's one instance in a snapshot (model m's by default). */
const instanceOfM = (s: Snapshot, model = 'm') => s.models.find((m) => m.name === model)!.instances[0]!;

/** A model's llama-server, reached directly with its key. */
function direct(model = 'm'): { url: string; headers: Record<string, string> } {
  const inst = instanceOfM(snap, model);
  return { url: `http://127.0.0.1:${inst.port}`, headers: { 'content-type': 'application/json', ...instanceAuth(inst.pid!) } };
}

const post = (path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  d.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body), signal });

const postDirect = (path: string, body: unknown, model = 'm') => fetch(direct(model).url + path, { method: 'POST', headers: direct(model).headers, body: JSON.stringify(body) });

/** Anthropic events of a whole SSE body, as [event, data]. */
function anthropicEvents(text: string): { type: string; [k: string]: unknown }[] {
  return new SseSplitter().push(text).map((data) => JSON.parse(data) as { type: string });
}

/** Consecutive repeats collapsed: the shape of a stream whatever its token count. */
const shape = (types: string[]) => types.filter((t, i) => t !== types[i - 1]);

/** The slots llama-server itself reports processing, by id. */
async function processing(): Promise<number[]> {
  const res = await fetch(`${direct().url}/slots`, { headers: direct().headers });
  const slots = (await res.json()) as { id: number; is_processing: boolean }[];
  return slots.filter((s) => s.is_processing).map((s) => s.id);
}

/** Starts a long stream; resolves at its headers with the slot the daemon leased and its request id. */
async function longStream(path: string, body: unknown): Promise<{ slot: number; requestId: string; abort: AbortController; done: Promise<string> }> {
  const abort = new AbortController();
  const res = await post(path, body, {}, abort.signal);
  expect(res.status).toBe(200);
  const slot = Number(/^m#1\/(\d+)$/.exec(res.headers.get('x-slotwise-slot') ?? '')?.[1]);
  const done = res.text().catch(() => '');
  return { slot, requestId: res.headers.get('x-slotwise-request-id')!, abort, done };
}

async function untilIdle(): Promise<void> {
  await waitUntil(async () => (await processing()).length === 0, 'llama-server idle', 20_000);
  await d.waitFor((s) => instanceOfM(s).slots.every((x) => !x.busy), 'status idle', 20_000);
}

const CONVERSATION = {
  model: 'm',
  max_tokens: 12,
  system: [{ type: 'text', text: 'x-anthropic-billing-header: cc_version=1; cch=a5145;You are terse.' }, { type: 'text', text: ' Reply in English.' }],
  messages: [
    { role: 'user', content: 'What is the weather in Oslo?' },
    { role: 'assistant', content: [{ type: 'text', text: 'Let me look.' }, { type: 'tool_use', id: 'tu_1', name: 'weather', input: { city: 'Oslo' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: 'Rain, 4 C' }, { type: 'text', text: 'And tomorrow?' }] },
  ],
  tools: [{ name: 'weather', description: 'Weather by city', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
};

describe("Anthropic's Messages API", () => {
  it("counts a conversation's prompt as llama-server's own /v1/messages does, and streams with that count", async () => {
    const mine = await post('/v1/messages/count_tokens', CONVERSATION);
    const theirs = await postDirect('/v1/messages/count_tokens', CONVERSATION);
    expect(mine.status).toBe(200);
    expect(theirs.status).toBe(200);
    const counted = ((await mine.json()) as { input_tokens: number }).input_tokens;
    expect(counted).toBeGreaterThan(40);
    expect(counted).toBe(((await theirs.json()) as { input_tokens: number }).input_tokens);

    const res = await post('/v1/messages', { ...CONVERSATION, stream: true, temperature: 0 });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const start = anthropicEvents(await res.text())[0]!;
    const usage = (start.message as { usage: { input_tokens: number; cache_read_input_tokens: number } }).usage;
    expect(usage.input_tokens + usage.cache_read_input_tokens).toBe(counted);
  });

  it('counts for a model loaded on demand by loading it, in the same shape', async () => {
    const lazy = await post('/v1/messages/count_tokens', { ...CONVERSATION, model: 'lazy' });
    expect(lazy.status).toBe(200);
    const theirs = (await (await postDirect('/v1/messages/count_tokens', CONVERSATION)).json()) as { input_tokens: number };
    expect(await lazy.json()).toEqual({ input_tokens: theirs.input_tokens }); // the same tokenizer and template
    expect((await d.status()).models.find((m) => m.name === 'lazy')!.instances.some((i) => i.state === 'ready')).toBe(true);
  });

  it("streams the events llama-server's own /v1/messages sends, and the same text streamed as whole", async () => {
    const ask = { model: 'm', max_tokens: 12, temperature: 0, messages: [{ role: 'user', content: 'Tell me a story.' }] };
    const mine = anthropicEvents(await (await post('/v1/messages', { ...ask, stream: true, cache_prompt: false })).text());
    const theirs = anthropicEvents(await (await postDirect('/v1/messages', { ...ask, stream: true })).text());
    expect(shape(mine.map((e) => e.type))).toEqual(shape(theirs.map((e) => e.type)));
    expect(shape(mine.map((e) => e.type))).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    const last = mine.find((e) => e.type === 'message_delta')!;
    expect(last.delta).toEqual({ stop_reason: 'max_tokens', stop_sequence: null });
    expect((last.usage as { output_tokens: number }).output_tokens).toBe(12);
    const streamed = mine.filter((e) => e.type === 'content_block_delta').map((e) => (e.delta as { text: string }).text).join('');

    const whole = await post('/v1/messages', { ...ask, cache_prompt: false });
    expect(whole.status).toBe(200);
    const msg = (await whole.json()) as { type: string; role: string; content: { type: string; text: string }[]; stop_reason: string; model: string; usage: { output_tokens: number } };
    expect(msg).toMatchObject({ type: 'message', role: 'assistant', stop_reason: 'max_tokens', model: 'm', usage: { output_tokens: 12 } });
    expect(msg.content).toEqual([{ type: 'text', text: streamed }]);
  });

  it("ends at the client's stop sequence and names it, streamed and whole, with the text llama-server's own route stops at", async () => {
    const ask = { model: 'm', max_tokens: 24, temperature: 0, cache_prompt: false, messages: [{ role: 'user', content: 'Tell me a long story.' }] };
    const free = (await (await post('/v1/messages', ask)).json()) as { content: { text: string }[] };
    const full = free.content[0]!.text;
    // A stop sequence the model will write: three characters from the middle of what it wrote freely.
    const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 3);
    expect(stop.trim().length).toBeGreaterThan(0);
    const before = full.slice(0, full.indexOf(stop));
    const stopped = { ...ask, stop_sequences: ['no such words', stop] };

    const whole = (await (await post('/v1/messages', stopped)).json()) as { content: { text: string }[]; stop_reason: string; stop_sequence: string | null };
    expect({ text: whole.content[0]?.text ?? '', stop_reason: whole.stop_reason, stop_sequence: whole.stop_sequence }).toEqual({ text: before, stop_reason: 'stop_sequence', stop_sequence: stop });

    const streamed = anthropicEvents(await (await post('/v1/messages', { ...stopped, stream: true })).text());
    expect(streamed.find((e) => e.type === 'message_delta')!.delta).toEqual({ stop_reason: 'stop_sequence', stop_sequence: stop });
    expect(streamed.filter((e) => e.type === 'content_block_delta').map((e) => (e.delta as { text: string }).text).join('')).toBe(before);

    // llama-server's own route stops at the same place and names the same sequence (with stop_reason end_turn).
    const theirs = (await (await postDirect('/v1/messages', stopped)).json()) as { content: { text: string }[]; stop_sequence: string | null };
    expect({ text: theirs.content[0]?.text ?? '', stop_sequence: theirs.stop_sequence }).toEqual({ text: before, stop_sequence: stop });

    // Without a stop sequence that matched, the turn ends as before: no stop_sequence.
    const unmatched = (await (await post('/v1/messages', { ...ask, stop_sequences: ['no such words'] })).json()) as { stop_reason: string; stop_sequence: string | null };
    expect(unmatched).toMatchObject({ stop_reason: 'max_tokens', stop_sequence: null });

    // Asking for the stop word does not cost a whole answer's cancellation: a client that leaves frees the slot.
    await untilIdle();
    const abort = new AbortController();
    const gone = post('/v1/messages', { ...stopped, max_tokens: 4000, stop_sequences: ['no such words'] }, {}, abort.signal).catch(() => undefined);
    await waitUntil(async () => (await processing()).length > 0, 'llama-server processing', 10_000);
    abort.abort();
    await gone;
    await waitUntil(async () => (await processing()).length === 0, 'llama-server to cancel the whole answer', 3_000);
  });

  it('runs in the slot the daemon leased, shown busy in status with its request id, and frees it when the client leaves', async () => {
    await untilIdle();
    for (let run = 0; run < 3; run++) {
      const s = await longStream('/v1/messages', { model: 'm', max_tokens: 3000, stream: true, messages: [{ role: 'user', content: `Story number ${run}` }] });
      expect([0, 1]).toContain(s.slot);
      await waitUntil(async () => (await processing()).length > 0, 'llama-server processing', 10_000);
      expect(await processing()).toEqual([s.slot]);
      const rows = instanceOfM(await d.status()).slots.filter((x) => x.busy);
      expect(rows.map((r) => [r.id, r.requestId, Boolean(r.foreign)])).toEqual([[s.slot, s.requestId, false]]);
      s.abort.abort();
      await s.done;
      await untilIdle();
    }
  });

  it('keeps each conversation in the slot that holds its history, which llama-server then reuses (usage.cache_read_input_tokens)', async () => {
    await untilIdle();
    const system = (who: string) => `You are ${who}. ${'Answer every question about lighthouses with care and in plain words. '.repeat(12)}`;
    const turn = async (who: string, messages: unknown[]) => {
      const res = await post('/v1/messages', { model: 'm', max_tokens: 8, temperature: 0, system: system(who), messages });
      expect(res.status).toBe(200);
      const msg = (await res.json()) as { content: { text: string }[]; usage: { input_tokens: number; cache_read_input_tokens: number } };
      return { slot: res.headers.get('x-slotwise-slot'), text: msg.content[0]?.text ?? '', usage: msg.usage };
    };
    const first = { a: [{ role: 'user', content: 'Why are lighthouses tall?' }], b: [{ role: 'user', content: 'Who keeps a lighthouse?' }] };
    const a1 = await turn('Ada', first.a);
    const b1 = await turn('Bo', first.b);
    expect(a1.slot).not.toBe(b1.slot); // two conversations, two slots
    // Bo first: the least recently used slot is Ada's, where a pick without affinity sends him (checked: it fails with affinity off).
    const b2 = await turn('Bo', [...first.b, { role: 'assistant', content: b1.text }, { role: 'user', content: 'And where?' }]);
    const a2 = await turn('Ada', [...first.a, { role: 'assistant', content: a1.text }, { role: 'user', content: 'And how bright?' }]);
    expect([a2.slot, b2.slot]).toEqual([a1.slot, b1.slot]);
    // At least the system prompt and first message were reused in place, not computed again.
    for (const [one, two] of [[a1, a2], [b1, b2]] as const) {
      expect(two.usage.cache_read_input_tokens).toBeGreaterThanOrEqual(one.usage.input_tokens + one.usage.cache_read_input_tokens - 8);
      expect(two.usage.input_tokens).toBeLessThan(two.usage.cache_read_input_tokens);
    }
  });

  it("accepts the token as x-api-key, as Anthropic's clients send it", async () => {
    const body = JSON.stringify({ model: 'm', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] });
    const ok = await fetch(`${d.url}/v1/messages`, { method: 'POST', headers: { 'x-api-key': d.token, 'content-type': 'application/json' }, body });
    expect(ok.status).toBe(200);
    const wrong = await fetch(`${d.url}/v1/messages`, { method: 'POST', headers: { 'x-api-key': 'nope', 'content-type': 'application/json' }, body });
    expect(wrong.status).toBe(401);
    // In Anthropic's shape too: the path's error shape holds from the token check on.
    expect(await wrong.json()).toEqual({ type: 'error', error: { code: 'SW_ERR_UNAUTHORIZED', type: 'authentication_error', message: expect.stringContaining('x-api-key') } });
    const getIt = await fetch(`${d.url}/v1/messages`, { headers: { 'x-api-key': d.token } });
    expect(getIt.status).toBe(405);
    expect(((await getIt.json()) as { type: string; error: { type: string } })).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
  });

  it("answers bad requests in Anthropic's error shape, naming what was wrong", async () => {
    const unknown = await post('/v1/messages', { model: 'claude-sonnet', max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ type: 'error', error: { code: 'SW_ERR_MODEL_NOT_FOUND', type: 'not_found_error', message: expect.stringContaining('configured models: m') } });
    const malformed = await post('/v1/messages', '{"model": "m", "messages": [');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { type: string; error: { type: string } })).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    const image = await post('/v1/messages', { model: 'm', max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBOR' } }] }] });
    expect(image.status).toBe(400);
    expect(((await image.json()) as { error: { message: string } }).error.message).toMatch(/messages\[0\]\.content\[0\] is an image, but model "m" has no projector/);
    // llama-server's own refusal (a prompt longer than the slot's context), streamed or not, in the same shape.
    for (const stream of [false, true]) {
      const long = await post('/v1/messages', { model: 'lazy', max_tokens: 5, stream, messages: [{ role: 'user', content: 'word '.repeat(3000) }] });
      expect(long.status).toBe(400);
      const body = (await long.json()) as { type: string; error: { type: string; code: string; message: string } };
      expect(body).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', code: 'SW_ERR_UPSTREAM_REJECTED' } });
      expect(body.error.message).toMatch(/context/);
    }
  });
});

describe('tool calls, on a model whose chat template has them', () => {
  // The tiny `tools` model (gguf/tool-template.ts: Qwen3-Coder's XML calls). Begun with `<tool_call>`
  // (Anthropic's prefill: a last assistant message), a random model writes a real call: llama-server's
  // grammar keeps it to the tool's schema, an enum and a boolean here, so its arguments are valid.
  const WEATHER = { name: 'weather', description: 'Weather by city', input_schema: { type: 'object', properties: { days: { type: 'integer', enum: [1, 2, 3] }, metric: { type: 'boolean' } }, required: ['days', 'metric'] } };
  const CALL = {
    model: 'tools',
    max_tokens: 80,
    temperature: 0,
    stop_sequences: ['</tool_call>'], // else the grammar's trailing whitespace runs on to max_tokens
    system: 'Be brief.',
    tools: [WEATHER],
    tool_choice: { type: 'any', disable_parallel_tool_use: true },
    messages: [{ role: 'user', content: 'Weather in Oslo?' }, { role: 'assistant', content: '<tool_call>\n<function=weather>\n' }],
  };
  type ToolUse = { type: string; id: string; name: string; input: { days: number; metric: boolean } };

  it("answers a call as one tool_use block, whole and streamed, with the input llama-server's own /v1/messages gives", async () => {
    const res = await post('/v1/messages', CALL);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-slotwise-slot')).toBe('tools#1/0');
    const whole = (await res.json()) as { content: ToolUse[]; stop_reason: string; stop_sequence: string | null };
    expect(whole).toMatchObject({ stop_reason: 'tool_use', stop_sequence: '</tool_call>' });
    expect(whole.content.map((b) => [b.type, b.name])).toEqual([['tool_use', 'weather']]);
    const call = whole.content[0]!;
    expect(call.id).toMatch(/^\S+$/);
    expect([1, 2, 3]).toContain(call.input.days);
    expect(typeof call.input.metric).toBe('boolean');

    const theirs = (await (await postDirect('/v1/messages', CALL, 'tools')).json()) as { content: ToolUse[]; stop_reason: string };
    expect(theirs.content.map(({ type, name, input }) => ({ type, name, input }))).toEqual([{ type: 'tool_use', name: 'weather', input: call.input }]);
    expect(theirs.stop_reason).toBe('tool_use');

    const events = anthropicEvents(await (await post('/v1/messages', { ...CALL, stream: true })).text());
    expect(shape(events.map((e) => e.type))).toEqual(['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop']);
    const start = events.find((e) => e.type === 'content_block_start')!.content_block as ToolUse;
    expect(start).toMatchObject({ type: 'tool_use', name: 'weather', input: {} });
    expect(start.id).toMatch(/^\S+$/);
    const deltas = events.filter((e) => e.type === 'content_block_delta').map((e) => e.delta as { type: string; partial_json: string });
    expect(new Set(deltas.map((x) => x.type))).toEqual(new Set(['input_json_delta']));
    expect(JSON.parse(deltas.map((x) => x.partial_json).join(''))).toEqual(call.input);
    expect(events.find((e) => e.type === 'message_delta')!.delta).toEqual({ stop_reason: 'tool_use', stop_sequence: '</tool_call>' });
  });

  it('gives the same call through OpenAI chat and Responses, each in the slot it leased', async () => {
    const tool = { type: 'function', function: { name: WEATHER.name, description: WEATHER.description, parameters: WEATHER.input_schema } };
    const chat = { model: 'tools', max_tokens: 80, temperature: 0, stop: ['</tool_call>'], tools: [tool], tool_choice: 'required', parallel_tool_calls: false, messages: CALL.messages };
    const res = await post('/v1/chat/completions', chat);
    expect(res.headers.get('x-slotwise-slot')).toBe('tools#1/0');
    const mine = (await res.json()) as { choices: { finish_reason: string; message: { tool_calls: { function: { name: string; arguments: string } }[] } }[] };
    const theirs = (await (await postDirect('/v1/chat/completions', chat, 'tools')).json()) as typeof mine;
    const calls = (a: typeof mine) => a.choices[0]!.message.tool_calls.map((c) => [c.function.name, JSON.parse(c.function.arguments) as unknown]);
    expect(calls(mine)).toEqual(calls(theirs));
    expect(calls(mine)).toHaveLength(1);
    expect(mine.choices[0]!.finish_reason).toBe('tool_calls');

    const responses = { model: 'tools', max_output_tokens: 80, temperature: 0, stop: ['</tool_call>'], tools: [{ type: 'function', ...tool.function }], tool_choice: 'required', parallel_tool_calls: false, input: [
      { role: 'user', content: 'Weather in Oslo?' },
      { role: 'assistant', content: '<tool_call>\n<function=weather>\n' }, // the easy form, which the daemon types for llama-server
    ] };
    const r = await post('/v1/responses', responses);
    expect(r.headers.get('x-slotwise-slot')).toBe('tools#1/0');
    const out = ((await r.json()) as { output: { type: string; name?: string; arguments?: string }[] }).output.filter((o) => o.type === 'function_call');
    expect(out.map((o) => [o.name, JSON.parse(o.arguments!) as unknown])).toEqual(calls(mine));
  });

  it('calls the function a tool_choice names, which llama-server alone would not force, in each API', async () => {
    // Two tools; the reply begun with `<tool_call>` only, so the grammar lets the model pick the function.
    const CLOCK = { name: 'clock', description: 'Time by zone', input_schema: { type: 'object', properties: { utc: { type: 'boolean' } }, required: ['utc'] } };
    const asChat = (t: typeof WEATHER | typeof CLOCK) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.input_schema } });
    const opening = '<tool_call>\n';
    const user = { role: 'user', content: 'Weather or time?' };
    const base = { model: 'tools', max_tokens: 80, temperature: 0, stop: ['</tool_call>'], parallel_tool_calls: false, messages: [user, { role: 'assistant', content: opening }] };
    const called = async (path: string, body: unknown, pick: (answer: never) => string | undefined): Promise<string | undefined> => {
      const res = await post(path, body);
      expect(res.status, await res.clone().text()).toBe(200);
      return pick((await res.json()) as never);
    };
    const chatName = (a: { choices: { message: { tool_calls?: { function: { name: string } }[] } }[] }) => a.choices[0]!.message.tool_calls?.[0]?.function.name;
    for (const name of ['weather', 'clock']) {
      expect(await called('/v1/chat/completions', { ...base, tools: [asChat(WEATHER), asChat(CLOCK)], tool_choice: { type: 'function', function: { name } } }, chatName)).toBe(name);
      const anthropic = { ...CALL, tools: [WEATHER, CLOCK], tool_choice: { type: 'tool', name }, messages: [user, { role: 'assistant', content: opening }] };
      expect(await called('/v1/messages', anthropic, (a: { content: { name?: string }[] }) => a.content[0]?.name)).toBe(name);
      const responses = {
        model: 'tools',
        max_output_tokens: 80,
        temperature: 0,
        stop: ['</tool_call>'],
        parallel_tool_calls: false,
        tools: [asChat(WEATHER).function, asChat(CLOCK).function].map((f) => ({ type: 'function', ...f })),
        tool_choice: { type: 'function', name },
        input: [user, { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: opening }] }],
      };
      expect(await called('/v1/responses', responses, (a: { output: { type: string; name?: string }[] }) => a.output.find((o) => o.type === 'function_call')?.name)).toBe(name);
    }
    // Counted as it will run: the tools narrowed to the named one (fewer tokens than both tools).
    const { stop: _stop, max_tokens: _max, ...countable } = base;
    const named = await post('/v1/chat/completions/input_tokens', { ...countable, tools: [asChat(WEATHER), asChat(CLOCK)], tool_choice: { type: 'function', function: { name: 'clock' } } });
    const narrowed = await postDirect('/v1/chat/completions/input_tokens', { ...countable, tools: [asChat(CLOCK)], tool_choice: 'required' }, 'tools');
    const both = await postDirect('/v1/chat/completions/input_tokens', { ...countable, tools: [asChat(WEATHER), asChat(CLOCK)], tool_choice: 'required' }, 'tools');
    const count = async (r: Response) => ((await r.json()) as { input_tokens: number }).input_tokens;
    const [namedN, narrowedN, bothN] = [await count(named), await count(narrowed), await count(both)];
    expect(namedN).toBe(narrowedN);
    expect(namedN).toBeLessThan(bothN);

    // A function the request does not offer: refused with what it offers.
    const unknown = await post('/v1/chat/completions', { ...base, tools: [asChat(WEATHER)], tool_choice: { type: 'function', function: { name: 'clock' } } });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: { message: string } }).error.message).toBe(
      'POST /v1/chat/completions: "tool_choice" names function "clock", which is not in "tools" (it has "weather") — add it to "tools" or name one of those',
    );
  });

  it("sends the call and its result back as the template renders them: the prompt llama-server's own route makes", async () => {
    const next = {
      ...CALL,
      stop_sequences: undefined,
      tool_choice: { type: 'auto' },
      max_tokens: 4,
      messages: [
        { role: 'user', content: 'Weather in Oslo?' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'tu_1', name: 'weather', input: { days: 2, metric: true } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu_1', content: 'Rain, 4 C' }] },
      ],
    };
    const mine = (await (await post('/v1/messages/count_tokens', next)).json()) as { input_tokens: number };
    const theirs = (await (await postDirect('/v1/messages/count_tokens', next, 'tools')).json()) as { input_tokens: number };
    expect(mine.input_tokens).toBeGreaterThan(100); // the tool list, the call and its result are all in the prompt
    expect(mine).toEqual(theirs);
    const res = await post('/v1/messages', next);
    expect(res.status).toBe(200);
    const msg = (await res.json()) as { usage: { input_tokens: number; cache_read_input_tokens: number; output_tokens: number } };
    expect(msg.usage.input_tokens + msg.usage.cache_read_input_tokens).toBe(mine.input_tokens);
    expect(msg.usage.output_tokens).toBe(4);
  });
});

describe("OpenAI's Responses API", () => {
  it('runs a streamed response in the slot the daemon leased, and relays its events whole', async () => {
    await untilIdle();
    const s = await longStream('/v1/responses', { model: 'm', input: 'Once upon a time', max_output_tokens: 3000, stream: true });
    await waitUntil(async () => (await processing()).length > 0, 'llama-server processing', 10_000);
    expect(await processing()).toEqual([s.slot]);
    await new Promise((r) => setTimeout(r, 500));
    const row = instanceOfM(await d.status()).slots.find((x) => x.busy)!;
    expect(row.requestId).toBe(s.requestId);
    s.abort.abort();
    await s.done;
    await untilIdle();

    const res = await post('/v1/responses', { model: 'm', input: 'Hello', max_output_tokens: 5, stream: true, temperature: 0 });
    const types = new SseSplitter().push(await res.text()).map((data) => (JSON.parse(data) as { type: string }).type);
    expect(types[0]).toBe('response.created');
    expect(types.filter((t) => t === 'response.output_text.delta').length).toBeGreaterThan(0);
    expect(types.at(-1)).toBe('response.completed');
  });

  it('counts input tokens as llama-server does, for chat and Responses requests, without a slot', async () => {
    const chat = { model: 'm', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is a lighthouse?' }] };
    const input = { model: 'm', instructions: 'Be brief.', input: 'What is a lighthouse?' };
    for (const [path, body] of [['/v1/chat/completions/input_tokens', chat], ['/v1/responses/input_tokens', input]] as const) {
      const mine = await post(path, body);
      expect(mine.status).toBe(200);
      expect(mine.headers.get('x-slotwise-slot')).toBeNull(); // not leased: counting takes no slot
      const counted = (await mine.json()) as { input_tokens: number };
      expect(counted.input_tokens).toBeGreaterThan(10);
      expect(counted).toEqual(await (await postDirect(path, body)).json());
    }
    // The same conversation counts the same whichever API it comes in.
    const chatCount = ((await (await post('/v1/chat/completions/input_tokens', chat)).json()) as { input_tokens: number }).input_tokens;
    const responsesCount = ((await (await post('/v1/responses/input_tokens', input)).json()) as { input_tokens: number }).input_tokens;
    expect(responsesCount).toBe(chatCount);
    const bad = await post('/v1/responses/input_tokens', { model: 'm' });
    expect(bad.status).toBe(400);
  });

  it("reads an earlier answer written in OpenAI's easy form, which llama-server alone refuses", async () => {
    const easy = { model: 'm', max_output_tokens: 4, input: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello! How can I help?' }, { role: 'user', content: 'Tell me more.' }] };
    const typed = { ...easy, input: easy.input.map((item) => (item.role === 'assistant' ? { type: 'message', ...item } : item)) };
    const refused = await postDirect('/v1/responses', easy);
    expect(refused.status).toBe(400);
    expect(await refused.text()).toContain("Cannot determine type of 'item'");

    const res = await post('/v1/responses', easy);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe('completed');
    // Read as the typed form: the same prompt, by llama-server's own count.
    const mine = (await (await post('/v1/responses/input_tokens', easy)).json()) as { input_tokens: number };
    expect(mine.input_tokens).toBeGreaterThan(10);
    expect(mine).toEqual(await (await postDirect('/v1/responses/input_tokens', typed)).json());
  });

  it('answers a whole response, and refuses what llama-server cannot do with a fix', async () => {
    const res = await post('/v1/responses', { model: 'm', instructions: 'Be brief.', input: [{ role: 'user', content: [{ type: 'input_text', text: 'Hi' }] }], max_output_tokens: 4 });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-slotwise-slot')).toMatch(/^m#1\/[01]$/);
    const body = (await res.json()) as { object: string; status: string; output: { content: { type: string; text: string }[] }[]; usage: { output_tokens: number } };
    expect(body).toMatchObject({ object: 'response', status: 'completed', usage: { output_tokens: 4 } });
    expect(body.output[0]!.content[0]!.type).toBe('output_text');

    const chained = await post('/v1/responses', { model: 'm', input: 'Hi', previous_response_id: 'resp_1' });
    expect(chained.status).toBe(400);
    expect(((await chained.json()) as { error: { message: string } }).error.message).toMatch(/"previous_response_id" is not supported .* send the whole conversation in "input"/);
    const noInput = await post('/v1/responses', { model: 'm' });
    expect(noInput.status).toBe(400);
    expect(((await noInput.json()) as { error: { message: string } }).error.message).toMatch(/"input" must be a string or an array of input items/);
    const tooMany = await post('/v1/responses', { model: 'm', input: 'Hi', max_output_tokens: 100_000 });
    expect(tooMany.status).toBe(400);
    expect(((await tooMany.json()) as { error: { message: string } }).error.message).toMatch(/"max_output_tokens" must be an integer from 1 to 4096/);
  });
});

describe('slotwise env', () => {
  // The printed lines, evaluated by a real shell, are all a client needs: here a request made with nothing but them.
  const ASK = `fetch(process.env.ANTHROPIC_BASE_URL + '/v1/messages', { method: 'POST', headers: { authorization: 'Bearer ' + process.env.ANTHROPIC_AUTH_TOKEN, 'content-type': 'application/json' }, body: JSON.stringify({ model: process.env.ANTHROPIC_DEFAULT_HAIKU_MODEL, max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] }) }).then(async (r) => console.log(r.status, (await r.json()).model))`;

  it('prints exports that point a client at the daemon with its token and a model', async () => {
    const script = `eval "$("${process.execPath}" "${CLI}" env anthropic --model m --state-dir "${d.stateDir}")" && "${process.execPath}" -e "${ASK.replace(/"/g, '\\"')}"`;
    const { stdout } = await promisify(execFile)('bash', ['-c', script]);
    expect(stdout.trim()).toBe('200 m');
  });

  it('asks which model when several generate text, naming them', async () => {
    const err = await promisify(execFile)(process.execPath, [CLI, 'env', 'openai', '--state-dir', d.stateDir]).catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(2);
    expect((err as { stderr: string }).stderr).toMatch(/several models generate text — choose one with --model: m, lazy, tools/);
  });
});
