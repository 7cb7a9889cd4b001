// One streamed OpenAI completion, timed from the client's side: TTFT, end-to-end, tokens, and the
// daemon's queue wait header. Works the same against the daemon and against llama-server itself.
import { performance } from 'node:perf_hooks';
import { request, type Dispatcher } from 'undici';
import { firstLine } from '../shared/errors';
import { parseServerTiming } from '../daemon/api/stage-timing';
import type { BenchTarget, RequestSample } from './types';
import type { Priority } from '../shared/protocol';

export interface StreamRequest {
  target: BenchTarget;
  /** Base URL, e.g. `http://127.0.0.1:7373`; `/v1/completions` (or `/v1/chat/completions`) is appended. */
  baseUrl: string;
  /** Bearer token (the daemon's); none for a direct llama-server. */
  token?: string;
  model: string;
  prompt: string;
  /** A chat instead of `prompt`: sent to `/v1/chat/completions`. */
  messages?: ChatMessage[];
  maxTokens: number;
  dispatcher: Dispatcher;
  signal?: AbortSignal;
  /** performance.now() of the level's start; sample times are relative to it. */
  t0: number;
  /** The daemon's priority class (X-Slotwise-Priority): the bench is batch work, so background unless a scenario measures interactive. */
  priority?: Priority;
  /** X-Slotwise-Session: a newer request of the same key supersedes this one (newest wins). */
  session?: string;
  /** OpenAI `logit_bias` (token id → bias). */
  logitBias?: Record<string, number>;
  /** Each piece of generated text as it arrives (the chat workload sends the reply back next turn). */
  onText?: (text: string) => void;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** The part of an OpenAI stream chunk the bench reads (completion or chat). */
interface Chunk {
  choices?: { text?: string | null; delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { completion_tokens?: number };
  timings?: { predicted_n?: number; prompt_n?: number; cache_n?: number };
  error?: { message?: string };
}

export const QUEUE_WAIT_HEADER = 'x-slotwise-queue-wait-ms';
/** The daemon's id of a request that took a slot: the key into its lease records. */
export const REQUEST_ID_HEADER = 'x-slotwise-request-id';

/** Sends the request and reads the SSE stream to its end; never throws (failures are samples with `ok: false`). */
export async function streamCompletion(r: StreamRequest): Promise<RequestSample> {
  const start = performance.now();
  const sample: RequestSample = { target: r.target, ok: false, maxTokens: r.maxTokens, startMs: start - r.t0, e2eMs: 0, tokens: 0, queueWaitMs: 0 };
  const input = r.messages ? { messages: r.messages } : { prompt: r.prompt };
  const body = JSON.stringify({
    model: r.model,
    ...input,
    max_tokens: r.maxTokens,
    stream: true,
    ignore_eos: true,
    temperature: 0,
    ...(r.logitBias !== undefined ? { logit_bias: r.logitBias } : {}),
  });
  try {
    const res = await request(`${r.baseUrl}${r.messages ? '/v1/chat/completions' : '/v1/completions'}`, {
      method: 'POST',
      dispatcher: r.dispatcher,
      signal: r.signal,
      headers: {
        'content-type': 'application/json',
        ...(r.token ? { authorization: `Bearer ${r.token}` } : {}),
        // Only the daemon reads these; llama-server itself ignores them.
        'x-slotwise-priority': r.priority ?? 'background',
        ...(r.session !== undefined ? { 'x-slotwise-session': r.session } : {}),
      },
      body,
      // Straight to llama-server, which closes the connection after each stream (see upstream.ts):
      // a socket of its own, so direct runs do not lose requests to "other side closed".
      reset: r.target === 'direct',
      // Queued requests may wait minutes for headers; the level's signal is the real limit.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    sample.headersMs = performance.now() - start;
    const requestId = res.headers[REQUEST_ID_HEADER];
    if (typeof requestId === 'string') sample.requestId = requestId;
    const wait = Number(res.headers[QUEUE_WAIT_HEADER]);
    if (Number.isFinite(wait) && wait >= 0) sample.queueWaitMs = wait;
    const stages = parseServerTiming(res.headers['server-timing']);
    if (Object.keys(stages).length) sample.stages = stages;
    if (res.statusCode !== 200) {
      sample.error = `HTTP ${res.statusCode}: ${errorMessage(await res.body.text())}`;
      return finish(sample, start);
    }
    const parser = new SseCounter(() => {
      sample.ttftMs ??= performance.now() - start;
    }, r.onText);
    res.body.setEncoding('utf8');
    for await (const text of res.body) parser.push(text as string);
    parser.end();
    sample.tokens = parser.tokens;
    if (parser.promptN !== undefined) sample.promptN = parser.promptN;
    if (parser.cacheN !== undefined) sample.cacheN = parser.cacheN;
    if (parser.error) sample.error = parser.error;
    else if (!parser.done) sample.error = 'stream ended without [DONE]';
    else sample.ok = true;
  } catch (err) {
    sample.error = firstLine(err instanceof Error ? `${err.message}${causeOf(err)}` : String(err));
  }
  return finish(sample, start);
}

function finish(sample: RequestSample, start: number): RequestSample {
  sample.e2eMs = performance.now() - start;
  return sample;
}

function causeOf(err: Error): string {
  const cause = err.cause;
  return cause instanceof Error ? ` (${cause.message})` : '';
}

/** The `error.message` of an OpenAI error body, else the body's first line. */
export function errorMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } | string };
    if (typeof parsed.error === 'string') return firstLine(parsed.error);
    if (parsed.error?.message) return firstLine(parsed.error.message);
  } catch (err) {
    // Not JSON (a proxy's HTML page, a truncated body): show the text itself.
    void err;
  }
  return firstLine(body.trim()) || '(empty body)';
}

