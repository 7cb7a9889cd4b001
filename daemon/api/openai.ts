// OpenAI-compatible HTTP API: /v1/models, /v1/completions, /v1/chat/completions.
// Bodies are validated, routed through the scheduler, and llama-server's answer is passed through
// as it arrives (SSE unbuffered). The daemon token is the API key.
import type { ServerResponse } from 'node:http';
import { finished, type Readable } from 'node:stream';
import { SlotwiseError, describeValue, errorEnvelope, toSlotwiseError } from '../../shared/errors';
import { sendError, sendJson, type JsonBody, type Route, type RouteContext } from '../server/http';
import { modelSlots } from '../../shared/slots';
import { dispatch, InstanceGoneError } from '../scheduler/dispatch';
import { classifyUpstreamError, midResponseError, postJson, postStream, sseEventCounter, upstreamError, withSlot } from './upstream';
import type { StreamResponse } from './stream-upstream';
import { promptTimings, ResponseTail } from './prompt-timings';
import { promptText } from '../scheduler/prompt-key';
import { mark, serverTiming, type StageMarks } from './stage-timing';
import type { Lease, Scheduler } from '../scheduler/scheduler';
import type { Supervisor } from '../runtime/supervisor';
import type { ErrorBody, Modality, ModelStatus } from '../../shared/protocol';
import { asObject, optBoolean, optNumber, optString, type Obj } from '../server/validate';
import type { ModelConfig } from '../config/types';
import { requireModelKind, requireProjector } from './model-kind';
import { holdsMedia, mediaOf } from '../../shared/chat-content';
import { requestClass } from './request-class';
import { anySignal } from './any-signal';
import { endTokens } from '../scheduler/handoff';
import { payloadOf, type Payload, type PayloadPieces } from './payload';
import { forcedName, forceTool } from './tool-choice';
import { writeWithMedia } from '../server/lifted-strings';
import { AnswerAssembler, answerFormat, asStream, StreamErrorEvent, streamable, type AnswerFormat } from './assembled-answer';

export interface OpenAiDeps {
  supervisor: Supervisor;
  scheduler: Scheduler;
  /** Models as the status snapshot shows them (with in-flight counts), so /v1/models counts slots as status does. */
  models: () => ModelStatus[];
}

export function openAiRoutes(deps: OpenAiDeps): Route[] {
  return [
    { method: 'GET', path: '/v1/models', handle: ({ res }) => sendJson(res, 200, listModels(deps.models())) },
    { method: 'POST', path: '/v1/completions', handle: (ctx) => proxy(deps, ctx, '/v1/completions', 'prompt') },
    { method: 'POST', path: '/v1/chat/completions', handle: (ctx) => proxy(deps, ctx, '/v1/chat/completions', 'messages') },
  ];
}

function listModels(models: ModelStatus[]): unknown {
  return {
    object: 'list',
    data: models.map((m) => ({
      id: m.name,
      object: 'model',
      created: 0,
      owned_by: 'slotwise',
      // As llama-server lists a model with a projector (tools/server get_res_models), so clients offer image input.
      capabilities: [m.kind ?? 'completion', ...(m.info?.modalities?.length ? ['multimodal'] : [])],
      slotwise: {
        state: m.replicas === 0 ? 'down' : m.instances.every((i) => i.state === 'ready') ? 'ready' : m.instances.map((i) => i.state).join(','),
        slots: modelSlots(m).total,
        busySlots: modelSlots(m).busy,
        ...(m.info?.modalities ? { modalities: m.info.modalities } : {}),
      },
    })),
  };
}

