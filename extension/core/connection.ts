// The extension's one link to the daemon: find it, connect with the token, check the protocol, subscribe
// to status, and on any loss reconnect with backoff + jitter. Auto-starts a daemon at most once per episode.
// vscode-free so the unit tests drive it against a real daemon.
import type { RpcClient } from '../../shared/rpc-client';
import { SlotwiseError, toSlotwiseError } from '../../shared/errors';
import type { ErrorCode, ProtocolVersion, RpcMethod, RpcMethods, RpcNotification, RpcNotifications, Snapshot } from '../../shared/protocol';
import { backoffDelay, type BackoffOptions } from './backoff';
import { Emitter } from './emitter';
import { LocateError, type Endpoint } from './endpoint';

const PROTOCOL: ProtocolVersion = 1;

export type ConnectionState =
  | { kind: 'connecting'; attempt: number; starting?: boolean }
  | { kind: 'connected'; url: string; version: string }
  | { kind: 'disconnected'; code: ErrorCode; message: string; attempt: number; retryInMs: number; startFailed?: boolean }
  | { kind: 'closed' };

export type JobNotification = Exclude<RpcNotification, 'status'>;
/** A job notification as one tagged value. */
export type JobEvent = { [N in JobNotification]: { method: N; params: RpcNotifications[N] } }[JobNotification];
const JOB_NOTIFICATIONS: JobNotification[] = ['job.queued', 'job.started', 'job.delta', 'job.end', 'job.error'];

/** The log the connection writes to (the vscode layer passes the LogOutputChannel). */
export interface ConnectionLog {
  info(msg: string): void;
  warn(msg: string): void;
  debug(msg: string): void;
}

/** The slice of RpcClient the connection uses; tests may pass a fake. */
export type RpcLink = Pick<RpcClient, 'opened' | 'call' | 'on' | 'onClose' | 'close'>;

export interface ConnectionOptions {
  /** Finds the daemon; throws LocateError('absent') when none runs. */
  locate: () => Promise<Endpoint>;
  /** Starts a daemon; called when none is found, auto-start is on, and it was not tried this episode. */
  startDaemon?: () => Promise<void>;
  /** Read on each use so a settings change applies at once. Default: never auto-start. */
  autoStart?: () => boolean;
  backoff?: BackoffOptions;
  /** Sent in daemon.hello. */
  clientName?: string;
  log: ConnectionLog;
  createClient?: (ep: Endpoint) => RpcLink | Promise<RpcLink>;
  random?: () => number;
}

/** Loaded on first connect, not at activation: `ws` is most of the bundle's load time. */
async function defaultClient(ep: Endpoint): Promise<RpcLink> {
  const { RpcClient } = await import('../../shared/rpc-client');
  return new RpcClient({ url: ep.url, token: ep.token });
}

/** Connects in the background and keeps connected; `call` fails fast with SW_ERR_DAEMON_UNREACHABLE while down. */
export class DaemonConnection {
  readonly onState: Emitter<ConnectionState>;
  readonly onSnapshot: Emitter<Snapshot>;
  readonly onJobEvent: Emitter<JobEvent>;
  /** After every (re)connect, once subscribed: re-attach jobs here. */
  readonly onConnected: Emitter<void>;
  #opts: ConnectionOptions;
  #state: ConnectionState = { kind: 'connecting', attempt: 0 };
  #client: RpcLink | undefined;
  #snapshot: Snapshot | undefined;
  /** Where the connected daemon is; plain HTTP requests (inline completions' /infill) use it. */
  #endpoint: Endpoint | undefined;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #connecting: Promise<void> | undefined;
  /** Auto-start is tried once per episode: from start() or reconnectNow({allowAutoStart}) until connected. */
  #autoStartAllowed = true;
  /** Set when this attempt's auto-start failed; reported once in the disconnected state. */
  #startFailed = false;

