// The daemon's HTTP surface: /healthz (open), /api/*, /metrics, /v1/* (OpenAI-compatible).
// Every route but /healthz passes the guard; every error leaves through errorEnvelope().
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { SlotwiseError, errorEnvelope, quote, toSlotwiseError } from '../../shared/errors';
import { formatBytes } from '../../shared/format';
import { checkOrigin, checkToken, type GuardOptions } from './guard';
import { parseLifting, settleLifted } from './lifted-strings';
import { checkDepth } from './validate';
import type { Logger } from '../../platform/log';
import type { ErrorBody } from '../../shared/protocol';

/** Where ws.ts answers WebSocket upgrades. */
const WS_PATH = '/ws';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  /** performance.now() when the request reached the handler (its headers read), for stage timings. */
  receivedAt: number;
  /** Aborted when the client goes away before the response finished. */
  signal: AbortSignal;
  /** Reads and parses a JSON body within the configured size limit and upload deadline. */
  json(): Promise<unknown>;
  /**
   * The same, with the body's bytes as they came, for a proxy to forward without serialising the value
   * again. Long literals inside containers that `isMedia` picks (media parts) read as stand-ins in the
   * value (server/lifted-strings.ts): a photo is neither parsed into a string nor encoded back.
   */
  jsonWithBytes(isMedia: (container: unknown) => boolean): Promise<JsonBody>;
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: string;
  /** Open routes skip the token (health only). */
  open?: boolean;
  /** Errors on this path in another API's shape (Anthropic's, daemon/api/anthropic.ts); any route of a path that has one gives it to them all. */
  errorShape?: ErrorShape;
  handle(ctx: RouteContext): Promise<void> | void;
}

/** An error's body as another API writes it, from Slotwise's envelope (the status stays). */
export type ErrorShape = (status: number, body: { error: ErrorBody }) => unknown;

/** The error shape of each response's path, for sendError wherever the error is answered (the handler's catch, a route, the proxy). */
const errorShapes = new WeakMap<ServerResponse, ErrorShape>();

export interface HttpOptions {
  guard: GuardOptions;
  maxBodyBytes: number;
  /** The whole body must arrive within this many ms after the handler starts reading it (408 after). */
  bodyTimeoutMs: number;
  routes: Route[];
  logger: Logger;
  /** Graceful shutdown: aborting it ends every request still running, with its reason. */
  stop?: AbortSignal;
  /** While it returns an error, every new request is answered with it (shutdown: 503 SW_ERR_SHUTTING_DOWN). */
  refuse?: () => SlotwiseError | undefined;
}

export interface HttpHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Resolves once no request is being handled (shutdown waits for this, up to its grace). */
  settled(): Promise<void>;
}

export function createHttpHandler(opts: HttpOptions): HttpHandler {
  const running = new Set<Promise<void>>();
  const table = routeTable(opts.routes);
  // Every request in flight listens on `stop`: no listener cap (Node warns past 10, at 11 concurrent requests).
  if (opts.stop) setMaxListeners(0, opts.stop);
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const p = handle(opts, table, req, res)
      .catch((err: unknown) => {
        const e = toSlotwiseError(err);
        if (e.code === 'SW_ERR_INTERNAL') opts.logger.error(`${req.method} ${req.url}: ${e.detail ?? e.message}`);
        // A body left unread (too slow, or too large beyond what drainRefused reads) would be drained forever: answer, then drop the connection.
        if (!req.complete && !res.headersSent) {
          res.setHeader('Connection', 'close');
          res.once('finish', () => req.socket.destroy());
        }
        if (!res.headersSent) sendError(res, e);
        else res.destroy(); // mid-stream failure: the stream writer reports it in-band where it can
      })
      .finally(() => running.delete(p));
    running.add(p);
  };
  return Object.assign(handler, {
    settled: async (): Promise<void> => {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
  });
}

/** Routes by path, looked up once per request (a request's path is the hot path's first step). */
function routeTable(routes: readonly Route[]): Map<string, Route[]> {
  const table = new Map<string, Route[]>();
  for (const r of routes) table.set(r.path, [...(table.get(r.path) ?? []), r]);
  return table;
}

