// OpenAI-compatible HTTP API: /v1/models, /v1/completions, /v1/chat/completions.
// Bodies are validated, routed through the scheduler, and llama-server's answer is passed through
// as it arrives (SSE unbuffered). The daemon token is the API key.
import type { ServerResponse } from 'node:http';
import { SlotwiseError, errorEnvelope, toSlotwiseError } from '../../shared/errors';
import { sendError, sendJson, type Route, type RouteContext } from '../server/http';
import { dispatch, InstanceGoneError } from '../scheduler/dispatch';
import { classifyUpstreamError, midResponseError, postJson, withProgress } from './upstream';
import type { Lease, Scheduler } from '../scheduler/scheduler';
import type { Supervisor } from '../runtime/supervisor';
import { asObject, optBoolean, optNumber, optString, type Obj } from '../server/validate';

export interface OpenAiDeps {
  supervisor: Supervisor;
  scheduler: Scheduler;
}

export function openAiRoutes(deps: OpenAiDeps): Route[] {
  return [
    { method: 'GET', path: '/v1/models', handle: ({ res }) => sendJson(res, 200, listModels(deps.supervisor)) },
    { method: 'POST', path: '/v1/completions', handle: (ctx) => proxy(deps, ctx, '/v1/completions', 'prompt') },
    { method: 'POST', path: '/v1/chat/completions', handle: (ctx) => proxy(deps, ctx, '/v1/chat/completions', 'messages') },
  ];
}

function listModels(supervisor: Supervisor): unknown {
  return {
    object: 'list',
    data: supervisor.models().map((m) => ({
      id: m.name,
      object: 'model',
      created: 0,
      owned_by: 'slotwise',
      slotwise: {
        state: m.replicas === 0 ? 'down' : m.instances.every((i) => i.state === 'ready') ? 'ready' : m.instances.map((i) => i.state).join(','),
        slots: m.instances.reduce((a, i) => a + (i.slots.length || m.slotsPerInstance), 0),
        busySlots: m.instances.reduce((a, i) => a + i.slots.filter((s) => s.busy).length, 0),
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
  const { model, stream, body } = validateBody(await ctx.json(), kind, where, deps.supervisor);
  let ticket;
  try {
    ticket = deps.scheduler.open(model, 'http');
  } catch (err) {
    const retry = (err as { retryAfterS?: number }).retryAfterS;
    return sendError(ctx.res, err, retry ? { 'Retry-After': String(retry) } : {});
  }
  const payload = JSON.stringify(body);
  try {
    await dispatch(deps.scheduler, ticket, { signal: ctx.signal }, (lease) => forward(lease, path, payload, stream, ctx));
  } catch (err) {
    if (ctx.res.headersSent) return endAfterFirstByte(ctx.res, err, stream);
    if (ctx.signal.aborted) return; // the client is gone; nobody to tell
    sendError(ctx.res, err);
  }
}

/** Sends the request to one instance and pipes the answer to the client as it arrives. */
async function forward(lease: Lease, path: string, payload: string, stream: boolean, ctx: RouteContext): Promise<void> {
  const inst = lease.instance;
  const upstreamRes = await postJson(inst, path, payload, stream, ctx.signal);
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
    for await (const chunk of withProgress(inst, upstreamRes.body)) {
      if (!started) {
        started = true;
        ctx.res.writeHead(200, headers); // the first byte: from here on a failure is reported in-band
      }
      if (!ctx.res.write(chunk)) await drained(ctx.res, ctx.signal);
    }
  } catch (err) {
    const e = classifyUpstreamError(err, inst, ctx.signal);
    if (started && e instanceof InstanceGoneError) throw midResponseError(e, inst.id, err);
    throw e;
  }
  if (!started) ctx.res.writeHead(200, headers);
  ctx.res.end();
}

function drained(res: ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
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
