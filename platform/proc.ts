// Facts about other processes read from /proc (Linux). Used to reap orphans safely.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

/** True while the pid exists and is not a zombie (an unreaped zombie would otherwise look alive forever). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return process.platform !== 'linux'; // no /proc entry: gone on Linux; elsewhere trust kill(0)
  }
}

/** True when the pid runs a llama-server (checked before signalling a pid read from a file). */
export async function isLlamaServer(pid: number, binary: string): Promise<boolean> {
  try {
    const argv0 = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')[0] ?? '';
    return basename(argv0) === basename(binary) || basename(argv0).includes('llama-server');
  } catch {
    return false; // no such process (or not Linux): nothing to reap
  }
}
