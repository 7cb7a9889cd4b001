// Spare, already-connected sockets per llama-server, so a stream's connect is not on its time to first
// byte. llama-server closes the connection after every streamed response (its content provider reports
// the stream's end as a cancel: vendor/cpp-httplib, write_content_chunked), so every stream needs a
// fresh connection; with spares, the next ones are opened while these run. As many spares as
// connections in use: streams near their ends together (a wave of slot handoffs) or a burst of
// requests each find one, and a connect that would wait for the daemon's event loop to come round
// (after every other request of the burst) is not on any of their paths.
import { connect as netConnect, type Socket } from 'node:net';
import { buildConnector } from 'undici';
import { endpointKey, MAX_SPARES } from '../runtime/endpoint';

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

/**
 * A connector (undici's shape, used by the pools and by stream-upstream.ts): hands out a fresh spare of
 * the origin when it has one, and opens more up to the number of its connections in use (at least one,
 * at most `maxSpares`). Each spare is an idle connection llama-server holds a thread for: instance.ts
 * passes `--threads-http` for them (endpoint.ts httpThreads).
 */
export function spareConnector(maxIdleMs = SPARE_MAX_IDLE_MS, now: () => number = Date.now, maxSpares = MAX_SPARES): buildConnector.connector {
  // No TCP keep-alive: a connection to an instance is loopback, carries one stream (llama-server closes
  // it after) or a pooled request, and a spare lives 2 s at most, so keep-alive probes (60 s idle) never
  // fire; setting the option is one setsockopt per connection on every request's path (refill).
  const tcp = buildConnector({ keepAlive: false });
  // `socketPath`: an instance's UNIX socket (daemon/runtime/endpoint.ts), set per pool or stream, not per connector as in undici.
  const connect: buildConnector.connector = (opts, callback) => (opts.socketPath ? connectUnix(opts.socketPath, callback) : tcp(opts, callback));
  const spares = new Map<string, Spare[]>();
  const opening = new Map<string, number>();
  const inUse = new Map<string, Set<Socket>>();

  const count = (map: Map<string, number>, key: string, by: number): void => {
    const n = (map.get(key) ?? 0) + by;
    if (n > 0) map.set(key, n);
    else map.delete(key);
  };

  /** A socket handed out is in use until it is destroyed (its 'close' comes a loop turn later). */
  const handOut = (key: string, socket: Socket): void => {
    let set = inUse.get(key);
    if (!set) inUse.set(key, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (set.size === 0 && inUse.get(key) === set) inUse.delete(key);
    });
  };

  /** Spares wanted: one per connection in use, at least one, at most `maxSpares` (counting stops there). */
  const wanted = (key: string): number => {
    let n = 0;
    for (const socket of inUse.get(key) ?? []) if (!socket.destroyed && ++n >= maxSpares) break;
    return Math.max(1, n);
  };

  const refill = (key: string, opts: buildConnector.Options): void => {
    const want = wanted(key);
    for (let have = (spares.get(key)?.length ?? 0) + (opening.get(key) ?? 0); have < want; have++) {
      count(opening, key, 1);
      connect(opts, (err, socket) => {
        count(opening, key, -1);
        if (err || !socket) return; // the instance is gone or going: the next request's own connect will say so
        const s = socket as Socket;
        const drop = (): void => {
          const list = spares.get(key);
          const i = list?.findIndex((x) => x.socket === s) ?? -1;
          if (i >= 0) list!.splice(i, 1);
          if (list?.length === 0) spares.delete(key);
          s.destroy();
        };
        // Nothing is read from a spare, so its idle timeout (not 'end') is what retires it.
        s.setTimeout(maxIdleMs, drop);
        s.once('close', drop);
        s.once('error', drop);
        s.unref(); // a spare never keeps the daemon alive
        const list = spares.get(key);
        if (list) list.push({ socket: s, at: now(), drop });
        else spares.set(key, [{ socket: s, at: now(), drop }]);
      });
    }
  };

  /** The oldest fresh spare of `key` (the others it passes are closed), or undefined. */
  const take = (key: string): Spare | undefined => {
    const list = spares.get(key);
    while (list && list.length > 0) {
      const spare = list.shift()!;
      if (!spare.socket.destroyed && spare.socket.readyState === 'open' && now() - spare.at < maxIdleMs) return spare;
      spare.socket.destroy();
    }
    return undefined;
  };

  return (opts, callback) => {
    const key = endpointKey({ origin: `${opts.protocol}//${opts.hostname}:${opts.port}`, socketPath: opts.socketPath ?? undefined });
    const spare = take(key);
    if (spare) {
      spare.socket.setTimeout(0);
      spare.socket.off('timeout', spare.drop);
      spare.socket.off('close', spare.drop);
      spare.socket.off('error', spare.drop);
      spare.socket.ref();
      handOut(key, spare.socket);
      // Never synchronously: undici's client calls its connector from inside its own resume loop,
      // and a callback there re-enters it and leaves the request unsent.
      process.nextTick(callback, null, spare.socket);
    } else {
      connect(opts, (err, socket) => {
        if (err || !socket) return callback(err ?? new Error('no socket'), null);
        handOut(key, socket as Socket);
        callback(null, socket);
      });
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