/** Checks the fields Slotwise relies on; other OpenAI/llama.cpp fields pass through untouched. */
export function validateBody(raw: unknown, kind: 'prompt' | 'messages', where: string, supervisor: Supervisor): { model: string; stream: boolean; body: Obj } {
  const body = asObject(raw, where);
  const model = supervisor.resolveModel(optString(body, 'model', where), where);
  const stream = optBoolean(body, 'stream', where) ?? false;
  checkNumbers(body, where, supervisor.modelConfig(model));
  if (kind === 'messages') {
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0) {
      throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "messages" must be a non-empty array of {role, content}`);
    }
    messages.forEach((m, i) => {
      const msg = asObject(m, `${where}: messages[${i}]`);
      if (typeof msg.role !== 'string') throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: messages[${i}].role must be a string`);
      if (msg.content !== undefined && msg.content !== null && typeof msg.content !== 'string' && !Array.isArray(msg.content)) {
        throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: messages[${i}].content must be a string or an array of parts`);
      }
      if (Array.isArray(msg.content)) checkMediaParts(msg.content, `${where}: messages[${i}]`, supervisor.modelConfig(model), supervisor.modalities(model));
    });
  } else {
    const problem = promptProblem(body.prompt);
    if (problem) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: ${problem}`);
  }
  return { model, stream, body };
}

/**
 * Media parts llama-server cannot or must not serve, refused before they queue for a slot: any, for a
 * model without a projector (it would answer "image input is not supported"), and any its projector does
 * not read (an image for an audio encoder: the same answer, as a 500); and a URL it would fetch
 * itself (anything starting "http": up to 10 MB from any host the machine reaches, for anyone with the
 * token), which Slotwise does not allow, as it refuses the flags that let requests reach other hosts.
 */
function checkMediaParts(parts: readonly unknown[], where: string, model: { name: string; mmproj?: string }, modalities: readonly Modality[] | undefined): void {
  parts.forEach((part, j) => checkMediaPart(part, `${where}.content[${j}]`, model, modalities));
}

