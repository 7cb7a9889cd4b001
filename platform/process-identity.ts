// What proves that a pid read from a file is still the process that was recorded, and that it is ours:
// its start time (a reused pid starts later) and a per-daemon nonce in its environment.
import { readFileSync } from 'node:fs';
import { isAlive, parseProcessStat } from './procfs';

/** The environment variable that carries a daemon's nonce into its own environment and its children's. */
export const NONCE_ENV = 'SLOTWISE_DAEMON_NONCE';

/** What a pid file or daemon.json records about one process. */
export interface ProcessIdentity {
  pid: number;
  /** processStartTime() when recorded. */
  startTime?: number;
  /** The daemon's nonce, found in the process's environment. */
  nonce?: string;
}

/**
 * A process's start time: field 22 of /proc/PID/stat, clock ticks since boot. Together with the pid
 * it names one process for as long as the machine runs. Undefined when the process is gone (or not Linux).
 */
export function processStartTime(pid: number): number | undefined {
  try {
    return parseProcessStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.startTicks;
  } catch {
    return undefined; // gone, or no /proc: nothing can be proven
  }
}

/** One variable from a process's initial environment (/proc/PID/environ; readable for our own user's processes). */
export function processEnv(pid: number, name: string): string | undefined {
  try {
    const prefix = `${name}=`;
    const entry = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith(prefix));
    return entry?.slice(prefix.length);
  } catch {
    return undefined; // gone or not ours to read: unverifiable
  }
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
