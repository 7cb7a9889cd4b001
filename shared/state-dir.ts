// The daemon's state dir: daemon.json, the token, pid files of children, logs.
// Layout is part of the outside contract (docs/architecture.md#files-on-disk); clients read daemon.json + token from here.
// Where the dir is: shared/paths.ts.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import type { DaemonInfo } from './protocol';

export interface StateDir {
  root: string;
  daemonJson: string;
  token: string;
  pids: string;
  logs: string;
  /** Finished prompt jobs, one JSON file each (daemon/api/job-archive.ts). */
  jobs: string;
  /** Memory plan vs what llama-server allocated, per model file and settings (daemon/memory/calibration.ts). */
  calibration: string;
  /** The UNIX sockets llama-servers listen on for the daemon (daemon/runtime/endpoint.ts); only the user can enter. */
  sockets: string;
}

export function stateDirPaths(root: string): StateDir {
  return {
    root,
    daemonJson: join(root, 'daemon.json'),
    token: join(root, 'token'),
    pids: join(root, 'pids'),
    logs: join(root, 'logs'),
    jobs: join(root, 'jobs'),
    calibration: join(root, 'calibration.json'),
    sockets: join(root, 'sockets'),
  };
}

export async function ensureStateDir(root: string): Promise<StateDir> {
  const dir = stateDirPaths(root);
  await mkdir(dir.pids, { recursive: true, mode: 0o700 });
  await mkdir(dir.logs, { recursive: true, mode: 0o700 });
  await mkdir(dir.jobs, { recursive: true, mode: 0o700 });
  await mkdir(dir.sockets, { recursive: true, mode: 0o700 });
  return dir;
}

/** Writes via a temp file and rename so readers never see a half-written file. */
export async function writeFileAtomic(path: string, data: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode); // writeFile's mode is masked by umask; the token must be exactly 0600
  await rename(tmp, path);
}

/** Returns the existing token, or creates a random 32-byte hex token with mode 0600. */
export async function ensureToken(dir: StateDir): Promise<string> {
  const existing = await readTextIfExists(dir.token);
  if (existing && /^[0-9a-f]{64}$/.test(existing.trim())) return existing.trim();
  const token = randomBytes(32).toString('hex');
  await writeFileAtomic(dir.token, `${token}\n`, 0o600);
  return token;
}

export async function readToken(dir: StateDir): Promise<string | undefined> {
  return (await readTextIfExists(dir.token))?.trim() || undefined;
}

export async function writeDaemonInfo(dir: StateDir, info: DaemonInfo): Promise<void> {
  await writeFileAtomic(dir.daemonJson, `${JSON.stringify(info, null, 2)}\n`, 0o600);
}

export async function readDaemonInfo(dir: StateDir): Promise<DaemonInfo | undefined> {
  const text = await readTextIfExists(dir.daemonJson);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as DaemonInfo;
  } catch {
    return undefined; // a torn or hand-edited file means "no daemon known"; start/status recover from that
  }
}

/** Removes daemon.json only if it still names this pid (a newer daemon may have replaced it). */
export async function removeDaemonInfo(dir: StateDir, pid: number): Promise<void> {
  const info = await readDaemonInfo(dir);
  if (info?.pid === pid) await rm(dir.daemonJson, { force: true });
}

/** What a pid file records about one llama-server child, so a later daemon can reap it (and only it). */
export interface PidRecord {
  pid: number;
  instance: string;
  binary: string;
  port: number;
  daemonPid: number;
  startedAt: string;
  /** The child's /proc start time and the daemon nonce in its environment: together they prove the pid is still that child. */
  startTime?: number;
  nonce?: string;
  /** The writing daemon's /proc start time: a live pid with another start time is not that daemon. */
  daemonStartTime?: number;
}

/** An instance id (`coder#2`) as the stem of its files in the state dir: its pid record, log and socket. */
export function instanceFileStem(instance: string): string {
  return instance.replace(/[^A-Za-z0-9._-]/g, '_');
}

function pidFile(dir: StateDir, instance: string): string {
  return join(dir.pids, `${instanceFileStem(instance)}.json`);
}

export async function writePidRecord(dir: StateDir, record: PidRecord): Promise<void> {
  await writeFileAtomic(pidFile(dir, record.instance), JSON.stringify(record), 0o600);
}

export async function removePidRecord(dir: StateDir, instance: string): Promise<void> {
  await rm(pidFile(dir, instance), { force: true });
}

export async function readPidRecords(dir: StateDir): Promise<{ file: string; record: PidRecord | undefined }[]> {
  let names: string[];
  try {
    names = await readdir(dir.pids);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: { file: string; record: PidRecord | undefined }[] = [];
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    const file = join(dir.pids, name);
    const text = await readTextIfExists(file);
    let record: PidRecord | undefined;
    try {
      record = text ? (JSON.parse(text) as PidRecord) : undefined;
    } catch {
      record = undefined; // unreadable record: the caller removes the file, nothing to reap
    }
    out.push({ file, record });
  }
  return out;
}

export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
