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

/**
 * A process's start time: field 22 of /proc/PID/stat, clock ticks since boot. Together with the pid
 * it names one process for as long as the machine runs, so a reused pid never passes for the old one.
 * Undefined when the process is gone (or not Linux).
 */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parens) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[22 - 3]);
    return Number.isFinite(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

/** One variable from a process's initial environment (/proc/PID/environ; readable for our own user's processes). */
export function processEnv(pid: number, name: string): string | undefined {
  try {
    const prefix = `${name}=`;
    const entry = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith(prefix));
    return entry?.slice(prefix.length);
  } catch {
    return undefined;
  }
}

/** The environment variable that carries a daemon's nonce into its own environment and its children's. */
export const NONCE_ENV = 'SLOTWISE_DAEMON_NONCE';

/** What proves a recorded pid is still the process that was recorded, and that it is ours. */
export interface ProcessIdentity {
  pid: number;
  /** processStartTime() when recorded. */
  startTime?: number;
  /** The daemon's nonce, found in the process's environment. */
  nonce?: string;
}

/**
 * True only when the pid is alive, started at the recorded time, and carries the recorded nonce in
 * its environment. A record missing either proof (older file, hand-written) never verifies: a wrong
 * "no" leaves a process running, a wrong "yes" kills someone else's.
 */
export function isVerifiedProcess(id: ProcessIdentity): boolean {
  if (id.startTime === undefined || !id.nonce || !isAlive(id.pid)) return false;
  return processStartTime(id.pid) === id.startTime && processEnv(id.pid, NONCE_ENV) === id.nonce;
}
