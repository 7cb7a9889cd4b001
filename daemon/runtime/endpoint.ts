// Where the daemon reaches one llama-server. Its own traffic (every request, /slots, /health) goes over
// a UNIX socket in the state dir where the platform and the build allow: on loopback TCP a connect and
// a write run both ends' TCP stacks on the caller's CPU (in the daemon's profile, the upstream connect,
// request write and close were a third of its CPU per request), on a socket they are a copy and a
// wake-up. The loopback port stays open beside it for everything that is not the daemon: `bench
// --direct`, the bare proxy, tools a user points at the instance (`port` in status).
import { join } from 'node:path';
import { instanceFileStem } from '../../shared/state-dir';

export interface Endpoint {
  /** `http://127.0.0.1:PORT`: the address for others, and the Host header. */
  origin: string;
  /** The UNIX socket the daemon connects to instead, when the process listens on one. */
  socketPath?: string;
}

/** What the llama-server clients accept: a base URL, or an instance's endpoint. */
export type LlamaTarget = string | Endpoint;

/** The most spare connections the daemon keeps open to one llama-server (api/spare-connections.ts). */
export const MAX_SPARES = 16;

/** The daemon's own connections to an instance beside its streams: the /slots and /metrics polls, /health, a pooled request. */
const POLL_CONNECTIONS = 4;

/**
 * `--threads-http` for an instance of `slots` slots: a thread each for its streams, the daemon's polls,
 * and the spares it keeps (as many as connections in use, at most MAX_SPARES). cpp-httplib gives every
 * connection a thread while it waits for its request. This llama.cpp adds threads on demand beyond its
 * default of max(slots + 4, cores − 1) (tools/server/server-http.cpp, cpp-httplib's dynamic pool); a
 * build from before that has a fixed pool, where idle spares would hold the threads a stream needs and
 * its request would wait until one freed.
 */
export function httpThreads(slots: number): number {
  return slots + POLL_CONNECTIONS + Math.min(slots + POLL_CONNECTIONS, MAX_SPARES);
}

/** sun_path holds 108 bytes on Linux and 104 on macOS, the terminating NUL included. */
export const MAX_SOCKET_PATH = 103;

/**
 * The socket an instance listens on, or undefined where none can be used: on Windows Node's `path`
 * means a named pipe, not an AF_UNIX socket; a state dir deep enough overflows sun_path; `--host` is
 * a CSV list, so a comma or a quote in the path would split it. The name ends in `.sock`, which is
 * how llama-server's `--host` tells a socket from an address.
 */
export function socketPathFor(dir: string, instanceId: string, platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform === 'win32') return undefined;
  const path = join(dir, `${instanceFileStem(instanceId)}.sock`);
  if (/[,"]/.test(path) || path !== path.trim()) return undefined;
  return Buffer.byteLength(path) <= MAX_SOCKET_PATH ? path : undefined;
}

/** A target as an endpoint: a base URL is an origin reached at its port. */
export function endpointOf(target: LlamaTarget): Endpoint {
  return typeof target === 'string' ? { origin: target } : target;
}

/** One key per listener: pools and spare connections are kept per key. */
export function endpointKey(e: Endpoint): string {
  return e.socketPath ? `unix:${e.socketPath}` : e.origin;
}
