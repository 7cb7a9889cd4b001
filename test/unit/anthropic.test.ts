// The Anthropic Messages API over llama-server's OpenAI chat route: the request conversion (as
// llama-server's own server_chat_convert_anthropic_to_oai, plus the slot the daemon pins), the event
// stream spoken back, the whole message, and errors in Anthropic's shape.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { chatOfMessages, holdsAnthropicImage, steadyBillingHeader } from '../../daemon/api/anthropic-request';
import { parseLifting, settleLifted, spliceMedia } from '../../daemon/server/lifted-strings';
import { AnthropicStream, anthropicErrorBody, anthropicMessage } from '../../daemon/api/anthropic-answer';
import { SseSplitter } from '../../daemon/api/sse';

const WHERE = 'POST /v1/messages';
const noImageCheck = (): void => {};
const convert = (body: unknown, maxTokens = 8192) => chatOfMessages(body, WHERE, maxTokens, noImageCheck);

describe('chatOfMessages', () => {
  it('converts a conversation with system blocks, thinking, tool use and tool results as llama-server does', () => {
    const { stream, chat } = convert({
      model: 'm',
      max_tokens: 100,
      stream: true,
      system: [
        { type: 'text', text: 'You are terse. ' },
        { type: 'image', source: { type: 'base64', data: 'x' } },
        { type: 'text', text: 'Answer in English.' },
      ],
      messages: [
        { role: 'user', content: 'What is the weather?' },
        {
          role: 'assistant',
          content: [
            { type: 'thinking', thinking: 'I should call the tool.' },
            { type: 'text', text: 'Let me check.' },
            { type: 'tool_use', id: 'tu_1', name: 'weather', input: { city: 'Oslo' } },
          ],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: 'tu_1', content: [{ type: 'text', text: 'Rain, ' }, { type: 'text', text: '4 °C' }] },
            { type: 'text', text: 'Thanks!' },
          ],
        },
      ],
      tools: [{ name: 'weather', description: 'Weather by city', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
      tool_choice: { type: 'any' },
      stop_sequences: ['END'],
      temperature: 0.2,
      top_k: 20,
      thinking: { type: 'enabled', budget_tokens: 512 },
      metadata: { user_id: 'u' },
    });
    expect(stream).toBe(true);
    expect(chat).toEqual({
      messages: [
        { role: 'system', content: 'You are terse. Answer in English.' },
        { role: 'user', content: 'What is the weather?' },
        {
          role: 'assistant',
          content: [{ type: 'text', text: 'Let me check.' }],
          tool_calls: [{ id: 'tu_1', type: 'function', function: { name: 'weather', arguments: '{"city":"Oslo"}' } }],
          reasoning_content: 'I should call the tool.',
        },
        // The user's text first, then the tool's result: the order llama-server's conversion gives.
        { role: 'user', content: [{ type: 'text', text: 'Thanks!' }] },
        { role: 'tool', tool_call_id: 'tu_1', content: 'Rain, 4 °C' },
      ],
      max_tokens: 100,
      tools: [{ type: 'function', function: { name: 'weather', description: 'Weather by city', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }],
      tool_choice: 'required',
      stop: ['END'],
      temperature: 0.2,
      top_k: 20,
      thinking_budget_tokens: 512,
    });
  });

  it('asks for one tool call at most when the client disables parallel tool use', () => {
    const ask = { model: 'm', max_tokens: 8, messages: [{ role: 'user', content: 'Hi' }], tools: [{ name: 'f', input_schema: { type: 'object' } }] };
    expect(convert({ ...ask, tool_choice: { type: 'auto', disable_parallel_tool_use: true } }).chat).toMatchObject({ tool_choice: 'auto', parallel_tool_calls: false });
    expect(convert({ ...ask, tool_choice: { type: 'any' } }).chat).not.toHaveProperty('parallel_tool_calls');
  });

  it('makes base64 images data: URLs, and keeps images in a tool result as parts', () => {
    const seen: string[] = [];
    const { chat } = chatOfMessages(
      {
        messages: [
          { role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBOR' } }, { type: 'text', text: 'What is this?' }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/gif', data: 'R0lG' } }] }] },
        ],
      },
      WHERE,
      512,
      (_part, where) => seen.push(where),
    );
    expect(chat.messages).toEqual([
      { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBOR' } }, { type: 'text', text: 'What is this?' }] },
      { role: 'tool', tool_call_id: 't', content: [{ type: 'image_url', image_url: { url: 'data:image/gif;base64,R0lG' } }] },
    ]);
    // Each image is checked where the client put it.
    expect(seen).toEqual([`${WHERE}: messages[0].content[0]`, `${WHERE}: messages[1].content[0].content[0]`]);
  });

  it('takes 4096 tokens when max_tokens is missing, and clamps a larger ask to the slot', () => {
    expect(convert({ messages: [{ role: 'user', content: 'hi' }] }).chat.max_tokens).toBe(4096);
    expect(convert({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 32_000 }, 2048).chat.max_tokens).toBe(2048);
    expect(convert({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 10 }, 2048).chat.max_tokens).toBe(10);
  });

  it("steadies Claude Code's per-request billing stamp, as llama-server does, and leaves other prompts alone", () => {
    const stamped = (cch: string) => `x-anthropic-billing-header: cc_version=2.1.101.e51; cc_entrypoint=cli; cch=${cch};You are Claude Code.`;
    expect(steadyBillingHeader(stamped('a5145'))).toBe(stamped('fffff'));
    expect(steadyBillingHeader(stamped('0b9c2'))).toBe(steadyBillingHeader(stamped('a5145')));
    expect(steadyBillingHeader('You are helpful. cch=a5145;')).toBe('You are helpful. cch=a5145;');
    const { chat } = convert({ system: stamped('12345'), messages: [{ role: 'user', content: 'hi' }] });
    expect((chat.messages as { content: string }[])[0]!.content).toBe(stamped('fffff'));
  });

  it('names what is wrong with a bad request', () => {
    const bad = (body: unknown) => () => convert(body);
    expect(bad('hi')).toThrow(/POST \/v1\/messages: expected a JSON object/);
    expect(bad({ messages: [] })).toThrow(/"messages" must be a non-empty array/);
    expect(bad({ messages: [{ role: 'system', content: 'x' }] })).toThrow(/messages\[0\]\.role must be "user" or "assistant" \(the system prompt goes in "system"\)/);
    expect(bad({ messages: [{ role: 'user', content: 5 }] })).toThrow(/messages\[0\]\.content must be a string or an array of content blocks/);
    expect(bad({ messages: [{ role: 'user', content: [{ type: 'text', text: 1 }] }] })).toThrow(/messages\[0\]\.content\[0\]\.text must be a string/);
    expect(bad({ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file' } }] }] })).toThrow(/content\[0\]\.source\.type must be "base64" or "url"/);
    expect(bad({ messages: [{ role: 'user', content: 'x' }], max_tokens: 0 })).toThrow(/"max_tokens" must be an integer >= 1/);
    expect(bad({ messages: [{ role: 'user', content: 'x' }], stream: 'yes' })).toThrow(/"stream" must be true or false/);
    expect(bad({ messages: [{ role: 'user', content: 'x' }], system: 3 })).toThrow(/"system" must be a string or an array/);
  });
});

/** OpenAI chat stream chunks as llama-server writes them (`data: {json}` events). */
function sse(chunks: unknown[]): string {
  return chunks.map((c) => `data: ${typeof c === 'string' ? c : JSON.stringify(c)}\n\n`).join('');
}

const delta = (d: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ id: 'chatcmpl-abc', choices: [{ index: 0, finish_reason: null, delta: d }], ...extra });

