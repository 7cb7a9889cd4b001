// Checks on what clients send before it reaches the scheduler or llama-server: nesting depth,
// numeric ranges, one-line echoes, and how llama-server's own refusals are classified.
import { describe, expect, it } from 'vitest';
import { checkDepth, MAX_DEPTH } from '../../daemon/server/validate';
import { checkNumbers } from '../../daemon/api/openai';
import { upstreamError } from '../../daemon/api/upstream';
import { errorEnvelope, oneLine, quote, SlotwiseError } from '../../shared/errors';

function nested(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

function thrown(fn: () => unknown): SlotwiseError {
  try {
    fn();
  } catch (err) {
    return err as SlotwiseError;
  }
  throw new Error('expected a throw');
}

describe('checkDepth', () => {
  it('accepts MAX_DEPTH levels and refuses one more, naming the path', () => {
    expect(() => checkDepth({ a: nested(MAX_DEPTH - 1) }, 'body')).not.toThrow();
    const e = thrown(() => checkDepth({ ok: 1, a: { b: nested(MAX_DEPTH) } }, 'body'));
    expect(e.code).toBe('SW_ERR_BAD_REQUEST');
    expect(e.message).toMatch(/^body: "a\.b\[0\]\[0\]\[0\].*…" nests deeper than 64 levels — flatten that field$/);
  });

  it('walks 100,000 levels without overflowing the stack', () => {
    expect(thrown(() => checkDepth(nested(100_000), 'body')).code).toBe('SW_ERR_BAD_REQUEST');
  });
});

describe('checkNumbers', () => {
  const model = { name: 'm', ctxPerSlot: 512 };
  it.each([
    [{ max_tokens: 4294967301 }, '"max_tokens" must be an integer from 1 to 512 (the model\'s context per slot, models.m.ctxPerSlot), got the number 4294967301'],
    [{ max_completion_tokens: 0 }, '"max_completion_tokens" must be an integer from 1 to 512'],
    [{ n_predict: -2 }, '"n_predict" must be an integer from -1 to 512'],
    [{ n: 3 }, '"n" must be 1 (llama-server returns one choice per request), got the number 3 — send the request n times instead'],
    [{ n: '1' }, '"n" must be 1'],
    [{ n_probs: 101 }, '"n_probs" must be an integer from 0 to 100'],
    [{ top_k: 2 ** 31 }, '"top_k" must be an integer from 0 to 2147483647'],
    [{ seed: -2 }, '"seed" must be an integer from -1 to 4294967295 (-1 = random)'],
    [{ temperature: Number.NaN }, '"temperature" must be a number from 0 to 100'],
  ])('refuses %j', (body, message) => {
    const e = thrown(() => checkNumbers(body, 'POST /v1/completions', model));
    expect(e.code).toBe('SW_ERR_BAD_REQUEST');
    expect(e.message).toContain(`POST /v1/completions: ${message}`);
  });

  it('accepts values in range and leaves unknown fields alone', () => {
    expect(() => checkNumbers({ max_tokens: 512, n_predict: -1, n: 1, seed: 4294967295, top_k: 0, mirostat_tau: 1e9 }, 'w', model)).not.toThrow();
  });
});

describe('one-line messages', () => {
  it('escapes control characters and caps what is sent', () => {
    expect(oneLine('a\nb\r\tc\u0000\u2028')).toBe('a\\nb\\r\\tc\\u0000\\u2028');
    expect(quote('x'.repeat(100), 10)).toBe('"xxxxxxxxxx…"');
    const { body } = errorEnvelope(new SlotwiseError('SW_ERR_BAD_REQUEST', `bad ${'y'.repeat(1000)}\nX-Injected: 1`));
    expect(body.error.message).not.toMatch(/\n/);
    expect(body.error.message).toHaveLength(500);
  });
});

describe('upstreamError', () => {
  const llama = (code: number, message: string, type: string): string => JSON.stringify({ error: { code, message, type } });
  it('a 4xx is the request\'s fault: SW_ERR_UPSTREAM_REJECTED with llama-server\'s message', () => {
    const e = upstreamError('m#1', 400, llama(400, 'request (2291 tokens) exceeds the available context size (256 tokens), try increasing it', 'exceed_context_size_error'));
    expect(e).toMatchObject({ code: 'SW_ERR_UPSTREAM_REJECTED', status: 400 });
    expect(e.message).toBe('llama-server refused the request (HTTP 400): request (2291 tokens) exceeds the available context size (256 tokens), try increasing it — fix the request');
  });

  it('a 500 from its JSON parser is the request\'s fault too (a lone surrogate)', () => {
    // Recorded from llama-server for {"prompt":"\ud800 x"}.
    const text = llama(500, "[json.exception.parse_error.101] parse error at line 1, column 18: syntax error while parsing value - invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF; last read: '\"\\ud800 '", 'server_error');
    expect(upstreamError('m#1', 500, text).code).toBe('SW_ERR_UPSTREAM_REJECTED');
  });

  it("a 500 that llama-server's request parsing throws for a bad request is the request's fault", () => {
    // Recorded from llama-server: "tools": [{"type":"function"}], and an embedding input longer than its batch.
    const tools = upstreamError('m#1', 500, llama(500, 'Failed to parse tools: Missing tool function: {"type":"function"}; tools = [\n  {\n    "type": "function"\n  }\n]', 'server_error'));
    expect(tools).toMatchObject({ code: 'SW_ERR_UPSTREAM_REJECTED', status: 400 });
    expect(tools.message).toMatch(/^llama-server refused the request \(HTTP 500\): Failed to parse tools: Missing tool function/);
    const long = upstreamError('e#1', 500, llama(500, 'input (2001 tokens) is too large to process. increase the physical batch size (current batch size: 512)', 'server_error'));
    expect(long.code).toBe('SW_ERR_UPSTREAM_REJECTED');
    // An input_audio part whose data was "!!!!" (tools/server/server-common.cpp handle_media).
    expect(upstreamError('a#1', 500, llama(500, 'Invalid base64 value', 'server_error'))).toMatchObject({ code: 'SW_ERR_UPSTREAM_REJECTED', message: 'llama-server refused the request (HTTP 500): Invalid base64 value — fix the request' });
  });

  it('any other 5xx is an upstream failure naming the instance', () => {
    const e = upstreamError('m#1', 500, llama(500, 'failed to decode\nbatch', 'server_error'));
    expect(e).toMatchObject({ code: 'SW_ERR_UPSTREAM', message: '[m#1] answered 500: failed to decode' });
    expect(upstreamError('m#1', 503, 'Service Unavailable').message).toBe('[m#1] answered 503: Service Unavailable');
  });
});