  constructor(opts: ConnectionOptions) {
    this.#opts = opts;
    const onError = (err: unknown): void => opts.log.warn(`listener failed: ${toSlotwiseError(err).message}`);
    this.onState = new Emitter(onError);
    this.onSnapshot = new Emitter(onError);
    this.onJobEvent = new Emitter(onError);
    this.onConnected = new Emitter(onError);
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The last snapshot while connected. */
  get snapshot(): Snapshot | undefined {
    return this.#state.kind === 'connected' ? this.#snapshot : undefined;
  }

  /** The daemon's URL and token while connected. */
  get endpoint(): Endpoint | undefined {
    return this.#state.kind === 'connected' ? this.#endpoint : undefined;
  }

  /** Begins connecting in the background; returns at once. */
  start(): void {
    this.#connectSoon(0);
  }

  /** Drops any wait and tries now (after Start Daemon, a settings change). */
  reconnectNow(opts: { allowAutoStart?: boolean; dropCurrent?: boolean } = {}): void {
    if (this.#state.kind === 'closed') return;
    if (opts.allowAutoStart) this.#autoStartAllowed = true;
    if (opts.dropCurrent && this.#client) {
      const client = this.#client;
      this.#client = undefined;
      client.close();
    }
    this.#attempt = 0;
    this.#connectSoon(0);
  }

  /** No auto-start until the user asks again (after Stop Daemon). */
  suppressAutoStart(): void {
    this.#autoStartAllowed = false;
  }

  async call<M extends RpcMethod>(method: M, params?: RpcMethods[M]['params']): Promise<RpcMethods[M]['result']> {
    const client = this.#client;
    if (!client || this.#state.kind !== 'connected') {
      throw new SlotwiseError('SW_ERR_DAEMON_UNREACHABLE', 'Slotwise daemon not connected — start it with "Slotwise: Start Daemon"');
    }
    return client.call(method, params);
  }

  /** Stops reconnecting and closes the socket; resolves once closed. */
  async close(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const client = this.#client;
    this.#client = undefined;
    this.#setState({ kind: 'closed' });
    if (client) {
      const closed = new Promise<void>((resolve) => {
        client.onClose(() => resolve());
        setTimeout(resolve, 1000).unref?.(); // a socket that never confirms must not block deactivate
      });
      client.close();
      await closed;
    }
    await this.#connecting?.catch(() => undefined); // its failure was already reported through state
  }

  #connectSoon(delayMs: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    const run = (): void => {
      if (this.#client || this.#state.kind === 'closed') return;
      if (this.#connecting) {
        void this.#connecting.then(run); // one attempt at a time; try again once it settled
        return;
      }
      this.#connecting = this.#connect().finally(() => (this.#connecting = undefined));
    };
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      run();
    }, delayMs);
    this.#timer.unref?.();
  }

  async #connect(): Promise<void> {
    this.#setState({ kind: 'connecting', attempt: this.#attempt });
    let client: RpcLink | undefined;
    try {
      const ep = await this.#locateOrStart();
      if (this.#state.kind === 'closed') return;
      client = await (this.#opts.createClient ?? defaultClient)(ep);
      const c = client;
      // Listeners go on before the first call so no notification of this connection is missed.
      c.on('status', ({ snapshot }) => {
        if (this.#client !== c) return;
        this.#snapshot = snapshot;
        this.onSnapshot.fire(snapshot);
      });
      for (const method of JOB_NOTIFICATIONS) {
        c.on(method, (params) => {
          if (this.#client === c) this.onJobEvent.fire({ method, params } as JobEvent);
        });
      }
      c.onClose((reason) => this.#onClosed(c, reason));
      await c.opened;
      const hello = await c.call('daemon.hello', { protocol: PROTOCOL, client: this.#opts.clientName ?? 'slotwise-vscode' });
      if (hello.protocol !== PROTOCOL) {
        throw new SlotwiseError('SW_ERR_PROTOCOL_MISMATCH', `daemon ${hello.version} speaks protocol ${hello.protocol}, this extension ${PROTOCOL} — update the older side`);
      }
      this.#client = c;
      const snapshot = await c.call('status.subscribe');
      if (this.#client !== c) return; // closed while subscribing: #onClosed already scheduled a retry
      this.#snapshot = snapshot;
      this.#endpoint = ep;
      this.#attempt = 0;
      this.#autoStartAllowed = false;
      this.#opts.log.info(`connected to ${ep.url} (daemon ${hello.version}, protocol ${hello.protocol})`);
      this.#setState({ kind: 'connected', url: ep.url, version: hello.version });
      this.onSnapshot.fire(snapshot);
      this.onConnected.fire();
    } catch (err) {
      if (client && this.#client === client) this.#client = undefined;
      client?.close();
      if (this.#state.kind === 'closed') return;
      this.#fail(toSlotwiseError(err));
    }
  }

  async #locateOrStart(): Promise<Endpoint> {
    try {
      return await this.#opts.locate();
    } catch (err) {
      const canStart = err instanceof LocateError && err.reason === 'absent' && this.#opts.startDaemon && (this.#opts.autoStart?.() ?? false);
      if (!canStart || !this.#autoStartAllowed) throw err;
      this.#autoStartAllowed = false;
      this.#opts.log.info(`${err.message}; starting one (slotwise.autoStartDaemon is on)`);
      this.#setState({ kind: 'connecting', attempt: this.#attempt, starting: true });
      try {
        await this.#opts.startDaemon!();
        return await this.#opts.locate();
      } catch (startErr) {
        // Another window may have won the race to start it (ours then fails on the port or the state dir).
        const winner = await this.#opts.locate().catch(() => undefined);
        if (winner) return winner;
        this.#startFailed = true;
        throw startErr;
      }
    }
  }

  #onClosed(client: RpcLink, reason: string): void {
    // During the handshake the pending call rejects and #connect's catch reports the loss.
    if (this.#client !== client || this.#state.kind !== 'connected') return;
    this.#client = undefined;
    this.#fail(new SlotwiseError('SW_ERR_DAEMON_UNREACHABLE', `daemon ${reason}`));
  }

  #fail(err: SlotwiseError): void {
    const startFailed = this.#startFailed;
    this.#startFailed = false;
    const retryInMs = backoffDelay(this.#attempt, this.#opts.backoff, this.#opts.random);
    const line = `${err.message}; retrying in ${(retryInMs / 1000).toFixed(1)} s`;
    if (this.#attempt === 0) this.#opts.log.warn(line);
    else this.#opts.log.debug(`attempt ${this.#attempt}: ${line}`);
    this.#setState({ kind: 'disconnected', code: err.code, message: err.message, attempt: this.#attempt, retryInMs, ...(startFailed ? { startFailed } : {}) });
    this.#attempt++;
    this.#connectSoon(retryInMs);
  }

  #setState(state: ConnectionState): void {
    this.#state = state;
    this.onState.fire(state);
  }
}
