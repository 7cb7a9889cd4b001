// WebSocket JSON-RPC 2.0 on /ws: framing, auth at upgrade, dispatch to a method table, notifications.
// A bad message gets an error reply; the connection and the daemon stay up. Liveness and memory are
// bounded per peer: a heartbeat drops peers that stopped answering, and a peer that stops reading gets
// its status pushes coalesced, then is closed, instead of growing the daemon's send buffer forever.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { SlotwiseError, errorEnvelope, oneLine, quote, toSlotwiseError } from '../../shared/errors';
import { checkOrigin, checkToken, type GuardOptions } from './guard';
import { checkDepth } from './validate';
import { parseLifting, settleLifted } from './lifted-strings';
import { holdsMedia } from '../../shared/chat-content';
import { isWebSocketUpgrade } from './ignore-upgrade';
import type { Logger } from '../../platform/log';
import type { RpcFailure, RpcMethod, RpcMethods, RpcNotification, RpcNotifications } from '../../shared/protocol';

/** One client connection as the method handlers see it. */
export interface RpcConnection {
  readonly id: number;
  notify<N extends RpcNotification>(method: N, params: RpcNotifications[N]): void;
  /** Runs when the connection closes (unsubscribe, detach jobs). */
  onClose(fn: () => void): void;
  readonly closed: boolean;
}

/** What a message carried beside its params: the photos lifted out of it (server/lifted-strings.ts), by the stand-in each reads as in the params. */
export interface RpcExtras {
  media: ReadonlyMap<string, Buffer>;
}

export type RpcHandler<M extends RpcMethod> = (params: unknown, conn: RpcConnection, extras: RpcExtras) => Promise<RpcMethods[M]['result']> | RpcMethods[M]['result'];
export type RpcHandlers = { [M in RpcMethod]?: RpcHandler<M> };

export interface WsOptions {
  guard: GuardOptions;
  handlers: RpcHandlers;
  maxPayload: number;
  logger: Logger;
  /** Ping period; a peer that misses two pongs in a row is dropped. Default 30 s. */
  heartbeatMs?: number;
  /** Unsent bytes above which `status` pushes to that peer are coalesced to the latest. Default 8 MiB. */
  softBufferBytes?: number;
  /** Unsent bytes above which the peer is closed (1008). Default 64 MiB. */
  hardBufferBytes?: number;
  /** Serves a request whose Upgrade is not to WebSocket (`h2c`) as plain HTTP (ignore-upgrade.ts). */
  plain?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
}

const MIB = 1024 * 1024;
/** Notifications where only the latest matters: a slow reader gets the newest one once it catches up. */
const COALESCED = new Set<string>(['status']);

const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INVALID_PARAMS = -32602;
const INTERNAL = -32603;
const APP_ERROR = -32000;

/** How long a client has on shutdown to answer the close frame before its connection is cut. */
const CLOSE_GRACE_MS = 1000;

/** Wires /ws upgrades on the HTTP server. Returns a close function that ends every connection. */
export function attachWebSocket(server: Server, opts: WsOptions): { close(): void; connections(): number } {
  // autoPong off: ws terminates a peer with more than 60 unsent automatic pongs, so a burst of pings
  // dropped well-behaved clients; serve() answers pings itself, the latest one once the last is sent.
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload, autoPong: false });
  let nextId = 1;
  const missed = new Map<WebSocket, number>();
  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      const n = missed.get(ws) ?? 0;
      if (n >= 2) {
        opts.logger.info('ws peer missed 2 heartbeats: dropping it');
        ws.terminate();
        continue;
      }
      missed.set(ws, n + 1);
      ws.ping();
    }
  }, opts.heartbeatMs ?? 30_000);
  heartbeat.unref();
  wss.on('connection', (ws: WebSocket) => {
    missed.set(ws, 0);
    ws.on('pong', () => missed.set(ws, 0));
    ws.on('close', () => missed.delete(ws));
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (opts.plain && !isWebSocketUpgrade(req)) return opts.plain(req, socket, head);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    // Token before path, as http.ts does: without it a caller learns nothing of which paths exist.
    const denied =
      checkOrigin(req, opts.guard) ??
      checkToken(req, opts.guard) ??
      (path !== '/ws' ? new SlotwiseError('SW_ERR_NOT_FOUND', `no WebSocket endpoint at ${path}; use /ws`) : undefined);
    if (denied) return refuseUpgrade(socket, denied);
    wss.handleUpgrade(req, socket, head, (ws) => {
      wss.emit('connection', ws, req);
      serve(ws, nextId++, opts);
    });
  });

  return {
    close: () => {
      clearInterval(heartbeat);
      for (const ws of wss.clients) ws.close(1001, 'daemon stopping');
      // A client that never answers the close frame would hold the daemon's exit for ws's 30 s closeTimeout.
      setTimeout(() => {
        for (const ws of wss.clients) ws.terminate();
      }, CLOSE_GRACE_MS).unref();
      wss.close();
    },
    connections: () => wss.clients.size,
  };
}