/** The path part of a request target (`/v1/completions?x=1` → `/v1/completions`), as URL parsing would give it. */
export function pathOf(target: string | undefined): string {
  if (!target) return '/';
  const end = target.search(/[?#]/);
  const path = end < 0 ? target : target.slice(0, end);
  // Anything a plain path is not (`//`, `..`, percent escapes, an absolute URL): WHATWG URL's reading.
  return /^(?:\/[A-Za-z0-9_-]+)*\/?$/.test(path) ? path : new URL(target, 'http://localhost').pathname;
}

async function handle(opts: HttpOptions, table: Map<string, Route[]>, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const receivedAt = performance.now();
  const pathname = pathOf(req.url);
  const denied = checkOrigin(req, opts.guard);
  if (denied) return sendError(res, denied);
  const forPath = table.get(pathname) ?? [];
  const shape = forPath.find((r) => r.errorShape)?.errorShape;
  if (shape) errorShapes.set(res, shape);
  const unauthorized = (): boolean => {
    const err = checkToken(req, opts.guard);
    if (!err) return false;
    res.setHeader('WWW-Authenticate', 'Bearer');
    sendError(res, err);
    return true;
  };
  // The token before anything about routes: without it, a caller learns nothing but that it needs one
  // (llama-server checks its key before routing too). Only a path with an open route (health) skips it.
  const openPath = forPath.some((r) => r.open);
  if (!openPath && unauthorized()) return;
  if (pathname === WS_PATH && forPath.length === 0) {
    res.setHeader('Upgrade', 'websocket');
    throw new SlotwiseError('SW_ERR_UPGRADE_REQUIRED', `${WS_PATH} is the WebSocket (JSON-RPC) endpoint — connect to it with a WebSocket client, with the token`);
  }
  if (forPath.length === 0) {
    // Named as sent: `//api/status` reads as a URL with host `api`, path /status, which would puzzle whoever sent it.
    const sent = (req.url ?? '/').split(/[?#]/)[0];
    throw new SlotwiseError('SW_ERR_NOT_FOUND', `no route ${req.method} ${sent === pathname ? pathname : `${sent} (read as ${pathname})`} — see /v1/models, /api/status, /metrics, /ws`);
  }
  // HEAD is GET without the body (Node's response leaves the body out): health probes use it.
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const route = forPath.find((r) => r.method === method);
  if (!route) {
    res.setHeader('Allow', forPath.map((r) => r.method).join(', '));
    throw new SlotwiseError('SW_ERR_METHOD_NOT_ALLOWED', `${pathname} takes ${forPath.map((r) => r.method).join(' or ')}, not ${req.method}`);
  }
  if (openPath && !route.open && unauthorized()) return;
  const refused = opts.refuse?.();
  if (refused) return sendError(res, refused);
  const abort = new AbortController();
  const onStop = (): void => abort.abort(opts.stop!.reason);
  opts.stop?.addEventListener('abort', onStop, { once: true });
  // 'close' on the response fires both on completion and on client disconnect; only the latter aborts.
  res.on('close', () => {
    opts.stop?.removeEventListener('abort', onStop);
    if (!res.writableFinished) abort.abort(new SlotwiseError('SW_ERR_CANCELLED', 'client disconnected'));
  });
  const json = async (): Promise<unknown> => (await readJsonBody(req, opts.maxBodyBytes, opts.bodyTimeoutMs)).value;
  const jsonWithBytes = (isMedia: (container: unknown) => boolean): Promise<JsonBody> => readJsonBody(req, opts.maxBodyBytes, opts.bodyTimeoutMs, isMedia);
  await route.handle({ req, res, receivedAt, signal: abort.signal, json, jsonWithBytes });
}

/**
 * Reads the body, refusing more than `limit` bytes as soon as they arrive or a body still incomplete
 * after `timeoutMs`, and parses it as JSON, refusing nesting deeper than MAX_DEPTH.
 * Content-Type is not checked: like llama-server, a plain `curl -d '{…}'` (form-encoded type) works.
 */
export async function readJsonBody(req: IncomingMessage, limit: number, timeoutMs: number, isMedia?: (container: unknown) => boolean): Promise<JsonBody> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    await drainRefused(req);
    throw tooLarge(limit);
  }
  // Decoding it would let a small compressed body grow past the limit; no OpenAI client compresses requests.
  const coding = req.headers['content-encoding']?.trim().toLowerCase();
  if (coding && coding !== 'identity') {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `request body has Content-Encoding ${quote(coding)}, which the daemon does not decode — send it uncompressed`);
  }
  const bytes = utf8Body(await readBody(req, limit, timeoutMs, declared));
  let parsed: { value: unknown; literals?: ReadonlyMap<string, Buffer> };
  try {
    parsed = isMedia ? await parseLifting(bytes) : { value: JSON.parse(bytes.toString('utf8')) };
  } catch (err) {
    if (!bytes.toString('utf8').trim()) throw new SlotwiseError('SW_ERR_BAD_REQUEST', 'request body is empty: send a JSON object');
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `request body is not valid JSON: ${(err as Error).message}`);
  }
  const { value, literals } = parsed;
  checkDepth(value, 'request body');
  const media = literals ? await settleLifted(value, literals, isMedia!) : undefined;
  return media?.size ? { value, bytes, media } : { value, bytes };
}

