// Requests from the daemon to one llama-server instance, shared by the OpenAI proxy and prompt jobs.
// Failures are classified once: client gone → SW_ERR_CANCELLED, instance gone → InstanceGoneError
// (retryable before the first byte; a stalled instance too), anything else → SW_ERR_UPSTREAM; an error
// answer that is the request's fault → SW_ERR_UPSTREAM_REJECTED (upstreamError).
import { Pool, request, type Dispatcher } from 'undici';
import { SlotwiseError, firstLine } from '../../shared/errors';
import type { LlamaInstance } from '../runtime/instance';
import { InstanceGoneError } from '../scheduler/dispatch';
import { upstreamConnector } from './spare-connections';
import { openStream, UPSTREAM_EOF, type StreamResponse } from './stream-upstream';
import { authHeaders } from '../runtime/llama-client';
import { endpointKey, endpointOf, type LlamaTarget } from '../runtime/endpoint';
import { SseSplitter } from './sse';
import { joinPieces, payloadPieces, withFields, type Payload } from './payload';

/**
 * Socket errors that mean the llama-server process went away or stopped answering, not that the
 * request was bad. On its UNIX socket: ENOENT, the socket is gone; EAGAIN, its accept queue is full
 * (a frozen process: where TCP's connect would wait, a socket's fails at once).
 */
const GONE_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'EAGAIN', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', UPSTREAM_EOF]);

/** On a `Connection: close` socket (every stream, see postJson) a process that dies mid-response shows
 * up as an EOF inside the chunked body: undici's HTTPParserError "Invalid EOF state", with no code. */
function isEofMidResponse(err: unknown): boolean {
  return (err as Error)?.name === 'HTTPParserError' && /Invalid EOF state/i.test((err as Error).message);
}

/** New connections come from a spare opened ahead of time (see spare-connections.ts). */
const connect = upstreamConnector;
const POOL_OPTIONS: Pool.Options = { keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, headersTimeout: 0, bodyTimeout: 0, connect };
/** An endpoint's pool is closed once it has had nothing in flight for this long (its instance stopped or moved). */
const POOL_IDLE_CLOSE_MS = 60_000;

interface PoolEntry {
  pool: Pool;
  lastUsed: number;
}

/**
 * One connection pool per instance endpoint (its socket, or its origin), kept for the instance's life; no cap on connections, so
 * 1,000 streams can be in flight. Not undici's Agent: it drops an origin's pool (and its clients)
 * whenever that origin's last connection closes, which is after every stream (llama-server closes
 * streamed responses), so each stream at low concurrency paid for a new pool and client.
 */
const pools = new Map<string, PoolEntry>();

export function poolFor(target: LlamaTarget, now = Date.now()): Pool {
  const endpoint = endpointOf(target);
  const key = endpointKey(endpoint);
  const entry = pools.get(key);
  if (entry) {
    entry.lastUsed = now;
    return entry.pool;
  }
  // A new origin is rare (an instance start): the moment to close pools of origins long unused.
  for (const [key, e] of pools) {
    if (now - e.lastUsed > POOL_IDLE_CLOSE_MS && e.pool.stats.running === 0 && e.pool.stats.pending === 0) {
      pools.delete(key);
      void e.pool.close();
    }
  }
  const { origin, socketPath } = endpoint;
  const pool = new Pool(origin, socketPath ? { ...POOL_OPTIONS, connect: (opts, cb) => connect({ ...opts, socketPath }, cb) } : POOL_OPTIONS);
  pools.set(key, { pool, lastUsed: now });
  return pool;
}

