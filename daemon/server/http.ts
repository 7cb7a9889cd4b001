// The daemon's HTTP surface: /healthz (open), /api/*, /metrics, /v1/* (OpenAI-compatible).
// Every route but /healthz passes the guard; every error leaves through errorEnvelope().
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { SlotwiseError, errorEnvelope, toSlotwiseError } from '../../shared/errors';
import { formatBytes } from '../../shared/format';
import { checkOrigin, checkToken, type GuardOptions } from './guard';
import type { Logger } from '../../platform/log';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** performance.now() when the request reached the handler (its headers read), for stage timings. */
  receivedAt: number;
  /** Aborted when the client goes away before the response finished. */
  signal: AbortSignal;
  /** Reads and parses a JSON body within the configured size limit. */
  json(): Promise<unknown>;
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  /** Open routes skip the token (health only). */
  open?: boolean;
  handle(ctx: RouteContext): Promise<void> | void;
}

export interface HttpOptions {
  guard: GuardOptions;
  maxBodyBytes: number;
  routes: Route[];
  logger: Logger;
}

export function createHttpHandler(opts: HttpOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    void handle(opts, req, res).catch((err: unknown) => {
      const e = toSlotwiseError(err);
      if (e.code === 'SW_ERR_INTERNAL') opts.logger.error(`${req.method} ${req.url}: ${e.detail ?? e.message}`);
      if (!res.headersSent) sendError(res, e);
      else res.destroy(); // mid-stream failure: the stream writer reports it in-band where it can
    });
  };
}

async function handle(opts: HttpOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const receivedAt = performance.now();
  const url = new URL(req.url ?? '/', 'http://localhost');
  const denied = checkOrigin(req, opts.guard);
  if (denied) return sendError(res, denied);
  const forPath = opts.routes.filter((r) => r.path === url.pathname);
  if (forPath.length === 0) {
    throw new SlotwiseError('SW_ERR_NOT_FOUND', `no route ${req.method} ${url.pathname} — see /v1/models, /api/status, /metrics, /ws`);
  }
  const route = forPath.find((r) => r.method === req.method);
  if (!route) {
    res.setHeader('Allow', forPath.map((r) => r.method).join(', '));
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${url.pathname} takes ${forPath.map((r) => r.method).join(' or ')}, not ${req.method}`);
  }
  if (!route.open) {
    const unauthorized = checkToken(req, opts.guard);
    if (unauthorized) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      return sendError(res, unauthorized);
    }
  }
  const abort = new AbortController();
  // 'close' on the response fires both on completion and on client disconnect; only the latter aborts.
  res.on('close', () => {
    if (!res.writableFinished) abort.abort(new SlotwiseError('SW_ERR_CANCELLED', 'client disconnected'));
  });
  await route.handle({ req, res, url, receivedAt, signal: abort.signal, json: () => readJsonBody(req, opts.maxBodyBytes) });
}

/**
 * Reads the body, refusing more than `limit` bytes as soon as they arrive, and parses it as JSON.
 * Content-Type is not checked: like llama-server, a plain `curl -d '{…}'` (form-encoded type) works.
 */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) throw new SlotwiseError('SW_ERR_BAD_REQUEST', 'request body is empty: send a JSON object');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

function tooLarge(limit: number): SlotwiseError {
  return new SlotwiseError('SW_ERR_BODY_TOO_LARGE', `request body is larger than ${formatBytes(limit, { digits: 1, trim: true })} — send less, or raise limits.maxBodyBytes in the config`);
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(data), 'Cache-Control': 'no-store' });
  res.end(data);
}

export function sendError(res: ServerResponse, err: unknown, extraHeaders: Record<string, string> = {}): void {
  const { status, body } = errorEnvelope(err);
  for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
  sendJson(res, status, body);
}
