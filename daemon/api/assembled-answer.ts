// A non-streamed generation request is sent to llama-server as a stream, and its answer is assembled
// here as llama-server would have written it. The reason is cancellation. llama-server notices that a
// client left only when writing to it fails (a stream: at the next token) or, for a non-streamed
// request, when a whole second passes with no result of any request on the server, its own /slots
// answers included (tools/server/server-queue.cpp recv_with_timeout restarts its 1 s wait on every
// result). So a non-streamed request whose client left, or that a newer request of its session
// superseded, ran on to its last token: its slot busy for nobody, every request sent to that slot
// waiting behind it. Streamed, it is cancelled at its next token.
import type { Obj } from '../server/validate';
import { SseSplitter } from './sse';
import { withFields, type Payload } from './payload';

/** The answer shapes of the generation routes: OpenAI text completion, OpenAI chat, OpenAI Responses, llama.cpp's own (/infill). */
export type AnswerFormat = 'completion' | 'chat' | 'responses' | 'native';

/** A generation route's answer format; undefined for a route that does not generate (embeddings, rerank). */
export function answerFormat(path: string): AnswerFormat | undefined {
  if (path === '/v1/completions') return 'completion';
  if (path === '/v1/chat/completions') return 'chat';
  if (path === '/v1/responses') return 'responses';
  if (path === '/infill') return 'native';
  return undefined;
}

/** Fields whose non-streamed answer a stream cannot give (see streamable). */
const NOT_STREAMABLE = ['logprobs', 'top_logprobs', 'n_probs', 'response_fields', 'verbose'] as const;

/**
 * `verbose` fields a chat stream's final chunk carries as the whole answer does: `__verbose` cut to
 * these by `response_fields` is the same either way (the stop word; what anthropic.ts asks for).
 */
const STREAMED_VERBOSE = new Set(['stopping_word']);

/**
 * Whether a non-streamed request gets the same answer assembled from a stream. Not with token
 * probabilities (a stream sends each token's with its text: a stop word's are not trimmed, and chat
 * drops those of tokens whose text it holds back), `response_fields` or `verbose` (they shape the final
 * result only; but a chat stream's final chunk carries `__verbose` cut to STREAMED_VERBOSE, which the
 * assembler keeps), or several prompts or completions in one request (their results interleave). Those
 * go upstream as they came, and llama-server notices their client leaving only as described above.
 */
export function streamable(format: AnswerFormat, body: Obj): boolean {
  const fields = body.response_fields;
  const verboseStreams = format === 'chat' && Array.isArray(fields) && fields.length > 0 && fields.every((f) => STREAMED_VERBOSE.has(f as string));
  for (const key of NOT_STREAMABLE) {
    if (verboseStreams && (key === 'verbose' || key === 'response_fields')) continue;
    const v = body[key];
    if (v !== undefined && v !== null && v !== false && v !== 0) return false;
  }
  if (body.n_cmpl !== undefined && body.n_cmpl !== 1) return false;
  if (format === 'completion') {
    const p = body.prompt;
    return typeof p === 'string' || (Array.isArray(p) && p.every((x) => typeof x === 'number'));
  }
  return true;
}

/** The request as a stream; chat asks for the usage chunk, which its non-streamed answer carries. */
export function asStream(payload: Payload, format: AnswerFormat): Payload {
  return withFields(payload, format === 'chat' ? '"stream":true,"stream_options":{"include_usage":true}' : '"stream":true');
}

/** An error event in the stream: llama-server's `{error: {code, message, type}}`. */
export class StreamErrorEvent extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`llama-server's stream ended with an error (${status})`);
  }
}

interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** Collects the stream's events; `answer()` is the non-streamed answer once the stream ended. */
export class AnswerAssembler {
  readonly #format: AnswerFormat;
  /** native: the request's `return_tokens` (without it llama-server answers `tokens: []`, though each streamed event carries its token). */
  readonly #returnTokens: boolean;
  readonly #events = new SseSplitter();
  /** completion: the choice texts; native: the contents; chat: the content deltas. */
  #text: string[] = [];
  #tokens: unknown[] = [];
  /** completion, native: the final event (the one that ends the stream); chat: the last chunk's top-level fields; responses: the completed response. */
  #last: Obj | undefined;
  #reasoning: string[] = [];
  #toolCalls: ToolCall[] = [];
  #finishReason: unknown = null;
  #usage: unknown;
  #timings: unknown;
  /** chat: `__verbose` of the final chunk (asked with `verbose`), as llama-server's whole answer carries it. */
  #verbose: unknown;