export async function postJson(inst: LlamaInstance, path: string, payload: Payload, stream: boolean, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  try {
    const endpoint = inst.endpoint;
    // A lease names a ready instance, which has an address; one that lost it since is gone (retryable).
    if (endpoint === undefined) throw new InstanceGoneError(inst.id, new Error('the instance has no address (not running)'));
    return await request(`${endpoint.origin}${path}`, {
      method: 'POST',
      body: joinPieces(payloadPieces(payload)),
      headers: { 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json', ...authHeaders(inst.apiKey) },
      // The instance's signal ends the request (and its body) when the process stalls.
      signal: AbortSignal.any([signal, inst.requestSignal]),
      dispatcher: poolFor(endpoint),
      // llama-server closes the connection after every streamed response, though it answers
      // "Keep-Alive": a request sent on that socket before its FIN arrives fails with "other side
      // closed". So a stream gets a connection of its own; plain requests keep theirs alive.
      reset: stream,
    });
  } catch (err) {
    throw classifyUpstreamError(err, inst, signal);
  }
}

/**
 * A streamed request (stream-upstream.ts): its own connection, which llama-server closes after the
 * response anyway, so no pooled client is involved. Resolves at the response head.
 */
export async function postStream(inst: LlamaInstance, path: string, payload: Payload, signal: AbortSignal): Promise<StreamResponse> {
  try {
    const endpoint = inst.endpoint;
    if (endpoint === undefined) throw new InstanceGoneError(inst.id, new Error('the instance has no address (not running)'));
    // The instance's signal ends the request (and its body) when the process stalls.
    return await openStream(connect, { origin: endpoint.origin, socketPath: endpoint.socketPath, path, headers: authHeaders(inst.apiKey), payload: payloadPieces(payload), signals: [signal, inst.requestSignal] });
  } catch (err) {
    throw classifyUpstreamError(err, inst, signal);
  }
}

export function classifyUpstreamError(err: unknown, inst: Pick<LlamaInstance, 'id' | 'requestSignal'>, signal: AbortSignal): Error {
  const instance = inst.id;
  if (signal.aborted) {
    // The daemon's own reasons (shutdown, a newer request of the session, prompt.cancel, the client gone) travel
    // as the abort reason, with their own words; any other abort is the client leaving.
    const reason: unknown = signal.reason;
    if (reason instanceof SlotwiseError && (reason.code === 'SW_ERR_SHUTTING_DOWN' || reason.code === 'SW_ERR_SUPERSEDED' || reason.code === 'SW_ERR_CANCELLED')) return reason;
    return new SlotwiseError('SW_ERR_CANCELLED', 'client disconnected', { cause: err });
  }
  const stalled = inst.requestSignal.aborted ? inst.requestSignal.reason : undefined;
  if (stalled instanceof SlotwiseError) return new InstanceGoneError(instance, err, stalled);
  if (err instanceof SlotwiseError) return err;
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  if ((code && GONE_CODES.has(code)) || isEofMidResponse(err)) return new InstanceGoneError(instance, err);
  return new SlotwiseError('SW_ERR_UPSTREAM', `[${instance}] ${(err as Error).message}`, { cause: err });
}

/**
 * llama-server's 500s that are the request's fault: it answers 500 for any error its request parsing
 * throws that is not an invalid_argument (tools/server/server-http.cpp ex_wrapper).
 */
const REQUEST_FAULTS = [
  /^\[json\.exception\./, // its JSON parser: a lone surrogate in the body
  /^Failed to parse tools/,
  /is too large to process/, // an embedding input longer than the batch
  /requires --jinja flag|try using --jinja/,
  /^Unsupported param/,
  /input is not supported/, // image, audio, video for a model without them
  /^Multimodal data provided/,
  /^Invalid token/,
  /^Invalid base64 value/, // an image or audio part whose data is not base64
];

/**
 * llama-server's error answer as a SlotwiseError. A 4xx, or a 500 from its JSON parser (a lone
 * surrogate in the body), is the request's fault: SW_ERR_UPSTREAM_REJECTED (outcome `rejected`);
 * anything else is SW_ERR_UPSTREAM (`failed`). Its own message is kept, on one line.
 */
export function upstreamError(instance: string, status: number, text: string): SlotwiseError {
  const message = firstLine(upstreamMessage(text) || `HTTP ${status}`);
  if ((status >= 400 && status < 500) || REQUEST_FAULTS.some((re) => re.test(message))) {
    return new SlotwiseError('SW_ERR_UPSTREAM_REJECTED', `llama-server refused the request (HTTP ${status}): ${message} — fix the request`, { detail: `[${instance}] ${text.slice(0, 2000)}` });
  }
  return new SlotwiseError('SW_ERR_UPSTREAM', `[${instance}] answered ${status}: ${message}`, { detail: text.slice(0, 2000) });
}

/** `error.message` of llama.cpp's error shape `{error: {code, message, type}}`, else the text itself. */
function upstreamMessage(text: string): string {
  try {
    const msg = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof msg === 'string') return msg;
  } catch {
    // not JSON: fall through to the raw text
  }
  return text.trim().slice(0, 300);
}

/** The error that ends a response the client already got part of, when its instance went away or stalled. */
export function midResponseError(e: InstanceGoneError, instance: string, cause: unknown): SlotwiseError {
  if (e.code === 'SW_ERR_INSTANCE_STALLED') return new SlotwiseError(e.code, e.message, { cause });
  return new SlotwiseError('SW_ERR_UPSTREAM', `[${instance}] llama-server stopped mid-response: ${(cause as Error).message}`, { cause });
}

/** Passes a response body through, telling the instance's stall watchdog about every chunk. */
export async function* withProgress<T>(inst: LlamaInstance, body: AsyncIterable<T>): AsyncGenerator<T> {
  for await (const chunk of body) {
    inst.noteProgress();
    yield chunk;
  }
}

/** Yields the `data:` payloads of an SSE stream as they arrive (events split across chunks are joined). */
export async function* sseData(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<string> {
  const events = new SseSplitter();
  for await (const chunk of body) yield* events.push(chunk);
}

/**
 * The request body with the daemon's slot: llama-server runs the task in slot `id_slot` (or, were
 * that slot busy, waits for it inside the server: it never fails or moves the task).
 */
export function withSlot(payload: Payload, slot: number | undefined): Payload {
  return slot === undefined ? payload : withFields(payload, `"id_slot":${slot}`);
}

/** An event's `data:` field at the start of a line: inside an event's JSON a newline is always escaped, so text that says "data:" never matches. */
const LINE_DATA = Buffer.from('\ndata:');

/** A token's event in the Responses API's stream (`event: response.output_text.delta`, reasoning and tool-call arguments alike): its other events frame the answer. */
export const RESPONSES_DELTA = Buffer.from('.delta\ndata:');

/**
 * A counter of `data:` events in an SSE stream, fed its chunks in order without decoding them:
 * llama-server streams one per token (plus a role event for chats and the final one), so the running
 * total tracks tokens decoded. A field counts at the start of a line only (a reply that writes "data:"
 * is one token, not two), and once where a chunk boundary splits it. No allocation per chunk.
 * `field` counts another marker instead (RESPONSES_DELTA), which starts anywhere in a line.
 */
export function sseEventCounter(field: Buffer = LINE_DATA): (chunk: Uint8Array) => number {
  // The stream so far ends with the field's first `carry` bytes (the stream's start is a line start: 1).
  let carry = field === LINE_DATA ? 1 : 0;
  return (chunk) => {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let n = 0;
    if (carry > 0) {
      const rest = field.length - carry;
      const m = Math.min(rest, buf.length);
      if (buf.compare(field, carry, carry + m, 0, m) === 0) {
        if (m === rest) n++;
        else {
          carry += m; // the whole chunk continues the field
          return 0;
        }
      }
    }
    for (let i = buf.indexOf(field); i >= 0; i = buf.indexOf(field, i + field.length)) n++;
    carry = partialField(buf, field);
    return n;
  };
}

/** How many of `field`'s first bytes `buf` ends with (0 when none): a field the next chunk may complete. */
function partialField(buf: Buffer, field: Buffer): number {
  const first = field[0];
  for (let k = Math.min(field.length - 1, buf.length); k > 0; k--) {
    if (buf[buf.length - k] === first && buf.compare(field, 0, k, buf.length - k) === 0) return k;
  }
  return 0;
}