/**
 * Incremental SSE reader for OpenAI streams: counts content chunks, reports the first one, and takes
 * the token count from `usage` (or llama-server's `timings`) in the last chunk when present.
 */
export class SseCounter {
  tokens = 0;
  done = false;
  error: string | undefined;
  /** llama-server's `timings.prompt_n` / `cache_n` of the last chunk that had them. */
  promptN: number | undefined;
  cacheN: number | undefined;
  #buffer = '';
  #counted = 0;
  #reported: number | undefined;
  #onFirstContent: () => void;
  #onText: ((text: string) => void) | undefined;
  #sawContent = false;

  constructor(onFirstContent: () => void, onText?: (text: string) => void) {
    this.#onFirstContent = onFirstContent;
    this.#onText = onText;
  }

  push(text: string): void {
    this.#buffer += text;
    let nl: number;
    while ((nl = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, nl).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(nl + 1);
      this.#line(line);
    }
  }

  end(): void {
    if (this.#buffer) this.#line(this.#buffer);
    this.#buffer = '';
    this.tokens = this.#reported ?? this.#counted;
  }

  #line(line: string): void {
    if (!line.startsWith('data:')) return; // comments, event names, blank separators
    const data = line.slice(5).trim();
    if (data === '[DONE]') {
      this.done = true;
      return;
    }
    let chunk: Chunk;
    try {
      chunk = JSON.parse(data) as Chunk;
    } catch (err) {
      this.error = `unparsable stream chunk: ${firstLine(data).slice(0, 80)} (${(err as Error).message})`;
      return;
    }
    if (chunk.error) {
      this.error = `stream error: ${firstLine(chunk.error.message ?? 'unknown')}`;
      return;
    }
    const choice = chunk.choices?.[0];
    const text = choice?.text ?? choice?.delta?.content;
    if (typeof text === 'string' && text.length > 0) {
      this.#counted++;
      this.#onText?.(text);
      if (!this.#sawContent) {
        this.#sawContent = true;
        this.#onFirstContent();
      }
    }
    const reported = chunk.usage?.completion_tokens ?? chunk.timings?.predicted_n;
    if (typeof reported === 'number') this.#reported = reported;
    if (typeof chunk.timings?.prompt_n === 'number') this.promptN = chunk.timings.prompt_n;
    if (typeof chunk.timings?.cache_n === 'number') this.cacheN = chunk.timings.cache_n;
  }
}