/** Anthropic events as [event name, data] pairs, checking that each event's name is its data's type. */
function events(text: string): [string, Record<string, unknown>][] {
  const out: [string, Record<string, unknown>][] = [];
  for (const block of text.split('\n\n').filter(Boolean)) {
    const [eventLine, dataLine] = block.split('\n');
    const name = eventLine!.replace(/^event: /, '');
    const data = JSON.parse(dataLine!.replace(/^data: /, '')) as Record<string, unknown>;
    expect(data.type).toBe(name);
    out.push([name, data]);
  }
  return out;
}

const TIMINGS = { cache_n: 30, prompt_n: 12, prompt_ms: 5 };
const UPSTREAM = sse([
  delta({ role: 'assistant', content: null }),
  delta({ reasoning_content: 'Let me think' }, { timings: TIMINGS }),
  delta({ reasoning_content: '.' }, { timings: TIMINGS }),
  delta({ content: 'Calling' }, { timings: TIMINGS }),
  delta({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'weather', arguments: '{"ci' } }] }),
  delta({ tool_calls: [{ index: 0, function: { arguments: 'ty":"Oslo"}' } }] }),
  delta({ tool_calls: [{ index: 1, id: 'call_2', type: 'function', function: { name: 'time', arguments: '{}' } }] }),
  { id: 'chatcmpl-abc', choices: [{ index: 0, finish_reason: 'tool_calls', delta: {} }] },
  { id: 'chatcmpl-abc', choices: [], usage: { completion_tokens: 9, prompt_tokens: 42, prompt_tokens_details: { cached_tokens: 30 } }, timings: TIMINGS },
  '[DONE]',
]);

