// llama-server's OpenAI chat answer spoken as Anthropic's Messages API: the event stream
// (message_start, content blocks for thinking, text and each tool call, message_delta, message_stop),
// the whole message, and errors. The events follow llama-server's own /v1/messages
// (tools/server/server-task.cpp to_json_anthropic*): thinking first, then text, then tool calls;
// each block stops before the next starts, as Anthropic's API sends them.
import type { ErrorBody } from '../../shared/protocol';
import type { Obj } from '../server/validate';
import { SseSplitter } from './sse';

interface Stop {
  stop_reason: string;
  stop_sequence: string | null;
}

/**
 * Anthropic's `stop_reason` and `stop_sequence` for an OpenAI `finish_reason`. The chat answer's
 * `finish_reason` is "stop" for a stop word and an end of turn alike; which word matched comes from
 * `__verbose.stopping_word` (asked for by anthropic.ts when the request has stop sequences). Only the
 * client's own sequences count as `stop_sequence`: a chat template's stop word ends the turn.
 * (llama-server's own /v1/messages says `end_turn` with the word; Anthropic's API says `stop_sequence`.)
 */
function stopOf(finish: unknown, verbose: unknown, stops: readonly string[]): Stop {
  if (finish === 'length') return { stop_reason: 'max_tokens', stop_sequence: null };
  const word = verbose && typeof verbose === 'object' ? (verbose as Obj).stopping_word : undefined;
  const sequence = typeof word === 'string' && word !== '' && stops.includes(word) ? word : null;
  // A tool call ended by a stop sequence (`</tool_call>`) is still a tool call; the sequence is named.
  if (finish === 'tool_calls') return { stop_reason: 'tool_use', stop_sequence: sequence };
  return sequence === null ? { stop_reason: 'end_turn', stop_sequence: null } : { stop_reason: 'stop_sequence', stop_sequence: sequence };
}

/** `msg_…` from llama-server's `chatcmpl-…` id: the same request, named as Anthropic names messages. */
function messageId(id: unknown): string {
  return typeof id === 'string' ? id.replace(/^chatcmpl-/, 'msg_') : 'msg_slotwise';
}

interface Usage {
  input_tokens: number;
  cache_read_input_tokens: number;
  output_tokens: number;
}

