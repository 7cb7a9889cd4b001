// A minimal JSON-RPC 2.0 client over WebSocket for the CLI, tests and scripts.
// Every pending call fails with one coded error when the connection closes.
import WebSocket from 'ws';
import { SlotwiseError, isErrorCode } from './errors';
import type { RpcFailure, RpcMethod, RpcMethods, RpcNotification, RpcNotifications } from './protocol';

export interface RpcClientOptions {
  url: string;
  token: string;
  /** Sent as Origin; leave unset (Node clients send none). */
  origin?: string;
  connectTimeoutMs?: number;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export class RpcClient {
  #ws: WebSocket;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #listeners = new Map<string, Set<(params: never) => void>>();
  #closeListeners = new Set<(reason: string) => void>();
  readonly opened: Promise<void>;

  constructor(opts: RpcClientOptions) {
    const wsUrl = `${opts.url.replace(/^http/, 'ws')}/ws`;
    this.#ws = new WebSocket(wsUrl, {
      headers: { Authorization: `Bearer ${opts.token}`, ...(opts.origin ? { Origin: opts.origin } : {}) },
      handshakeTimeout: opts.connectTimeoutMs ?? 5000,
      maxPayload: 64 * 1024 * 1024,
    });
    this.opened = new Promise((resolve, reject) => {
      this.#ws.once('open', () => resolve());
      this.#ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => reject(errorFromHttp(res.statusCode ?? 0, body)));
      });
      this.#ws.once('error', (err) => reject(new SlotwiseError('SW_ERR_DAEMON_UNREACHABLE', `daemon not reachable at ${opts.url}: ${err.message}`, { cause: err })));
    });
    this.opened.catch(() => undefined); // callers observe the failure through call() or opened itself
    this.#ws.on('message', (data) => this.#onMessage(data.toString()));
    this.#ws.on('close', (code, reason) => {
      const why = `connection closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`;
      for (const p of this.#pending.values()) p.reject(new SlotwiseError('SW_ERR_DAEMON_UNREACHABLE', `daemon ${why}`));
      this.#pending.clear();
      for (const l of this.#closeListeners) l(why);
    });
    this.#ws.on('error', () => undefined); // reported via 'close' / opened
  }

  async call<M extends RpcMethod>(method: M, params?: RpcMethods[M]['params']): Promise<RpcMethods[M]['result']> {
    await this.opened;
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#ws.send(JSON.stringify({ jsonrpc: '2.0', id, method, params: params ?? {} }));
    });
  }

  /** Sends `text` as is (tests use it for malformed messages; a Uint8Array goes as a binary frame) and resolves with the next reply to id null or the given id. */
  async raw(text: string | Uint8Array): Promise<unknown> {
    await this.opened;
    return new Promise((resolve) => {
      const onMessage = (data: WebSocket.RawData): void => {
        const msg = JSON.parse(data.toString()) as { id?: unknown; method?: unknown };
        if (msg.method === undefined) {
          this.#ws.off('message', onMessage);
          resolve(msg);
        }
      };
      this.#ws.on('message', onMessage);
      this.#ws.send(text);
    });
  }

  on<N extends RpcNotification>(method: N, listener: (params: RpcNotifications[N]) => void): () => void {
    let set = this.#listeners.get(method);
    if (!set) this.#listeners.set(method, (set = new Set()));
    set.add(listener as (params: never) => void);
    return () => set.delete(listener as (params: never) => void);
  }

  onClose(listener: (reason: string) => void): () => void {
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  close(): void {
    this.#ws.close();
  }

  #onMessage(text: string): void {
    let msg: { id?: number; result?: unknown; error?: RpcFailure['error']; method?: string; params?: unknown };
    try {
      msg = JSON.parse(text);
    } catch {
      return; // the daemon only sends JSON; a broken frame is dropped rather than crashing the client
    }
    if (msg.method !== undefined) {
      for (const l of this.#listeners.get(msg.method) ?? []) (l as (p: unknown) => void)(msg.params);
      return;
    }
    if (typeof msg.id !== 'number') return;
    const pending = this.#pending.get(msg.id);
    if (!pending) return;
    this.#pending.delete(msg.id);
    if (msg.error) {
      const code = msg.error.data?.code;
      pending.reject(new SlotwiseError(isErrorCode(code) ? code : 'SW_ERR_BAD_REQUEST', msg.error.message));
    } else pending.resolve(msg.result);
  }
}

function errorFromHttp(status: number, body: string): SlotwiseError {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: string } };
    if (parsed.error && isErrorCode(parsed.error.code)) return new SlotwiseError(parsed.error.code, parsed.error.message ?? `HTTP ${status}`);
  } catch {
    // not our envelope: fall through to a generic message
  }
  return new SlotwiseError('SW_ERR_DAEMON_UNREACHABLE', `daemon refused the WebSocket: HTTP ${status}`);
}
