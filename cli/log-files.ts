// llama-server logs read from the state dir's files, for `slotwise logs` when no daemon is running:
// the output of a model that failed and took the daemon down with it is still worth reading.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { instanceFileStem, type StateDir } from '../shared/state-dir';

export interface LogFileTail {
  /** The last lines, each prefixed `[coder#1] ` when more than one instance's file was read. */
  lines: string[];
  /** The files read, newest last within each instance. */
  files: string[];
}

/** Files the daemon writes for itself in logs/, not llama-server output. */
const DAEMON_FILES = /^daemon\./;
/** `coder_1.log`, and its rotations `coder_1.log.1`, `.2`, … (ChildLog). */
const INSTANCE_LOG = /^(.+)\.log(?:\.(\d+))?$/;

/**
 * The last `n` lines of llama-server output in `dir.logs`: of one instance (`coder#1`), of a model's
 * instances, or of all. Older rotations are read only while the newer files hold fewer than `n` lines.
 */
export async function tailLogFiles(dir: StateDir, target: string | undefined, n: number): Promise<LogFileTail> {
  const names = await readdir(dir.logs).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
  const byStem = new Map<string, Array<{ name: string; age: number }>>();
  for (const name of names) {
    const m = INSTANCE_LOG.exec(name);
    if (!m || DAEMON_FILES.test(name)) continue;
    const stem = m[1]!;
    if (!matches(stem, target)) continue;
    byStem.set(stem, [...(byStem.get(stem) ?? []), { name, age: m[2] ? Number(m[2]) : 0 }]);
  }
  const stems = [...byStem.keys()].sort();
  const lines: string[] = [];
  const files: string[] = [];
  for (const stem of stems) {
    const own: string[] = [];
    // Newest first, until n lines are in hand.
    for (const { name } of byStem.get(stem)!.sort((a, b) => a.age - b.age)) {
      if (own.length >= n) break;
      const text = await readFile(join(dir.logs, name), 'utf8');
      const fileLines = text.split('\n');
      if (fileLines.at(-1) === '') fileLines.pop();
      own.unshift(...fileLines.slice(-(n - own.length)));
      files.unshift(join(dir.logs, name));
    }
    lines.push(...(stems.length > 1 ? own.map((l) => `[${instanceOf(stem)}] ${l}`) : own));
  }
  return { lines: lines.slice(-n), files };
}

/** `coder_1` back to `coder#1`: model names never hold `#` or anything instanceFileStem replaces. */
function instanceOf(stem: string): string {
  return stem.replace(/_(\d+)$/, '#$1');
}

/** Whether a file stem is the instance, or one of the model's instances (`<model>#<k>` → `<model>_<k>`). */
function matches(stem: string, target: string | undefined): boolean {
  if (target === undefined) return true;
  if (target.includes('#')) return stem === instanceFileStem(target);
  const model = instanceFileStem(target);
  return stem.startsWith(`${model}_`) && /^\d+$/.test(stem.slice(model.length + 1));
}
