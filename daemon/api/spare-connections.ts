// One spare, already-connected socket per llama-server, so a stream's TCP connect is not on its
// time to first byte. llama-server closes the connection after every streamed response (its
// content provider reports the stream's end as a cancel: vendor/cpp-httplib, write_content_chunked),
// so every stream needs a fresh connection; with a spare, the next one is opened while this one runs.
import { connect as netConnect, type Socket } from 'node:net';
import { buildConnector } from 'undici';
import { endpointKey } from '../runtime/endpoint';

/**
 * How long a spare may wait unused. cpp-httplib closes a connection that sent no request within its
 * keep-alive timeout (5 s in llama-server's build); a spare is dropped well before, so one is never
 * handed out while its FIN is in flight (that request would fail as "other side closed").
 */
export const SPARE_MAX_IDLE_MS = 2_000;

interface Spare {
  socket: Socket;
  at: number;
  drop: () => void;
}

/** A connector (undici's shape, used by the pools and by stream-upstream.ts): hands out the origin's spare when it is fresh, and opens the next. */
export function spareConnector(maxIdleMs = SPARE_MAX_IDLE_MS, now: () => number = Date.now): buildConnector.connector {
  // No TCP keep-alive: a connection to an instance is loopback, carries one stream (llama-server closes
  // it after) or a pooled request, and a spare lives 2 s at most, so keep-alive probes (60 s idle) never
  // fire; setting the option is one setsockopt per connection on every request's path (refill).
  const tcp = buildConnector({ keepAlive: false });
  // `socketPath`: an instance's UNIX socket (daemon/runtime/endpoint.ts), set per pool or stream, not per connector as in undici.
  const connect: buildConnector.connector = (opts, callback) => (opts.socketPath ? connectUnix(opts.socketPath, callback) : tcp(opts, callback));
  const spares = new Map<string, Spare>();
  const opening = new Set<string>();

  const refill = (key: string, opts: buildConnector.Options): void => {
    if (spares.has(key) || opening.has(key)) return;
    opening.add(key);
    connect(opts, (err, socket) => {
      opening.delete(key);
      if (err || !socket) return; // the instance is gone or going: the next request's own connect will say so
      const s = socket as Socket;
      const drop = (): void => {
        if (spares.get(key)?.socket === s) spares.delete(key);
        s.destroy();
      };
      // Nothing is read from a spare, so its idle timeout (not 'end') is what retires it.
      s.setTimeout(maxIdleMs, drop);
      s.once('close', drop);
      s.once('error', drop);
      s.unref(); // a spare never keeps the daemon alive
      spares.set(key, { socket: s, at: now(), drop });
    });
  };

  return (opts, callback) => {
    const key = endpointKey({ origin: `${opts.protocol}//${opts.hostname}:${opts.port}`, socketPath: opts.socketPath ?? undefined });
    const spare = spares.get(key);
    spares.delete(key);
    if (spare && !spare.socket.destroyed && spare.socket.readyState === 'open' && now() - spare.at < maxIdleMs) {
      spare.socket.setTimeout(0);
      spare.socket.off('timeout', spare.drop);
      spare.socket.off('close', spare.drop);
      spare.socket.off('error', spare.drop);
      spare.socket.ref();
      // Never synchronously: undici's client calls its connector from inside its own resume loop,
      // and a callback there re-enters it and leaves the request unsent.
      process.nextTick(callback, null, spare.socket);
    } else {
      spare?.socket.destroy();
      connect(opts, callback);
    }
    // After this request is written (its callback runs on the next tick): opening a socket is tens of
    // µs of work that would otherwise sit on the request's path to llama-server.
    setImmediate(refill, key, opts);
  };
}

/** A connected UNIX socket, or the error (ENOENT: no such socket, the instance is gone; ECONNREFUSED: nobody listens). */
function connectUnix(path: string, callback: buildConnector.Callback): void {
  const socket = netConnect({ path });
  const onError = (err: Error): void => {
    socket.destroy();
    callback(err, null);
  };
  socket.once('error', onError);
  socket.once('connect', () => {
    socket.off('error', onError);
    callback(null, socket);
  });
}

/** The daemon's one connector to its instances, shared by the pooled requests and the streams. */
export const upstreamConnector = spareConnector();