describe('an image lifted out of the body unparsed', () => {
  it("goes upstream in the chat request byte for byte as a whole parse's conversion writes it, as sent plain or with every / as \\/", async () => {
    const image = (data: string) => ({ type: 'image', source: { type: 'base64', media_type: 'image/png', data } });
    const [photo, screenshot, argument] = [randomBytes(120_000).toString('base64'), randomBytes(90_000).toString('base64'), randomBytes(70_000).toString('base64')];
    const body = {
      model: 'm',
      max_tokens: 8,
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'What is this?' }, image(photo)] },
        // An image block in a tool's input: written into the call's `arguments` string, escaped twice.
        { role: 'assistant', content: [{ type: 'tool_use', id: 'tu', name: 'shot', input: { like: image(argument) } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'tu', content: [{ type: 'text', text: 'the screen' }, image(screenshot)] }] },
      ],
    };
    const whole = JSON.stringify(convert(body).chat);
    for (const text of [JSON.stringify(body), JSON.stringify(body).replaceAll('/', '\\/')]) {
      const { value, literals } = await parseLifting(Buffer.from(text));
      expect(literals?.size).toBe(3);
      const media = await settleLifted(value, literals!, holdsAnthropicImage);
      const chat = JSON.stringify(convert(value).chat);
      expect(chat.length).toBeLessThan(2_000); // stand-ins, not the images
      expect(chat).not.toContain(photo.slice(40, 80));
      const wire = spliceMedia(chat, media);
      expect(Buffer.concat(wire.map((x) => (typeof x === 'string' ? Buffer.from(x) : x))).toString()).toBe(whole);
    }
  });
});