  constructor(format: AnswerFormat, body: Obj) {
    this.#format = format;
    this.#returnTokens = body.return_tokens === true;
  }

  /** Takes a chunk of the stream's bytes; throws StreamErrorEvent on an error event. */
  push(chunk: Uint8Array): void {
    for (const data of this.#events.push(chunk)) {
      if (data === '[DONE]') continue;
      const event = JSON.parse(data) as Obj;
      if (event.error !== undefined) throw errorEvent(event);
      if (this.#format === 'chat') this.#chat(event);
      else if (this.#format === 'responses') this.#responses(event);
      else if (this.#format === 'completion') this.#completion(event);
      else this.#native(event);
    }
  }

  /** The answer, as llama-server answers the request without `stream`. */
  answer(): Obj {
    const last = this.#last;
    if (!last) throw new Error('llama-server sent no result');
    if (this.#format === 'native') {
      const settings = last.generation_settings as Obj | undefined;
      return {
        ...last,
        content: this.#text.join(''),
        tokens: this.#returnTokens ? this.#tokens : [],
        ...(settings && typeof settings === 'object' ? { generation_settings: { ...settings, stream: false } } : {}),
      };
    }
    if (this.#format === 'responses') {
      // The completed event carries the whole response; llama-server's own answer also says when it completed (then).
      return { ...last, completed_at: last.completed_at ?? last.created_at };
    }
    if (this.#format === 'completion') {
      const choice = ((last.choices as Obj[] | undefined) ?? [])[0] ?? {};
      return { ...last, choices: [{ ...choice, text: this.#text.join('') }] };
    }
    const message: Obj = { role: 'assistant', content: this.#text.join('') };
    const reasoning = this.#reasoning.join('');
    if (reasoning) message.reasoning_content = reasoning;
    if (this.#toolCalls.length > 0) {
      message.tool_calls = this.#toolCalls.map((c) => ({ type: 'function', function: { name: c.name, arguments: c.arguments }, ...(c.id ? { id: c.id } : {}) }));
    }
    const { id, created, model, system_fingerprint } = last;
    return {
      choices: [{ finish_reason: this.#finishReason, index: 0, message }],
      created,
      id,
      model,
      object: 'chat.completion',
      system_fingerprint,
      ...(this.#usage !== undefined ? { usage: this.#usage } : {}),
      ...(this.#timings !== undefined ? { timings: this.#timings } : {}),
      ...(this.#verbose !== undefined ? { __verbose: this.#verbose } : {}),
    };
  }

  #native(event: Obj): void {
    if (typeof event.content === 'string') this.#text.push(event.content);
    if (Array.isArray(event.tokens)) for (const t of event.tokens) this.#tokens.push(t);
    if (event.stop === true) this.#last = event;
  }

  #responses(event: Obj): void {
    if (event.type === 'response.completed' && event.response && typeof event.response === 'object') this.#last = event.response as Obj;
  }

  #completion(event: Obj): void {
    const choice = ((event.choices as Obj[] | undefined) ?? [])[0];
    if (typeof choice?.text === 'string') this.#text.push(choice.text);
    if (choice?.finish_reason !== null && choice?.finish_reason !== undefined) this.#last = event;
  }

  #chat(event: Obj): void {
    this.#last = event;
    if (event.usage !== undefined) this.#usage = event.usage;
    if (event.timings !== undefined) this.#timings = event.timings;
    if (event.__verbose !== undefined) this.#verbose = event.__verbose;
    const choice = ((event.choices as Obj[] | undefined) ?? [])[0];
    if (!choice) return;
    if (choice.finish_reason !== null && choice.finish_reason !== undefined) this.#finishReason = choice.finish_reason;
    const delta = (choice.delta ?? {}) as Obj;
    if (typeof delta.content === 'string') this.#text.push(delta.content);
    if (typeof delta.reasoning_content === 'string') this.#reasoning.push(delta.reasoning_content);
    for (const tc of (delta.tool_calls as Obj[] | undefined) ?? []) {
      const i = Number(tc.index ?? 0);
      const call = (this.#toolCalls[i] ??= { id: '', name: '', arguments: '' });
      if (typeof tc.id === 'string' && tc.id) call.id = tc.id;
      const fn = (tc.function ?? {}) as Obj;
      if (typeof fn.name === 'string') call.name += fn.name;
      if (typeof fn.arguments === 'string') call.arguments += fn.arguments;
    }
  }
}

function errorEvent(event: Obj): StreamErrorEvent {
  const code = (event.error as Obj | undefined)?.code;
  const status = typeof code === 'number' && code >= 400 && code <= 599 ? code : 500;
  return new StreamErrorEvent(status, JSON.stringify(event));
}
