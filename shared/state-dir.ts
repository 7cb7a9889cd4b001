// The daemon's state dir: daemon.json, the token, pid files of children, logs.
// Layout is part of the outside contract (docs/architecture.md#files-on-disk); clients read daemon.json + token from here.
// Where the dir is: shared/paths.ts.
import { randomBytes } from 'node:crypto';
import { access, constants, mkdir, readFile, readdir, rename, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { dirname, join, relative, isAbsolute } from 'node:path';
import { SlotwiseError } from './errors';
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

/** Makes the state dir and its folders; a path on the way that is a file, or no permission, is SW_ERR_STATE_DIR_UNUSABLE. */
export async function ensureStateDir(root: string): Promise<StateDir> {
  const dir = stateDirPaths(root);
  try {
    await mkdir(dir.pids, { recursive: true, mode: 0o700 });
    await mkdir(dir.logs, { recursive: true, mode: 0o700 });
    await mkdir(dir.jobs, { recursive: true, mode: 0o700 });
    await mkdir(dir.sockets, { recursive: true, mode: 0o700 });
    // The folders may all exist already: the token and daemon.json go in the root itself.
    await access(root, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw await stateDirError(root, err, 'write');
  }
  return dir;
}

/** fs error codes that say the state dir cannot be used as it is, whatever the file. */
const NOT_A_DIR = new Set(['ENOTDIR', 'EEXIST']);
const NO_PERMISSION = new Set(['EACCES', 'EPERM', 'EROFS']);

/**
 * An fs error met on the state dir or a file in it, as SW_ERR_STATE_DIR_UNUSABLE: one line naming
 * the path in the way (the dir itself, a folder above it or one inside it that is a file, or one it
 * may not `want`) and the fix. Any other error is returned as it is.
 */
export async function stateDirError(root: string, err: unknown, want: 'read' | 'write'): Promise<unknown> {
  const e = err as NodeJS.ErrnoException;
  if (!(err instanceof Error) || !e.code || !(NOT_A_DIR.has(e.code) || NO_PERMISSION.has(e.code))) return err;
  const path = e.path ?? root;
  const inside = (p: string): boolean => {
    const rel = relative(root, p);
    return !rel.startsWith('..') && !isAbsolute(rel);
  };
  const fail = (message: string): SlotwiseError => new SlotwiseError('SW_ERR_STATE_DIR_UNUSABLE', message, { cause: err });
  // The nearest path on the way that exists is the one in the way: a file where a folder should be,
  // or the folder we may not write in (a recursive mkdir names the path it was asked for, not that one).
  let culprit = path;
  const beyond = want === 'write' ? 'cannot be created' : 'cannot be used';
  while (!(await stat(culprit).then(() => true, () => false)) && dirname(culprit) !== culprit) culprit = dirname(culprit);
  if (NO_PERMISSION.has(e.code)) {
    const what = `${want === 'read' ? 'readable' : 'writable'} (${e.code})`;
    if (inside(culprit)) return fail(`state dir ${root} is not ${what} — fix its permissions or pass another --state-dir`);
    return fail(`state dir ${root} ${beyond}: ${culprit} is not ${what} — fix its permissions or pass another --state-dir`);
  }
  if (culprit === root) return fail(`state dir ${root} is not a directory — remove it or pass another --state-dir`);
  if (inside(culprit)) return fail(`${culprit} in the state dir is not a directory — remove it (rm ${culprit}) or pass another --state-dir`);
  return fail(`state dir ${root} ${beyond}: ${culprit} is not a directory — pass another --state-dir`);
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
  return (await readStateFile(dir, dir.token))?.trim() || undefined;
}

export async function writeDaemonInfo(dir: StateDir, info: DaemonInfo): Promise<void> {
  await writeFileAtomic(dir.daemonJson, `${JSON.stringify(info, null, 2)}\n`, 0o600);
}

export async function readDaemonInfo(dir: StateDir): Promise<DaemonInfo | undefined> {
  const text = await readStateFile(dir, dir.daemonJson);
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

/** readTextIfExists for a file of the state dir: a dir that is a file or unreadable is SW_ERR_STATE_DIR_UNUSABLE, not ENOTDIR. */
async function readStateFile(dir: StateDir, path: string): Promise<string | undefined> {
  try {
    return await readTextIfExists(path);
  } catch (err) {
    throw await stateDirError(dir.root, err, 'read');
  }
}

export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