describe('AnthropicStream', () => {
  it('speaks thinking, text and each tool call as blocks in order, each stopped before the next', () => {
    const s = new AnthropicStream('m');
    const out = events(s.push(Buffer.from(UPSTREAM)) + s.end());
    expect(out.map(([name, d]) => `${name}${d.index !== undefined ? `:${String(d.index)}` : ''}`)).toEqual([
      'message_start',
      'content_block_start:0',
      'content_block_delta:0',
      'content_block_delta:0',
      'content_block_stop:0',
      'content_block_start:1',
      'content_block_delta:1',
      'content_block_stop:1',
      'content_block_start:2',
      'content_block_delta:2',
      'content_block_delta:2',
      'content_block_stop:2',
      'content_block_start:3',
      'content_block_delta:3',
      'content_block_stop:3',
      'message_delta',
      'message_stop',
    ]);
    const data = out.map(([, d]) => d);
    expect(data[0]).toEqual({
      type: 'message_start',
      message: { id: 'msg_abc', type: 'message', role: 'assistant', content: [], model: 'm', stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, cache_read_input_tokens: 30, output_tokens: 0 } },
    });
    expect(data[1]!.content_block).toEqual({ type: 'thinking', thinking: '' });
    expect(data[2]!.delta).toEqual({ type: 'thinking_delta', thinking: 'Let me think' });
    expect(data[5]!.content_block).toEqual({ type: 'text', text: '' });
    expect(data[6]!.delta).toEqual({ type: 'text_delta', text: 'Calling' });
    expect(data[8]!.content_block).toEqual({ type: 'tool_use', id: 'call_1', name: 'weather', input: {} });
    expect([data[9]!.delta, data[10]!.delta]).toEqual([
      { type: 'input_json_delta', partial_json: '{"ci' },
      { type: 'input_json_delta', partial_json: 'ty":"Oslo"}' },
    ]);
    expect(data[12]!.content_block).toEqual({ type: 'tool_use', id: 'call_2', name: 'time', input: {} });
    expect(data[15]).toEqual({ type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { input_tokens: 12, cache_read_input_tokens: 30, output_tokens: 9 } });
  });

  it('gives the same events whichever way the bytes are cut', () => {
    const whole = new AnthropicStream('m');
    const expected = whole.push(Buffer.from(UPSTREAM)) + whole.end();
    const bytes = Buffer.from(UPSTREAM);
    for (const size of [1, 2, 7, 64, 333]) {
      const s = new AnthropicStream('m');
      let got = '';
      for (let i = 0; i < bytes.length; i += size) got += s.push(bytes.subarray(i, i + size));
      expect(got + s.end()).toBe(expected);
    }
  });

  it('maps finish reasons and ends a stream cut before [DONE] with what it had', () => {
    const s = new AnthropicStream('m');
    const text = s.push(Buffer.from(sse([delta({ content: 'Hi' }), { id: 'x', choices: [{ index: 0, finish_reason: 'length', delta: {} }] }]))) + s.end();
    const out = events(text);
    expect(out.at(-2)![1].delta).toEqual({ stop_reason: 'max_tokens', stop_sequence: null });
    expect(out.at(-1)![0]).toBe('message_stop');
    expect(s.end()).toBe(''); // once
  });

  it("names the client's stop sequence that ended the answer, from llama-server's __verbose.stopping_word", () => {
    const final = (word: string) => ({ id: 'x', choices: [{ index: 0, finish_reason: 'stop', delta: {} }], __verbose: { stopping_word: word } });
    const stopOfStream = (chunks: unknown[], stops: string[]) => {
      const s = new AnthropicStream('m', stops);
      return events(s.push(Buffer.from(sse(chunks))) + s.end()).at(-2)![1].delta;
    };
    expect(stopOfStream([delta({ content: 'Hi' }), final('END')], ['STOP', 'END'])).toEqual({ stop_reason: 'stop_sequence', stop_sequence: 'END' });
    // A stop word the client did not send (a chat template's) ends the turn; so does a plain end of turn.
    expect(stopOfStream([delta({ content: 'Hi' }), final('<|im_end|>')], ['END'])).toEqual({ stop_reason: 'end_turn', stop_sequence: null });
    expect(stopOfStream([delta({ content: 'Hi' }), final('')], ['END'])).toEqual({ stop_reason: 'end_turn', stop_sequence: null });
    // The word stays a stop sequence however the final chunk is cut from the rest.
    const s = new AnthropicStream('m', ['END']);
    const bytes = Buffer.from(sse([delta({ content: 'Hi' }), final('END')]));
    let text = '';
    for (let i = 0; i < bytes.length; i += 7) text += s.push(bytes.subarray(i, i + 7));
    expect(events(text + s.end()).at(-2)![1].delta).toEqual({ stop_reason: 'stop_sequence', stop_sequence: 'END' });
  });

  it("turns llama-server's error event into Anthropic's and sends nothing after it", () => {
    const s = new AnthropicStream('m');
    const text = s.push(Buffer.from(sse([delta({ content: 'Hi' }), { error: { code: 500, message: 'the slot failed', type: 'server_error' } }]))) + s.end();
    const out = events(text);
    expect(out.at(-1)).toEqual(['error', { type: 'error', error: { type: 'api_error', message: 'the slot failed' } }]);
    expect(out.some(([name]) => name === 'message_stop')).toBe(false);
  });
});

