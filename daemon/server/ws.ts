// WebSocket JSON-RPC 2.0 on /ws: framing, auth at upgrade, dispatch to a method table, notifications.
// A bad message gets an error reply; the connection and the daemon stay up.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { SlotwiseError, errorEnvelope, toSlotwiseError } from '../../shared/errors';
import { checkOrigin, checkToken, type GuardOptions } from './guard';
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

export type RpcHandler<M extends RpcMethod> = (params: unknown, conn: RpcConnection) => Promise<RpcMethods[M]['result']> | RpcMethods[M]['result'];
export type RpcHandlers = { [M in RpcMethod]?: RpcHandler<M> };

export interface WsOptions {
  guard: GuardOptions;
  handlers: RpcHandlers;
  maxPayload: number;
  logger: Logger;
}

const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INVALID_PARAMS = -32602;
const INTERNAL = -32603;
const APP_ERROR = -32000;

/** Wires /ws upgrades on the HTTP server. Returns a close function that ends every connection. */
export function attachWebSocket(server: Server, opts: WsOptions): { close(): void; connections(): number } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayload });
  let nextId = 1;

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const denied = path !== '/ws' ? new SlotwiseError('SW_ERR_NOT_FOUND', `no WebSocket endpoint at ${path}; use /ws`) : (checkOrigin(req, opts.guard) ?? checkToken(req, opts.guard));
    if (denied) return refuseUpgrade(socket, denied);
    wss.handleUpgrade(req, socket, head, (ws) => serve(ws, nextId++, opts));
  });

  return {
    close: () => {
      for (const ws of wss.clients) ws.close(1001, 'daemon stopping');
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
  const send = (msg: unknown): void => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };
  const conn: RpcConnection = {
    id,
    notify: (method, params) => send({ jsonrpc: '2.0', method, params }),
    onClose: (fn) => (closed ? fn() : closers.push(fn)),
    get closed() {
      return closed;
    },
  };
  ws.on('close', () => {
    closed = true;
    for (const fn of closers.splice(0)) {
      try {
        fn();
      } catch (err) {
        opts.logger.warn(`ws#${id} close handler failed: ${(err as Error).message}`); // one failing cleanup must not skip the rest
      }
    }
  });
  ws.on('error', (err) => opts.logger.debug(`ws#${id} error: ${err.message}`));
  ws.on('message', (data, isBinary) => {
    void handleMessage(isBinary ? '' : data.toString(), conn, opts).then((reply) => reply && send(reply));
  });
}

async function handleMessage(text: string, conn: RpcConnection, opts: WsOptions): Promise<unknown> {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch (err) {
    return failure(null, PARSE_ERROR, `parse error: ${(err as Error).message || 'binary frames are not accepted'}`);
  }
  if (Array.isArray(msg)) return failure(null, INVALID_REQUEST, 'batch requests are not supported: send one request per message');
  if (!msg || typeof msg !== 'object') return failure(null, INVALID_REQUEST, 'invalid request: expected a JSON-RPC 2.0 object');
  const m = msg as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: unknown };
  const id = typeof m.id === 'string' || typeof m.id === 'number' ? m.id : null;
  if (m.jsonrpc !== '2.0') return failure(id, INVALID_REQUEST, 'invalid request: "jsonrpc" must be "2.0"');
  if (typeof m.method !== 'string') return failure(id, INVALID_REQUEST, 'invalid request: "method" must be a string');
  const isNotification = m.id === undefined;
  const handler = opts.handlers[m.method as RpcMethod] as RpcHandler<RpcMethod> | undefined;
  if (!handler) {
    if (isNotification) return undefined;
    const known = Object.keys(opts.handlers).sort().join(', ');
    return failure(id, METHOD_NOT_FOUND, `unknown method "${m.method}" — known methods: ${known}`);
  }
  if (m.params !== undefined && (typeof m.params !== 'object' || m.params === null)) {
    return failure(id, INVALID_PARAMS, `invalid params for ${m.method}: expected an object`);
  }
  try {
    const result = await handler(m.params ?? {}, conn);
    return isNotification ? undefined : { jsonrpc: '2.0', id, result };
  } catch (err) {
    const e = toSlotwiseError(err);
    if (e.code === 'SW_ERR_INTERNAL') opts.logger.error(`ws#${conn.id} ${m.method}: ${e.detail ?? e.message}`);
    if (isNotification) return undefined;
    const code = e.code === 'SW_ERR_BAD_REQUEST' ? INVALID_PARAMS : e.code === 'SW_ERR_INTERNAL' ? INTERNAL : APP_ERROR;
    const data = e.toBody();
    delete data.detail;
    return { jsonrpc: '2.0', id, error: { code, message: e.message, data } } satisfies RpcFailure;
  }
}

function failure(id: number | string | null, code: number, message: string): RpcFailure {
  return { jsonrpc: '2.0', id, error: { code, message } };
}
