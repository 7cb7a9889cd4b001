// Finds the running daemon for a state dir: daemon.json for the URL, `token` for the key.
import { request } from 'undici';
import { SlotwiseError } from '../shared/errors';
import type { DaemonInfo } from '../shared/protocol';
import { readDaemonInfo, readToken, stateDirPaths } from '../shared/state-dir';
import { RpcClient } from '../shared/rpc-client';

export interface DaemonEndpoint {
  info: DaemonInfo;
  url: string;
  token: string;
}

/** The daemon recorded in the state dir, if it answers /healthz. */
export async function findDaemon(stateDirRoot: string): Promise<DaemonEndpoint | undefined> {
  const dir = stateDirPaths(stateDirRoot);
  const info = await readDaemonInfo(dir);
  if (!info) return undefined;
  if (!(await isHealthy(info.url))) return undefined;
  const token = await readToken(dir);
  if (!token) return undefined;
  return { info, url: info.url, token };
}

export async function requireDaemon(stateDirRoot: string): Promise<DaemonEndpoint> {
  const found = await findDaemon(stateDirRoot);
  if (!found) {
    throw new SlotwiseError('SW_ERR_DAEMON_UNREACHABLE', `no daemon running for ${stateDirRoot} — start one with \`slotwise start\``);
  }
  return found;
}

export async function isHealthy(url: string, timeoutMs = 1500): Promise<boolean> {
  try {
    const res = await request(`${url}/healthz`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    await res.body.dump();
    return res.statusCode === 200;
  } catch {
    return false; // refused or timed out: not healthy
  }
}

/** A client of the daemon for `daemon` (a state dir, or its endpoint when already found). */
export async function connect(daemon: string | DaemonEndpoint): Promise<RpcClient> {
  const ep = typeof daemon === 'string' ? await requireDaemon(daemon) : daemon;
  const client = new RpcClient({ url: ep.url, token: ep.token });
  await client.opened;
  return client;
}

/** Runs fn with a connected client and always closes it. */
export async function withDaemon<T>(daemon: string | DaemonEndpoint, fn: (client: RpcClient) => Promise<T>): Promise<T> {
  const client = await connect(daemon);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