describe('anthropicMessage', () => {
  it('is the whole message of an assembled chat answer', () => {
    const msg = anthropicMessage(
      {
        id: 'chatcmpl-xyz',
        choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'Done.', reasoning_content: 'Hmm', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }, { id: 'd', type: 'function', function: { name: 'g', arguments: '{broken' } }] } }],
        usage: { completion_tokens: 5, prompt_tokens: 20 },
        timings: { cache_n: 16, prompt_n: 4 },
      },
      'm',
    );
    expect(msg).toEqual({
      id: 'msg_xyz',
      type: 'message',
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: 'Hmm', signature: '' },
        { type: 'text', text: 'Done.' },
        { type: 'tool_use', id: 'c', name: 'f', input: { a: 1 } },
        { type: 'tool_use', id: 'd', name: 'g', input: {} },
      ],
      model: 'm',
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage: { input_tokens: 4, cache_read_input_tokens: 16, output_tokens: 5 },
    });
  });

  it('names the stop sequence that matched, only when the client sent it', () => {
    const chat = { id: 'a', choices: [{ finish_reason: 'stop', message: { content: 'x' } }], __verbose: { stopping_word: 'END' } };
    expect(anthropicMessage(chat, 'm', ['END'])).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: 'END' });
    expect(anthropicMessage(chat, 'm', [])).toMatchObject({ stop_reason: 'end_turn', stop_sequence: null });
    // A tool call cut at a stop sequence stays a tool call, and names the sequence.
    const call = { ...chat, choices: [{ finish_reason: 'tool_calls', message: { content: '', tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] } }] };
    expect(anthropicMessage(call, 'm', ['END'])).toMatchObject({ stop_reason: 'tool_use', stop_sequence: 'END' });
    expect(anthropicMessage(call, 'm', [])).toMatchObject({ stop_reason: 'tool_use', stop_sequence: null });
  });

  it('reads the prompt counts from usage when there are no timings', () => {
    const msg = anthropicMessage({ id: 'a', choices: [{ finish_reason: 'length', message: { content: 'x' } }], usage: { completion_tokens: 1, prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 6 } } }, 'm');
    expect(msg.usage).toEqual({ input_tokens: 4, cache_read_input_tokens: 6, output_tokens: 1 });
    expect(msg.stop_reason).toBe('max_tokens');
  });
});

describe('errors in Anthropic shape', () => {
  it("keeps the message and Slotwise's code, with Anthropic's error type for the status", () => {
    const body = { error: { code: 'SW_ERR_MODEL_NOT_FOUND' as const, type: 'not_found', message: 'unknown model "x"' } };
    expect(anthropicErrorBody(404, body)).toEqual({ type: 'error', error: { code: 'SW_ERR_MODEL_NOT_FOUND', type: 'not_found_error', message: 'unknown model "x"' } });
    expect((anthropicErrorBody(429, body).error as { type: string }).type).toBe('rate_limit_error');
    expect((anthropicErrorBody(503, body).error as { type: string }).type).toBe('overloaded_error');
    expect((anthropicErrorBody(400, body).error as { type: string }).type).toBe('invalid_request_error');
    expect((anthropicErrorBody(500, body).error as { type: string }).type).toBe('api_error');
  });

  it('splits the SSE it writes back into the same events (a client reading it with an SSE parser)', () => {
    const s = new AnthropicStream('m');
    const text = s.push(Buffer.from(UPSTREAM));
    const data = new SseSplitter().push(text).map((d) => (JSON.parse(d) as { type: string }).type);
    expect(data[0]).toBe('message_start');
    expect(data.at(-1)).toBe('message_stop');
  });
});