function refuseUpgrade(socket: Duplex, err: SlotwiseError): void {
  const { status, body } = errorEnvelope(err);
  const data = JSON.stringify(body);
  const reason = status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Not Found';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(data)}\r\nConnection: close\r\n\r\n${data}`,
  );
}

function serve(ws: WebSocket, id: number, opts: WsOptions): void {
  const closers: (() => void)[] = [];
  let closed = false;
  const soft = opts.softBufferBytes ?? 8 * MIB;
  const hard = opts.hardBufferBytes ?? 64 * MIB;
  /** Coalesced notifications waiting for the peer to read, by method: only the latest is kept. */
  const held = new Map<string, unknown>();
  let flushTimer: NodeJS.Timeout | undefined;
  const send = (msg: unknown): void => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(JSON.stringify(msg));
    if (ws.bufferedAmount > hard) {
      opts.logger.warn(`ws#${id} has ${Math.round(ws.bufferedAmount / MIB)} MiB unread: closing it`);
      ws.close(1008, 'too much unread data: the client stopped reading');
      setTimeout(() => ws.terminate(), 1000).unref(); // its close frame waits behind the unread data
    }
  };
  const flush = (): void => {
    flushTimer = undefined;
    if (ws.readyState !== ws.OPEN) return held.clear();
    if (ws.bufferedAmount > soft) {
      flushTimer = setTimeout(flush, 100);
      return;
    }
    for (const [method, params] of held) send({ jsonrpc: '2.0', method, params });
    held.clear();
  };
  const conn: RpcConnection = {
    id,
    notify: (method, params) => {
      if (COALESCED.has(method) && (ws.bufferedAmount > soft || held.has(method))) {
        held.set(method, params);
        flushTimer ??= setTimeout(flush, 100);
        return;
      }
      send({ jsonrpc: '2.0', method, params });
    },
    onClose: (fn) => (closed ? fn() : closers.push(fn)),
    get closed() {
      return closed;
    },
  };
  // Pong for the latest ping only (RFC 6455 §5.5.3 allows it): a ping flood costs one pong in flight.
  let pongInFlight = false;
  let nextPong: Buffer | undefined;
  const pong = (data: Buffer): void => {
    if (pongInFlight) {
      nextPong = data;
      return;
    }
    pongInFlight = true;
    ws.pong(data, false, () => {
      pongInFlight = false;
      const next = nextPong;
      nextPong = undefined;
      if (next && ws.readyState === ws.OPEN) pong(next);
    });
  };
  ws.on('ping', pong);
  ws.on('close', () => {
    closed = true;
    clearTimeout(flushTimer);
    held.clear();
    for (const fn of closers.splice(0)) {
      try {
        fn();
      } catch (err) {
        opts.logger.warn(`ws#${id} close handler failed: ${(err as Error).message}`); // one failing cleanup must not skip the rest
      }
    }
  });
  ws.on('error', (err) => {
    // ws closes such a peer with 1009 and no reason: the log says which limit it hit.
    if ((err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') opts.logger.info(`ws#${id} sent a message over ${opts.maxPayload} bytes (limits.maxBodyBytes): closed it (1009)`);
    else opts.logger.debug(`ws#${id} error: ${err.message}`);
  });
  ws.on('message', (data, isBinary) => {
    if (isBinary) return send(failure(null, PARSE_ERROR, 'binary frames are not accepted: send JSON-RPC as text frames'));
    void handleMessage(toBuffer(data), conn, opts).then((reply) => reply && send(reply));
  });
}

function toBuffer(data: RawData): Buffer {
  return Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

async function handleMessage(data: Buffer, conn: RpcConnection, opts: WsOptions): Promise<unknown> {
  // A photo in a prompt.submit (`slotwise prompt --image`, Ask About Image) is lifted out before the
  // parse, as on the HTTP side: ws has checked the frame is UTF-8.
  let parsed: Awaited<ReturnType<typeof parseLifting>>;
  try {
    parsed = await parseLifting(data);
  } catch (err) {
    return failure(null, PARSE_ERROR, `parse error: ${(err as Error).message}`);
  }
  const { value: msg, literals } = parsed;
  // The id is read (top level only, no recursion) before the depth check, so a client waiting on it
  // gets its answer even when the params nest too deep.
  const m = (msg !== null && typeof msg === 'object' && !Array.isArray(msg) ? msg : {}) as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
  const id = typeof m.id === 'string' || typeof m.id === 'number' ? m.id : null;
  try {
    checkDepth(msg, 'message');
  } catch (err) {
    return failure(id, INVALID_REQUEST, (err as Error).message);
  }
  const media = literals ? await settleLifted(msg, literals, holdsMedia) : NO_MEDIA;
  if (Array.isArray(msg)) return failure(null, INVALID_REQUEST, 'batch requests are not supported: send one request per message');
  if (!msg || typeof msg !== 'object') return failure(null, INVALID_REQUEST, 'invalid request: expected a JSON-RPC 2.0 object');
  if (m.jsonrpc !== '2.0') return failure(id, INVALID_REQUEST, 'invalid request: "jsonrpc" must be "2.0"');
  if (typeof m.method !== 'string') return failure(id, INVALID_REQUEST, 'invalid request: "method" must be a string');
  const isNotification = m.id === undefined;
  // Own properties only: "constructor", "toString" or "__proto__" must not reach Object.prototype.
  const handler = Object.hasOwn(opts.handlers, m.method) ? (opts.handlers[m.method as RpcMethod] as RpcHandler<RpcMethod> | undefined) : undefined;
  if (typeof handler !== 'function') {
    if (isNotification) return undefined;
    const known = Object.keys(opts.handlers).sort().join(', ');
    const err = new SlotwiseError('SW_ERR_METHOD_NOT_FOUND', `unknown method ${quote(m.method)} — known methods: ${known}`);
    return { jsonrpc: '2.0', id, error: { code: METHOD_NOT_FOUND, message: err.message, data: errorEnvelope(err).body.error } } satisfies RpcFailure;
  }
  if (m.params !== undefined && (typeof m.params !== 'object' || m.params === null)) {
    if (isNotification) return undefined; // JSON-RPC 2.0: a notification is never answered, not even with an error
    return failure(id, INVALID_PARAMS, `invalid params for ${m.method}: expected an object`);
  }
  try {
    const result = await handler(m.params ?? {}, conn, { media });
    return isNotification ? undefined : { jsonrpc: '2.0', id, result };
  } catch (err) {
    const e = toSlotwiseError(err);
    if (e.code === 'SW_ERR_INTERNAL') opts.logger.error(`ws#${conn.id} ${m.method}: ${e.detail ?? e.message}`);
    if (isNotification) return undefined;
    const code = e.code === 'SW_ERR_BAD_REQUEST' ? INVALID_PARAMS : e.code === 'SW_ERR_INTERNAL' ? INTERNAL : APP_ERROR;
    const data = errorEnvelope(e).body.error; // one line, no detail
    return { jsonrpc: '2.0', id, error: { code, message: data.message, data } } satisfies RpcFailure;
  }
}

const NO_MEDIA: ReadonlyMap<string, Buffer> = new Map();

function failure(id: number | string | null, code: number, message: string): RpcFailure {
  return { jsonrpc: '2.0', id, error: { code, message: oneLine(message) } };
}