/** What a refused body may still send, read and dropped, before the answer: a photo or two. */
const DRAIN_BYTES = 64 * 2 ** 20;
const DRAIN_MS = 2_000;

/**
 * Reads and drops the rest of a refused body before the daemon answers: answered at once and closed,
 * the kernel meets the bytes still arriving with a reset, and a client still sending (an image over
 * limits.maxBodyBytes) sees ECONNRESET or EPIPE instead of the 413. Bounded by bytes and time, so a
 * client that never stops gets its answer anyway, and then the connection is cut.
 */
function drainRefused(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const done = (): void => {
      clearTimeout(timer);
      req.off('data', onData).off('end', done).off('error', done).off('close', done);
      req.pause();
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > DRAIN_BYTES) done();
    };
    const timer = setTimeout(done, DRAIN_MS);
    req.on('data', onData).once('end', done).once('error', done).once('close', done);
    req.resume();
  });
}

/** A parsed JSON body and the bytes it was parsed from (UTF-8, without a byte order mark). */
export interface JsonBody {
  value: unknown;
  bytes: Buffer;
  /** Each stand-in in `value` with the bytes it stands for (lifted-strings.ts), when a media literal was lifted. */
  media?: ReadonlyMap<string, Buffer>;
}

/**
 * The body's bytes. With a Content-Length (every client but a chunked upload), they are copied into
 * one buffer of that size as they arrive, so a photo's megabytes are not joined in one step at the end.
 */
function readBody(req: IncomingMessage, limit: number, timeoutMs: number, declared: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    // Pages are touched only as bytes arrive: a body declared large and never sent holds no memory.
    let whole = Number.isSafeInteger(declared) && declared > 0 ? Buffer.allocUnsafe(declared) : undefined;
    let size = 0;
    const done = (err?: Error): void => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('error', onGone).off('close', onClose);
      if (err) {
        req.pause(); // stop buffering what nobody will read; the connection is closed after the answer
        if (err instanceof SlotwiseError && err.code === 'SW_ERR_BODY_TOO_LARGE') {
          chunks.length = 0;
          void drainRefused(req).then(() => reject(err));
        } else reject(err);
      } else {
        resolve(whole ? whole.subarray(0, size) : Buffer.concat(chunks));
      }
    };
    const onData = (chunk: Buffer): void => {
      if (size + chunk.length > limit) return done(tooLarge(limit));
      if (whole && size + chunk.length > whole.length) {
        chunks.push(whole.subarray(0, size)); // more than declared (Node's parser does not let it): joined at the end
        whole = undefined;
      }
      if (whole) chunk.copy(whole, size);
      else chunks.push(chunk);
      size += chunk.length;
    };
    const onEnd = (): void => done();
    const onGone = (): void => done(new SlotwiseError('SW_ERR_CANCELLED', 'client disconnected while sending the body'));
    const onClose = (): void => {
      if (!req.complete) onGone();
    };
    const timer = setTimeout(() => {
      const secs = +(timeoutMs / 1000).toFixed(1);
      done(new SlotwiseError('SW_ERR_BODY_TIMEOUT', `request body did not arrive within ${secs} s — send it at once, or raise listen.bodyTimeoutMs in the config`));
    }, timeoutMs);
    req.on('data', onData).on('end', onEnd).on('error', onGone).on('close', onClose);
  });
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * The body checked as UTF-8. JSON is UTF-8 (RFC 8259): other bytes would reach llama-server as U+FFFD,
 * changing the prompt unseen, so they are refused; a leading BOM is dropped, as llama-server's parser does.
 */
function utf8Body(bytes: Buffer): Buffer {
  if (isUtf8(bytes)) return bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
  const at = firstInvalidUtf8(bytes);
  throw new SlotwiseError('SW_ERR_BAD_REQUEST', `request body is not UTF-8 (byte 0x${bytes[at]?.toString(16).padStart(2, '0') ?? '??'} at offset ${at}) — send JSON in UTF-8`);
}

/** Offset of the first byte that does not start a valid UTF-8 sequence (only on the error path). */
function firstInvalidUtf8(bytes: Buffer): number {
  for (let i = 0; i < bytes.length; ) {
    const c = bytes[i]!;
    const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n === 0 || i + n > bytes.length) return i;
    try {
      UTF8.decode(bytes.subarray(i, i + n)); // overlong forms and surrogates too
    } catch {
      return i;
    }
    i += n;
  }
  return bytes.length;
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
  const shape = errorShapes.get(res);
  sendJson(res, status, shape ? shape(status, body) : body);
}