/** checkMediaParts() for one part at `where` (also the Anthropic route's image blocks, as the image parts they become). */
export function checkMediaPart(part: unknown, where: string, model: { name: string; mmproj?: string }, modalities: readonly Modality[] | undefined): void {
  const media = mediaOf(part);
  if (!media) return;
  requireProjector(model, where, media, modalities);
  const data = media.data;
  if (typeof data === 'string' && data.startsWith('http')) {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where} is ${media.what} given by URL, which llama-server would download from the network — Slotwise does not let it; send the data inline (a data: URL with base64)`);
  }
}

/**
 * Why `prompt` is not a shape llama-server reads (undefined when it is): a string, or a non-empty array
 * of strings and token ids (one prompt), token arrays or mixed arrays (a prompt each, as OpenAI's
 * `[[1, 2], [3]]`), or `{"prompt_string": …}` objects (its multimodal form).
 */
export function promptProblem(p: unknown): string | undefined {
  if (typeof p === 'string') return undefined;
  const shapes = 'a string, or an array of strings, token ids, token arrays or {"prompt_string": …} objects';
  if (!Array.isArray(p)) return `"prompt" must be ${shapes}`;
  if (p.length === 0) return '"prompt" is empty: give at least one string or token';
  for (const [i, x] of p.entries()) {
    if (typeof x === 'string' || typeof x === 'number') continue;
    if (Array.isArray(x)) {
      const j = x.findIndex((y) => typeof y !== 'string' && typeof y !== 'number');
      if (j >= 0) return `"prompt[${i}][${j}]" must be a token id or a string`;
      continue;
    }
    if (x !== null && typeof x === 'object' && typeof (x as Obj).prompt_string === 'string') continue;
    return `"prompt[${i}]" must be a string, a token id, an array of tokens, or an object with a "prompt_string" string`;
  }
  return undefined;
}

// llama-server reads these as 32-bit ints (larger values wrap: max_tokens 4294967301 means 5), and a
// token count beyond one slot's context can never be produced; so each is an integer in range here.
const INT32_MAX = 2_147_483_647;
const UINT32_MAX = 4_294_967_295;

/** Range checks for the numeric fields llama-server takes; unknown fields pass through. */
export function checkNumbers(body: Obj, where: string, model: Pick<ModelConfig, 'name' | 'ctxPerSlot'>): void {
  const ctx = model.ctxPerSlot;
  const why = `the model's context per slot, models.${model.name}.ctxPerSlot`;
  optNumber(body, 'max_tokens', where, { integer: true, min: 1, max: ctx, why });
  optNumber(body, 'max_completion_tokens', where, { integer: true, min: 1, max: ctx, why });
  optNumber(body, 'n_predict', where, { integer: true, min: -1, max: ctx, why: `-1 = until the context is full; ${why}` });
  optNumber(body, 'n_keep', where, { integer: true, min: -1, max: ctx, why });
  optNumber(body, 'n_probs', where, { integer: true, min: 0, max: 100 });
  optNumber(body, 'top_logprobs', where, { integer: true, min: 0, max: 20 });
  optNumber(body, 'top_k', where, { integer: true, min: 0, max: INT32_MAX });
  optNumber(body, 'min_keep', where, { integer: true, min: 0, max: INT32_MAX });
  optNumber(body, 'seed', where, { integer: true, min: -1, max: UINT32_MAX, why: '-1 = random' });
  optNumber(body, 'temperature', where, { min: 0, max: 100 });
  optNumber(body, 'top_p', where, { min: 0, max: 1 });
  optNumber(body, 'min_p', where, { min: 0, max: 1 });
  if (body.n !== undefined && body.n !== null && body.n !== 1) {
    // llama-server's OpenAI routes return one choice per request; ask n times instead.
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "n" must be 1 (llama-server returns one choice per request), got ${describeValue(body.n)} — send the request n times instead`);
  }
}

async function proxy(deps: OpenAiDeps, ctx: RouteContext, path: string, kind: 'prompt' | 'messages'): Promise<void> {
  await proxyToModel(deps, ctx, path, await readGeneration(deps, ctx, `POST ${path}`, kind));
}

/**
 * A completion (`prompt`) or chat (`messages`) request read and checked, as a generation and its token
 * count both read it. Validation only reads the body, so the client's own bytes go on (see
 * ProxyRequest.bytes), unless a named tool_choice narrows a chat request (bytesToSend).
 */
export async function readGeneration(deps: Pick<OpenAiDeps, 'supervisor'>, ctx: RouteContext, where: string, kind: 'prompt' | 'messages'): Promise<ProxyRequest> {
  const read = await ctx.jsonWithBytes(holdsMedia);
  const { model, stream, body } = validateBody(read.value, kind, where, deps.supervisor);
  requireModelKind(deps.supervisor, model, 'completion', where);
  return { model, stream, body, bytes: kind === 'messages' ? bytesToSend(body, read, where) : read.bytes };
}

/**
 * The bytes to send for a request read with `read`: the client's own, unless the route `edited` the
 * body or `tool_choice` names a function, which llama-server would ignore (tool-choice.ts, which
 * narrows the body to that tool). Then the body is written again, each lifted photo's bytes spliced
 * back in place of its stand-in.
 */
export function bytesToSend(body: Obj, read: JsonBody, where: string, edited = false): Buffer | PayloadPieces {
  const forced = forcedName(body.tool_choice, 'function', where);
  if (forced !== undefined) forceTool(body, forced, where);
  return forced === undefined && !edited ? read.bytes : writeWithMedia(body, read.media);
}

/** A validated request for one model, as it is forwarded to llama-server. */
export interface ProxyRequest {
  model: string;
  stream: boolean;
  body: Obj;
  /**
   * The body's bytes as the client sent them, when `body` is them parsed and left unchanged: forwarded
   * as they are instead of serialising `body` again (a long chat history costs a stringify per request
   * otherwise, and `body` holds stand-ins for its media). JSON.parse kept the last of duplicate keys,
   * as llama-server's parser does. Or, for a body the daemon wrote or edited (anthropic.ts, a named
   * tool_choice, the Responses API's easy-form items: bytesToSend), its JSON with the media's bytes
   * spliced back in place of their stand-ins (lifted-strings.ts writeWithMedia).
   */
  bytes?: Buffer | PayloadPieces;
  /** The client's API when it is not OpenAI's (anthropic.ts): `body` is then the OpenAI chat request made of it. */
  dialect?: Dialect;
  /** What marks a token's event in the answer's stream, when not every `data:` event is one (upstream.ts RESPONSES_DELTA). */
  tokenEvent?: Buffer;
}

/** How an answer of llama-server's OpenAI chat route is spoken to a client of another API. */
export interface Dialect {
  /** A translator for one streamed answer: llama-server's event bytes in, the client's events out. */
  stream(): { push(chunk: Buffer): string; end(): string };
  /** The non-streamed answer, from llama-server's (assembled) one. */
  answer(upstream: Obj): Obj;
  /** An error after a stream's first byte, as the client API's event (error answers take the route's errorShape, server/http.ts). */
  errorEvent(status: number, body: { error: ErrorBody }): string;
}

/**
 * Queues the request for a slot of `model`, forwards it to the instance it gets and pipes the answer
 * back; errors before the first byte become an error response, after it an in-band error or a cut.
 * Shared by every route that proxies to llama-server (daemon/api/infill.ts, embeddings.ts).
 */
export async function proxyToModel(deps: Pick<OpenAiDeps, 'scheduler'>, ctx: RouteContext, path: string, req: ProxyRequest): Promise<void> {
  const { model, stream, body } = req;
  const marks: StageMarks = { received: ctx.receivedAt };
  // Everything that can throw on the request itself runs before the ticket exists.
  const payload = payloadOf(req.bytes ?? JSON.stringify(body));
  // A non-streamed generation goes upstream as a stream, so a client that leaves cancels it (assembled-answer.ts).
  const format = stream ? undefined : answerFormat(path);
  const assemble = format && streamable(format, body) ? format : undefined;
  marks.parsed = mark();
  const cls = requestClass(ctx.req.headers);
  let ticket;
  try {
    // A stream's slot may be handed to the next waiter near its known end (scheduler/handoff.ts).
    const maxTokens = stream ? endTokens(body) : undefined;
    ticket = deps.scheduler.open(model, 'http', promptText(body), maxTokens !== undefined ? { ...cls, maxTokens } : cls);
    marks.queued = mark();
  } catch (err) {
    const retry = (err as { retryAfterS?: number }).retryAfterS;
    return sendError(ctx.res, err, retry ? { 'Retry-After': String(retry) } : {});
  }
  // The client leaving, or a newer request of the same session (SW_ERR_SUPERSEDED), ends it.
  const signal = anySignal([ctx.signal, ticket.signal]);
  try {
    // A stream may be handed a slot before it frees (lease.handoff): forward() then sends it at once.
    await dispatch(deps.scheduler, ticket, { signal, handoff: stream }, (lease) => {
      if (!lease.handoff) marks.leased = mark();
      return forward(lease, path, payload, { stream, assemble, body, dialect: req.dialect, tokenEvent: req.tokenEvent }, { ...ctx, signal }, marks);
    });
  } catch (err) {
    if (ctx.res.headersSent) return endAfterFirstByte(ctx.res, err, stream, req.dialect);
    if (ctx.signal.aborted && toSlotwiseError(ctx.signal.reason).code === 'SW_ERR_CANCELLED') return; // the client is gone; nobody to tell
    sendError(ctx.res, err);
  } finally {
    // An opened ticket ends with exactly one outcome whatever threw where; finish() keeps the first.
    deps.scheduler.finish(ticket, 'failed');
  }
}

/** llama-server's answer, whichever way it was fetched: a stream on its own connection, or a pooled request. */
interface Answer {
  statusCode: number;
  contentType: string | undefined;
  /** The body is llama-server's event stream (its events count the tokens decoded), not one JSON value. */
  events: boolean;
  text(): Promise<string>;
  /** Writes the body to `res` as it arrives; see relay(). */
  relay(res: ServerResponse, onChunk: (chunk: Buffer) => void, onFirst: () => void): Promise<void>;
}

/** How a request is forwarded: `stream` as the client asked; `assemble`: a non-streamed answer built from a stream. */
interface Forwarding {
  stream: boolean;
  assemble?: AnswerFormat;
  /** The request (the assembled answer depends on some of its fields). */
  body: Obj;
  dialect?: Dialect;
  tokenEvent?: Buffer;
}

async function fetchAnswer(inst: Lease['instance'], path: string, payload: Payload, how: Forwarding, signal: AbortSignal): Promise<Answer> {
  if (how.stream) {
    const up = await postStream(inst, path, payload, signal);
    const dialect = how.dialect;
    if (dialect) return { statusCode: up.statusCode, contentType: 'text/event-stream', events: true, text: () => up.text(), relay: (res, onChunk, onFirst) => relayTranslated(up, res, onChunk, onFirst, dialect.stream()) };
    return { statusCode: up.statusCode, contentType: up.headers['content-type'], events: true, text: () => up.text(), relay: (res, onChunk, onFirst) => relayStream(up, res, onChunk, onFirst) };
  }
  if (how.assemble) {
    const format = how.assemble;
    const up = await postStream(inst, path, asStream(payload, format), signal);
    return { statusCode: up.statusCode, contentType: 'application/json; charset=utf-8', events: true, text: () => up.text(), relay: (res, onChunk, onFirst) => relayAssembled(up, res, onChunk, onFirst, new AnswerAssembler(format, how.body), inst.id, how.dialect) };
  }
  const up = await postJson(inst, path, payload, false, signal);
  const type = up.headers['content-type'];
  const dialect = how.dialect;
  if (dialect) return { statusCode: up.statusCode, contentType: 'application/json; charset=utf-8', events: false, text: () => up.body.text(), relay: (res, _onChunk, onFirst) => relayMapped(up.body, res, onFirst, dialect) };
  return { statusCode: up.statusCode, contentType: type === undefined ? undefined : String(type), events: false, text: () => up.body.text(), relay: (res, onChunk, onFirst) => relay(up.body, res, onChunk, onFirst) };
}

/** Sends the request to one instance and pipes the answer to the client as it arrives. */
async function forward(lease: Lease, path: string, payload: Payload, how: Forwarding, ctx: RouteContext, marks: StageMarks): Promise<void> {
  const stream = how.stream;
  const inst = lease.instance;
  // Handed off: the lease begins when the predecessor's ends (the slot frees), usually before
  // llama-server's head, which comes with the first token: marked then, so Server-Timing's `upstream`
  // holds llama-server's own start, not `queue`. (A rejection is the successor dropped: handled below.)
  lease.handoff?.then(() => (marks.leased = mark()), () => {});
  const upstream = await fetchAnswer(inst, path, withSlot(payload, lease.slot), how, ctx.signal);
  // llama-server holds it until the slot frees; the answer we relay begins then, whatever it sent first.
  if (lease.handoff && upstream.statusCode < 400) await lease.handoff;
  marks.upstreamHeaders = mark();
  const headers: Record<string, string> = {
    'Content-Type': upstream.contentType ?? (stream ? 'text/event-stream' : 'application/json'),
    'Cache-Control': 'no-cache',
    'X-Slotwise-Instance': inst.id,
    'X-Slotwise-Queue-Wait-Ms': String(Math.round(lease.waitedMs)),
    'X-Slotwise-Queue-Position': String(lease.queuePosition),
    ...leaseHeaders(lease),
  };
  if (upstream.statusCode >= 400) {
    // llama-server's own error: answered in Slotwise's envelope with its message (see upstreamError).
    const err = upstreamError(inst.id, upstream.statusCode, await upstream.text());
    sendError(ctx.res, err, { 'X-Slotwise-Instance': inst.id, ...leaseHeaders(lease) });
    throw err;
  }
  let started = false;
  const tail = new ResponseTail();
  let events = 0;
  const countEvents = sseEventCounter(how.tokenEvent);
  try {
    await upstream.relay(ctx.res, (chunk) => {
      inst.noteProgress(); // for the stall watchdog
      tail.push(chunk);
      if (upstream.events) lease.progress((events += countEvents(chunk)));
    }, () => {
      started = true;
      marks.upstreamFirstByte = mark();
      headers['Server-Timing'] = serverTiming(marks);
      ctx.res.writeHead(200, headers); // the first byte: from here on a failure is reported in-band
    });
  } catch (err) {
    const e = classifyUpstreamError(err, inst, ctx.signal);
    if (started && e instanceof InstanceGoneError) throw midResponseError(e, inst.id, err);
    throw e;
  }
  if (!started) ctx.res.writeHead(200, { ...headers, 'Server-Timing': serverTiming(marks) });
  ctx.res.end();
  const timings = promptTimings(tail.text());
  if (timings) lease.promptTokens(timings.cached, timings.processed, timings.promptMs, timings.draft);
}

/** Which request and slot: status rows carry the same ids. */
function leaseHeaders(lease: Lease): Record<string, string> {
  return {
    'X-Slotwise-Request-Id': lease.requestId,
    ...(lease.slot !== undefined ? { 'X-Slotwise-Slot': `${lease.instance.id}/${lease.slot}` } : {}),
  };
}

/**
 * Writes each chunk of `body` to `res` as it arrives, `onFirst` before the first and `onChunk` on each
 * (cheap bookkeeping: the lease's progress, the response tail): a 'data' listener rather than an async
 * iterator, so a token costs one write and no promise. Backpressure pauses the upstream; a client that
 * leaves aborts the upstream request (its signal), which ends this with an error.
 */
function relay(body: Readable, res: ServerResponse, onChunk: (chunk: Buffer) => void, onFirst: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let first = true;
    const resume = (): void => void body.resume();
    body.on('data', (chunk: Buffer) => {
      if (first) {
        first = false;
        onFirst();
      }
      onChunk(chunk);
      if (!res.write(chunk)) {
        body.pause();
        res.once('drain', resume);
      }
    });
    finished(body, (err) => {
      res.off('drain', resume);
      if (err) reject(err);
      else resolve();
    });
  });
}

/** relay() for a stream on its own connection: the same, with the socket paused while the client is behind. */
function relayStream(up: StreamResponse, res: ServerResponse, onChunk: (chunk: Buffer) => void, onFirst: () => void): Promise<void> {
  let first = true;
  const resume = (): void => up.resume();
  return up
    .each((chunk) => {
      if (first) {
        first = false;
        onFirst();
      }
      onChunk(chunk);
      if (res.write(chunk)) return true;
      res.once('drain', resume);
      return false;
    })
    .finally(() => res.off('drain', resume));
}

/** relayStream() through a dialect's translator: the client gets its API's events, written as each chunk completes them. */
function relayTranslated(up: StreamResponse, res: ServerResponse, onChunk: (chunk: Buffer) => void, onFirst: () => void, translate: { push(chunk: Buffer): string; end(): string }): Promise<void> {
  let first = true;
  const resume = (): void => up.resume();
  const write = (text: string): boolean => {
    if (!text) return true;
    if (first) {
      first = false;
      onFirst();
    }
    return res.write(text);
  };
  return up
    .each((chunk) => {
      onChunk(chunk);
      if (write(translate.push(chunk))) return true;
      res.once('drain', resume);
      return false;
    })
    .then(() => void write(translate.end()))
    .finally(() => res.off('drain', resume));
}

/**
 * relayStream() for a non-streamed answer assembled from the stream: the client gets it whole at the
 * end, as from llama-server without `stream`. An error event becomes llama-server's error answer.
 */
async function relayAssembled(up: StreamResponse, res: ServerResponse, onChunk: (chunk: Buffer) => void, onFirst: () => void, answer: AnswerAssembler, instance: string, dialect?: Dialect): Promise<void> {
  try {
    await up.each((chunk) => {
      onChunk(chunk);
      answer.push(chunk);
      return true;
    });
  } catch (err) {
    throw err instanceof StreamErrorEvent ? upstreamError(instance, err.status, err.body) : err;
  }
  writeWhole(res, dialect ? dialect.answer(answer.answer()) : answer.answer(), onFirst);
}

/** A whole JSON answer in a dialect's shape (anthropic.ts: a token count). */
async function relayMapped(body: Readable & { text(): Promise<string> }, res: ServerResponse, onFirst: () => void, dialect: Dialect): Promise<void> {
  writeWhole(res, dialect.answer(JSON.parse(await body.text()) as Obj), onFirst);
}

/** A JSON answer written in one piece, its length known: `onFirst` (the head) just before it. */
function writeWhole(res: ServerResponse, answer: unknown, onFirst: () => void): void {
  const body = JSON.stringify(answer);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  onFirst();
  res.write(body);
}

/** After the first byte: SSE gets an error event then [DONE]-less end; a JSON body can only be cut. */
function endAfterFirstByte(res: ServerResponse, err: unknown, stream: boolean, dialect: Dialect | undefined): void {
  if (res.writableEnded || res.destroyed) return;
  if (stream) {
    const { status, body } = errorEnvelope(toSlotwiseError(err));
    res.end(dialect ? dialect.errorEvent(status, body) : `data: ${JSON.stringify(body)}\n\n`);
  } else {
    res.destroy();
  }
}
