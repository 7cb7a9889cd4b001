// OpenAI-compatible HTTP API: /v1/models, /v1/completions, /v1/chat/completions.
// Bodies are validated, routed through the scheduler, and llama-server's answer is passed through
// as it arrives (SSE unbuffered). The daemon token is the API key.
import type { ServerResponse } from 'node:http';
import { finished, type Readable } from 'node:stream';
import { SlotwiseError, errorEnvelope, toSlotwiseError } from '../../shared/errors';
import { sendError, sendJson, type Route, type RouteContext } from '../server/http';
import { modelSlots } from '../../shared/slots';
import { dispatch, InstanceGoneError } from '../scheduler/dispatch';
import { classifyUpstreamError, postJson } from './upstream';
import { mark, serverTiming, type StageMarks } from './stage-timing';
import type { Lease, Scheduler } from '../scheduler/scheduler';
import type { Supervisor } from '../runtime/supervisor';
import type { ModelStatus } from '../../shared/protocol';
import { asObject, optBoolean, optNumber, optString, type Obj } from '../server/validate';

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
      slotwise: {
        state: m.replicas === 0 ? 'down' : m.instances.every((i) => i.state === 'ready') ? 'ready' : m.instances.map((i) => i.state).join(','),
        slots: modelSlots(m).total,
        busySlots: modelSlots(m).busy,
      },
    })),
  };
}

/** Checks the fields Slotwise relies on; other OpenAI/llama.cpp fields pass through untouched. */
export function validateBody(raw: unknown, kind: 'prompt' | 'messages', where: string, supervisor: Supervisor): { model: string; stream: boolean; body: Obj } {
  const body = asObject(raw, where);
  const model = supervisor.resolveModel(optString(body, 'model', where), where);
  const stream = optBoolean(body, 'stream', where) ?? false;
  optNumber(body, 'max_tokens', where, { integer: true, min: 1 });
  optNumber(body, 'max_completion_tokens', where, { integer: true, min: 1 });
  optNumber(body, 'n_predict', where, { integer: true, min: -1 });
  optNumber(body, 'temperature', where, { min: 0, max: 100 });
  optNumber(body, 'top_p', where, { min: 0, max: 1 });
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
    });
  } else {
    const p = body.prompt;
    const ok = typeof p === 'string' || (Array.isArray(p) && p.length > 0 && p.every((x) => typeof x === 'string' || typeof x === 'number'));
    if (!ok) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "prompt" must be a string (or an array of strings/tokens)`);
  }
  return { model, stream, body };
}

async function proxy(deps: OpenAiDeps, ctx: RouteContext, path: string, kind: 'prompt' | 'messages'): Promise<void> {
  const where = `POST ${path}`;
  const marks: StageMarks = { received: ctx.receivedAt };
  const { model, stream, body } = validateBody(await ctx.json(), kind, where, deps.supervisor);
  marks.parsed = mark();
  let ticket;
  try {
    ticket = deps.scheduler.open(model, 'http');
    marks.queued = mark();
  } catch (err) {
    const retry = (err as { retryAfterS?: number }).retryAfterS;
    return sendError(ctx.res, err, retry ? { 'Retry-After': String(retry) } : {});
  }
  const payload = JSON.stringify(body);
  try {
    await dispatch(deps.scheduler, ticket, { signal: ctx.signal }, (lease) => {
      marks.leased = mark();
      return forward(lease, path, payload, stream, ctx, marks);
    });
  } catch (err) {
    if (ctx.res.headersSent) return endAfterFirstByte(ctx.res, err, stream);
    if (ctx.signal.aborted) return; // the client is gone; nobody to tell
    sendError(ctx.res, err);
  }
}

/** Sends the request to one instance and pipes the answer to the client as it arrives. */
async function forward(lease: Lease, path: string, payload: string, stream: boolean, ctx: RouteContext, marks: StageMarks): Promise<void> {
  const inst = lease.instance;
  const upstreamRes = await postJson(inst, path, payload, stream, ctx.signal);
  marks.upstreamHeaders = mark();
  const headers: Record<string, string> = {
    'Content-Type': String(upstreamRes.headers['content-type'] ?? (stream ? 'text/event-stream' : 'application/json')),
    'Cache-Control': 'no-cache',
    'X-Slotwise-Instance': inst.id,
    'X-Slotwise-Queue-Wait-Ms': String(Math.round(lease.waitedMs)),
  };
  if (upstreamRes.statusCode >= 400) {
    // llama-server's own error (OpenAI shape already): pass it through, count the request as failed.
    const text = await upstreamRes.body.text();
    ctx.res.writeHead(upstreamRes.statusCode, headers);
    ctx.res.end(text);
    throw new SlotwiseError('SW_ERR_UPSTREAM', `[${inst.id}] answered ${upstreamRes.statusCode}: ${text.slice(0, 200)}`);
  }
  let started = false;
  try {
    await relay(upstreamRes.body, ctx.res, () => {
      started = true;
      marks.upstreamFirstByte = mark();
      headers['Server-Timing'] = serverTiming(marks);
      ctx.res.writeHead(200, headers); // the first byte: from here on a failure is reported in-band
    });
  } catch (err) {
    const e = classifyUpstreamError(err, inst.id, ctx.signal);
    if (started && e instanceof InstanceGoneError) {
      throw new SlotwiseError('SW_ERR_UPSTREAM', `[${inst.id}] llama-server stopped mid-response: ${(err as Error).message}`);
    }
    throw e;
  }
  if (!started) ctx.res.writeHead(200, { ...headers, 'Server-Timing': serverTiming(marks) });
  ctx.res.end();
}

/**
 * Writes each chunk of `body` to `res` as it arrives, `onFirst` before the first: a 'data' listener
 * rather than an async iterator, so a token costs one write and no promise. Backpressure pauses the
 * upstream; a client that leaves aborts the upstream request (its signal), which ends this with an error.
 */
function relay(body: Readable, res: ServerResponse, onFirst: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let first = true;
    const resume = (): void => void body.resume();
    body.on('data', (chunk: Buffer) => {
      if (first) {
        first = false;
        onFirst();
      }
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

/** After the first byte: SSE gets an error event then [DONE]-less end; a JSON body can only be cut. */
function endAfterFirstByte(res: ServerResponse, err: unknown, stream: boolean): void {
  if (res.writableEnded || res.destroyed) return;
  if (stream) {
    res.end(`data: ${JSON.stringify(errorEnvelope(toSlotwiseError(err)).body)}\n\n`);
  } else {
    res.destroy();
  }
}
