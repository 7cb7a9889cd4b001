// Permissions of the state dir: it holds the API token, so the dir must be 0700 and every file in it
// 0600, owned by us, and no file a symlink (a link could point the token or a log anywhere).
// inspectStateDir() reports (doctor); secureStateDir() fixes what is ours and refuses the rest (daemon).
import { chmod, lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SlotwiseError } from './errors';
import type { StateDir } from './state-dir';

export interface PermProblem {
  path: string;
  /** e.g. "mode 0644, should be 0600". */
  problem: string;
  /** What the user (or secureStateDir) does about it. */
  fix: string;
  /** True when chmod fixes it: the path is ours and a plain file or dir. */
  fixable: boolean;
  wantMode?: number;
}

const octal = (mode: number): string => `0${(mode & 0o777).toString(8)}`;

/** Every problem with the state dir and the files Slotwise keeps in it; [] when all is well or it does not exist yet. */
export async function inspectStateDir(dir: StateDir): Promise<PermProblem[]> {
  const problems: PermProblem[] = [];
  // The root itself may be a symlink the user chose (e.g. onto another disk): follow it, check the target.
  const root = await statOrUndefined(dir.root, stat);
  if (!root) return problems;
  check(problems, dir.root, root, 0o700, true);
  // sockets/ holds llama-servers' UNIX sockets, not files: the dir is checked, its entries are not.
  for (const sub of [dir.pids, dir.logs, dir.jobs, dir.sockets]) {
    const st = await statOrUndefined(sub, lstat);
    if (st) check(problems, sub, st, 0o700, true);
  }
  const files = [dir.token, dir.daemonJson];
  for (const sub of [dir.pids, dir.logs, dir.jobs]) files.push(...(await listDir(sub)).map((n) => join(sub, n)));
  for (const file of files) {
    const st = await statOrUndefined(file, lstat);
    if (st) check(problems, file, st, 0o600, false);
  }
  return problems;
}

/**
 * Fixes the modes of paths we own (returns one warning line per fix) and throws
 * SW_ERR_STATE_DIR_UNSAFE for a symlink or a path owned by someone else.
 */
export async function secureStateDir(dir: StateDir): Promise<string[]> {
  const problems = await inspectStateDir(dir);
  const refused = problems.find((p) => !p.fixable);
  if (refused) throw new SlotwiseError('SW_ERR_STATE_DIR_UNSAFE', `${refused.path}: ${refused.problem} — ${refused.fix}`);
  const fixed: string[] = [];
  for (const p of problems) {
    await chmod(p.path, p.wantMode!);
    fixed.push(`${p.path}: ${p.problem}; set to ${octal(p.wantMode!)}`);
  }
  return fixed;
}

function check(out: PermProblem[], path: string, st: import('node:fs').Stats, want: number, isDir: boolean): void {
  const uid = process.getuid?.();
  if (st.isSymbolicLink()) {
    out.push({ path, problem: 'is a symlink', fix: `remove it (rm ${path}); Slotwise writes its own`, fixable: false });
  } else if (uid !== undefined && st.uid !== uid) {
    out.push({ path, problem: `is owned by uid ${st.uid}, not you (uid ${uid})`, fix: `remove it or chown it to yourself, or use another --state-dir`, fixable: false });
  } else if (isDir ? !st.isDirectory() : !st.isFile()) {
    out.push({ path, problem: `is not a ${isDir ? 'directory' : 'regular file'}`, fix: `remove it (rm -r ${path})`, fixable: false });
  } else if ((st.mode & 0o777) !== want && (st.mode & 0o077) !== 0) {
    out.push({ path, problem: `mode ${octal(st.mode)}, should be ${octal(want)}`, fix: `chmod ${octal(want).slice(1)} ${path} (the daemon does this at start)`, fixable: true, wantMode: want });
  }
}

async function statOrUndefined(path: string, fn: typeof stat): Promise<import('node:fs').Stats | undefined> {
  try {
    return await fn(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function listDir(path: string): Promise<string[]> {
  try {
    return await readdir(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}
