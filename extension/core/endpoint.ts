// Where the daemon is: `slotwise.daemonUrl` + token file, else daemon.json + token in the state dir.
// Same lookup rules as the CLI (shared/paths.ts, docs/architecture.md#files-on-disk); reads files asynchronously and checks /healthz.
import { readFile } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { SlotwiseError } from '../../shared/errors';
import { expandHome, resolveStateDir } from '../../shared/paths';
import type { DaemonInfo } from '../../shared/protocol';

/** The `slotwise.*` settings that decide where the daemon is; empty strings mean "not set". */
export interface EndpointSettings {
  stateDir: string;
  daemonUrl: string;
  tokenFile: string;
}

export interface Endpoint {
  url: string;
  token: string;
  /** The state dir consulted (also where `start` puts a new daemon). */
  stateDir: string;
  /** daemon.json, when the endpoint came from it. */
  info?: DaemonInfo;
}

/** Why no endpoint: nothing recorded (a start may help), recorded but not answering, or no token readable. */
export type LocateFailure = 'absent' | 'unhealthy' | 'no-token';

/** A failed lookup; `reason` tells the connection whether auto-starting the daemon makes sense. */
export class LocateError extends SlotwiseError {
  readonly reason: LocateFailure;
  constructor(reason: LocateFailure, message: string) {
    super('SW_ERR_DAEMON_UNREACHABLE', message);
    this.reason = reason;
  }
}

/** Finds a daemon that answers /healthz and the token to talk to it. Throws LocateError otherwise. */
export async function locateDaemon(settings: EndpointSettings, env: NodeJS.ProcessEnv, healthTimeoutMs = 1500): Promise<Endpoint> {
  const stateDir = resolveStateDir(settings.stateDir || undefined, env);
  const tokenPath = settings.tokenFile ? expandHome(settings.tokenFile, env) : join(stateDir, 'token');
  let url = settings.daemonUrl.replace(/\/+$/, '');
  let info: DaemonInfo | undefined;
  if (!url) {
    const text = await readIfExists(join(stateDir, 'daemon.json'));
    if (text === undefined) throw new LocateError('absent', `no daemon running for ${stateDir} (no daemon.json)`);
    try {
      info = JSON.parse(text) as DaemonInfo;
    } catch (err) {
      throw new LocateError('absent', `daemon.json in ${stateDir} is unreadable (${(err as Error).message}); start the daemon again`);
    }
    url = info.url;
  }
  if (!(await isHealthy(url, healthTimeoutMs))) {
    throw new LocateError(info ? 'absent' : 'unhealthy', `daemon at ${url} does not answer /healthz`);
  }
  const token = (await readIfExists(tokenPath))?.trim();
  if (!token) throw new LocateError('no-token', `no token in ${tokenPath}; set slotwise.tokenFile to the daemon's token file`);
  return info ? { url, token, stateDir, info } : { url, token, stateDir };
}

/** GET /healthz → 200 within the timeout. */
export function isHealthy(url: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean): void => {
      if (!settled) {
        settled = true;
        resolve(ok);
      }
    };
    try {
      const req = get(`${url}/healthz`, { timeout: timeoutMs }, (res) => {
        res.resume();
        done(res.statusCode === 200);
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => done(false)); // refused, reset or timed out: all mean "not healthy"
    } catch {
      done(false); // an invalid URL (a typo in slotwise.daemonUrl) throws here: not healthy
    }
  });
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LocateError('no-token', `cannot read ${path}: ${(err as Error).message}`);
  }
}