/** Prompt tokens from llama-server's timings (`prompt_n` computed, `cache_n` reused) or usage. */
function usageOf(timings: unknown, usage: unknown, output: number): Usage {
  const t = (timings ?? {}) as Obj;
  const u = (usage ?? {}) as Obj;
  const cached = num(t.cache_n) ?? num(((u.prompt_tokens_details ?? {}) as Obj).cached_tokens) ?? 0;
  const processed = num(t.prompt_n) ?? Math.max(0, (num(u.prompt_tokens) ?? 0) - cached);
  return { input_tokens: processed, cache_read_input_tokens: cached, output_tokens: num(u.completion_tokens) ?? output };
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function event(type: string, data: Obj): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

type Block = { kind: 'thinking' } | { kind: 'text' } | { kind: 'tool'; call: number };

/**
 * Turns the bytes of an OpenAI chat stream (asked with `timings_per_token`, so the first token carries
 * the prompt's counts, and `include_usage`) into Anthropic events, chunk by chunk. An error event of
 * llama-server's becomes Anthropic's `error` event.
 */
export class AnthropicStream {
  readonly #model: string;
  readonly #stops: readonly string[];
  readonly #events = new SseSplitter();
  #started = false;
  #ended = false;
  #open: Block | undefined;
  #index = -1;
  /** Blocks of tool calls by the call's index in llama-server's stream. */
  #tools = new Map<number, number>();
  #finish: unknown = null;
  #verbose: unknown;
  #timings: unknown;
  #usage: unknown;
  #id: unknown;
  #deltas = 0;

  /** `stops`: the request's `stop_sequences`. */
  constructor(model: string, stops: readonly string[] = []) {
    this.#model = model;
    this.#stops = stops;
  }

  /** The Anthropic events a chunk of the upstream stream completes ('' when none). */
  push(chunk: Uint8Array): string {
    let out = '';
    for (const data of this.#events.push(chunk)) {
      if (this.#ended) break;
      if (data === '[DONE]') {
        out += this.end();
        continue;
      }
      const chunkJson = JSON.parse(data) as Obj;
      if (chunkJson.error !== undefined) {
        this.#ended = true;
        const e = chunkJson.error as Obj;
        out += anthropicErrorEvent(typeof e.message === 'string' ? e.message : 'llama-server failed', 'api_error');
        continue;
      }
      out += this.#chunk(chunkJson);
    }
    return out;
  }

  /** What closes the message: the open block's stop, message_delta, message_stop ('' once sent). */
  end(): string {
    if (this.#ended) return '';
    this.#ended = true;
    let out = this.#start();
    out += this.#close();
    const usage = usageOf(this.#timings, this.#usage, this.#deltas);
    out += event('message_delta', { delta: stopOf(this.#finish, this.#verbose, this.#stops), usage });
    return out + event('message_stop', {});
  }

  #chunk(c: Obj): string {
    this.#id ??= c.id;
    if (c.timings !== undefined) this.#timings = c.timings;
    if (c.usage !== undefined) this.#usage = c.usage;
    if (c.__verbose !== undefined) this.#verbose = c.__verbose;
    const choice = ((c.choices as Obj[] | undefined) ?? [])[0];
    if (!choice) return '';
    if (choice.finish_reason !== null && choice.finish_reason !== undefined) this.#finish = choice.finish_reason;
    const delta = (choice.delta ?? {}) as Obj;
    let out = '';
    if (typeof delta.reasoning_content === 'string' && delta.reasoning_content) {
      out += this.#into({ kind: 'thinking' }) + this.#delta({ type: 'thinking_delta', thinking: delta.reasoning_content });
    }
    if (typeof delta.content === 'string' && delta.content) {
      out += this.#into({ kind: 'text' }) + this.#delta({ type: 'text_delta', text: delta.content });
    }
    for (const tc of (delta.tool_calls as Obj[] | undefined) ?? []) {
      const call = Number(tc.index ?? 0);
      const fn = (tc.function ?? {}) as Obj;
      out += this.#into({ kind: 'tool', call }, tc.id, fn.name);
      if (typeof fn.arguments === 'string' && fn.arguments) out += this.#delta({ type: 'input_json_delta', partial_json: fn.arguments });
    }
    // message_start waits for the first token, whose timings carry the prompt's counts (as llama-server's own does).
    return out ? this.#start() + out : out;
  }

  #start(): string {
    if (this.#started) return '';
    this.#started = true;
    const usage = usageOf(this.#timings, undefined, 0);
    return event('message_start', {
      message: { id: messageId(this.#id), type: 'message', role: 'assistant', content: [], model: this.#model, stop_reason: null, stop_sequence: null, usage: { ...usage, output_tokens: 0 } },
    });
  }

  /** Makes `block` the open one: stops the open block and starts this one, unless it is already open. */
  #into(block: Block, id?: unknown, name?: unknown): string {
    const open = this.#open;
    if (open && open.kind === block.kind && (block.kind !== 'tool' || (open.kind === 'tool' && open.call === block.call))) return '';
    let out = this.#close();
    this.#index++;
    this.#open = block;
    let content: Obj;
    if (block.kind === 'tool') {
      this.#tools.set(block.call, this.#index);
      content = { type: 'tool_use', id: typeof id === 'string' ? id : '', name: typeof name === 'string' ? name : '', input: {} };
    } else content = block.kind === 'text' ? { type: 'text', text: '' } : { type: 'thinking', thinking: '' };
    out += event('content_block_start', { index: this.#index, content_block: content });
    return out;
  }

  #delta(delta: Obj): string {
    this.#deltas++;
    return event('content_block_delta', { index: this.#index, delta });
  }

  #close(): string {
    if (!this.#open) return '';
    this.#open = undefined;
    return event('content_block_stop', { index: this.#index });
  }
}

/** The whole Anthropic message from llama-server's non-streamed chat answer (assembled-answer.ts); `stops` as for AnthropicStream. */
export function anthropicMessage(chat: Obj, model: string, stops: readonly string[] = []): Obj {
  const choice = ((chat.choices as Obj[] | undefined) ?? [])[0] ?? {};
  const msg = (choice.message ?? {}) as Obj;
  const content: Obj[] = [];
  if (typeof msg.reasoning_content === 'string' && msg.reasoning_content) content.push({ type: 'thinking', thinking: msg.reasoning_content, signature: '' });
  if (typeof msg.content === 'string' && msg.content) content.push({ type: 'text', text: msg.content });
  for (const tc of (msg.tool_calls as Obj[] | undefined) ?? []) {
    const fn = (tc.function ?? {}) as Obj;
    content.push({ type: 'tool_use', id: typeof tc.id === 'string' ? tc.id : '', name: typeof fn.name === 'string' ? fn.name : '', input: parseInput(fn.arguments) });
  }
  return {
    id: messageId(chat.id),
    type: 'message',
    role: 'assistant',
    content,
    model,
    ...stopOf(choice.finish_reason, chat.__verbose, stops),
    usage: usageOf(chat.timings, chat.usage, 0),
  };
}

/** A tool call's arguments as its input object; `{}` when the model wrote no valid JSON (as llama-server does). */
function parseInput(args: unknown): unknown {
  if (typeof args !== 'string') return {};
  try {
    return JSON.parse(args) as unknown;
  } catch {
    return {};
  }
}

/** Anthropic's error `type` for an HTTP status. */
export function anthropicErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 503 || status === 529) return 'overloaded_error';
  if (status >= 400 && status < 500) return 'invalid_request_error';
  return 'api_error';
}

/**
 * Slotwise's error body in Anthropic's shape, `{"type": "error", "error": {"type", "message"}}`, keeping
 * its code (SW_ERR_…) beside them so the daemon's errors stay recognisable.
 */
export function anthropicErrorBody(status: number, body: { error: ErrorBody }): Obj {
  return { type: 'error', error: { ...body.error, type: anthropicErrorType(status) } };
}

/** An error after the stream began, as Anthropic sends it. */
export function anthropicErrorEvent(message: string, type: string): string {
  return event('error', { error: { type, message } });
}
