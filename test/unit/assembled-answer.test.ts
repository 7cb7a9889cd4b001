// The non-streamed answer built from llama-server's stream (daemon/api/assembled-answer.ts), on event
// sequences shaped as llama-server writes them (tools/server/server-task.cpp); the integration test
// compares real answers with llama-server's own.
import { describe, expect, it } from 'vitest';
import { payloadOf, payloadText } from '../../daemon/api/payload';
import { AnswerAssembler, answerFormat, asStream, StreamErrorEvent, streamable } from '../../daemon/api/assembled-answer';

const sse = (...events: unknown[]): Buffer => Buffer.from(events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join(''));

describe('which requests are assembled', () => {
  it('generation routes only', () => {
    expect(['/v1/completions', '/v1/chat/completions', '/infill', '/v1/embeddings', '/v1/rerank'].map(answerFormat)).toEqual(['completion', 'chat', 'native', undefined, undefined]);
  });

  it('not those whose streamed answer differs: probabilities, response_fields, verbose, several prompts or completions', () => {
    expect(streamable('completion', { prompt: 'x' })).toBe(true);
    expect(streamable('completion', { prompt: [1, 2, 3] })).toBe(true);
    expect(streamable('completion', { prompt: ['a', 'b'] })).toBe(false);
    expect(streamable('completion', { prompt: 'x', logprobs: 2 })).toBe(false);
    expect(streamable('completion', { prompt: 'x', logprobs: null })).toBe(true);
    expect(streamable('chat', { messages: [], logprobs: true, top_logprobs: 2 })).toBe(false);
    expect(streamable('chat', { messages: [], logprobs: false })).toBe(true);
    expect(streamable('native', { n_probs: 3 })).toBe(false);
    expect(streamable('native', { n_probs: 0 })).toBe(true);
    expect(streamable('native', { response_fields: ['content'] })).toBe(false);
    expect(streamable('chat', { messages: [], verbose: true })).toBe(false);
    // The stop word alone: a chat stream's final chunk carries it as the whole answer does.
    expect(streamable('chat', { messages: [], verbose: true, response_fields: ['stopping_word'] })).toBe(true);
    expect(streamable('chat', { messages: [], verbose: true, response_fields: ['stopping_word', 'prompt'] })).toBe(false);
    expect(streamable('completion', { prompt: 'x', verbose: true, response_fields: ['stopping_word'] })).toBe(false);
    expect(streamable('chat', { messages: [], n_cmpl: 2 })).toBe(false);
  });

  it('asks for a stream, last, so it wins over the client\'s own `stream` (and for chat, for the usage chunk)', () => {
    const asText = (body: string, format: Parameters<typeof asStream>[1]): string => payloadText(asStream(payloadOf(body), format));
    expect(JSON.parse(asText('{"prompt":"x","stream":false}', 'completion'))).toEqual({ prompt: 'x', stream: true });
    expect(asText('{"messages":[]}', 'chat')).toBe('{"messages":[],"stream":true,"stream_options":{"include_usage":true}}');
    expect(asText('{}', 'native')).toBe('{"stream":true}');
  });
});

describe('the assembled answer', () => {
  it('text completion: the texts joined into the final chunk (finish reason, usage, timings)', () => {
    const a = new AnswerAssembler('completion', {});
    const part = (text: string) => ({ choices: [{ text, index: 0, logprobs: null, finish_reason: null }], object: 'text_completion', id: 'c1', created: 1 });
    a.push(sse(part('Hel'), part('lo')));
    a.push(Buffer.from('data: {"choices":[{"text":"","index":0,"logprobs":null,"finish_reason":"length"}],"object":"text_completion","id":"c1","created":2,'));
    a.push(Buffer.from('"usage":{"completion_tokens":2},"timings":{"cache_n":0}}\n\ndata: [DONE]\n\n'));
    expect(a.answer()).toEqual({ choices: [{ text: 'Hello', index: 0, logprobs: null, finish_reason: 'length' }], object: 'text_completion', id: 'c1', created: 2, usage: { completion_tokens: 2 }, timings: { cache_n: 0 } });
  });

  it('chat: content, reasoning and tool calls from the deltas; finish reason, usage and timings from the last chunks', () => {
    const a = new AnswerAssembler('chat', {});
    const chunk = (delta: object, finish: string | null = null) => ({ choices: [{ finish_reason: finish, index: 0, delta }], created: 5, id: 'x', model: 'm', system_fingerprint: 'b1', object: 'chat.completion.chunk' });
    a.push(
      sse(
        chunk({ role: 'assistant', content: null }),
        chunk({ reasoning_content: 'think' }),
        chunk({ content: 'Sure' }),
        chunk({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] }),
        chunk({ tool_calls: [{ index: 0, function: { arguments: '1}' } }] }),
        chunk({}, 'tool_calls'),
        { choices: [], created: 5, id: 'x', model: 'm', system_fingerprint: 'b1', object: 'chat.completion.chunk', usage: { total_tokens: 9 }, timings: { prompt_n: 3 } },
        '[DONE]',
      ),
    );
    expect(a.answer()).toEqual({
      choices: [{ finish_reason: 'tool_calls', index: 0, message: { role: 'assistant', content: 'Sure', reasoning_content: 'think', tool_calls: [{ type: 'function', function: { name: 'get', arguments: '{"a":1}' }, id: 'call_1' }] } }],
      created: 5,
      id: 'x',
      model: 'm',
      object: 'chat.completion',
      system_fingerprint: 'b1',
      usage: { total_tokens: 9 },
      timings: { prompt_n: 3 },
    });
  });

  it('chat with no content: an empty string, as llama-server answers', () => {
    const a = new AnswerAssembler('chat', {});
    a.push(sse({ choices: [{ finish_reason: 'length', index: 0, delta: {} }], id: 'x', created: 1, model: 'm', system_fingerprint: 'b' }));
    expect((a.answer().choices as { message: unknown }[])[0]!.message).toEqual({ role: 'assistant', content: '' });
  });

  it("llama.cpp's own format: contents joined, tokens only when asked for, and the request's stream setting", () => {
    const events = [
      { index: 0, content: 'a', tokens: [7], stop: false },
      { index: 0, content: 'b', tokens: [8], stop: false },
      { index: 0, content: '', tokens: [], stop: true, tokens_predicted: 2, generation_settings: { stream: true, n_predict: 2 } },
    ];
    const plain = new AnswerAssembler('native', {});
    plain.push(sse(...events));
    expect(plain.answer()).toEqual({ index: 0, content: 'ab', tokens: [], stop: true, tokens_predicted: 2, generation_settings: { stream: false, n_predict: 2 } });
    const withTokens = new AnswerAssembler('native', { return_tokens: true });
    withTokens.push(sse(...events));
    expect(withTokens.answer().tokens).toEqual([7, 8]);
  });

  it('an error event ends it with llama-server\'s error and status', () => {
    const a = new AnswerAssembler('native', {});
    let err: unknown;
    try {
      a.push(sse({ index: 0, content: 'a', stop: false }, { error: { code: 400, message: 'bad', type: 'invalid_request_error' } }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StreamErrorEvent);
    expect((err as StreamErrorEvent).status).toBe(400);
    expect(JSON.parse((err as StreamErrorEvent).body)).toEqual({ error: { code: 400, message: 'bad', type: 'invalid_request_error' } });
  });

  it('a stream that ended before its final result is no answer', () => {
    const a = new AnswerAssembler('completion', {});
    a.push(sse({ choices: [{ text: 'x', index: 0, finish_reason: null }] }));
    expect(() => a.answer()).toThrow(/no result/);
  });
});
