// Facts about processes and the host read from /proc (Linux): liveness, what a pid runs, CPU ticks
// and RSS of a process, and host CPU time. The one parser of /proc/<pid>/stat and of /proc/stat.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { basename } from 'node:path';
import { errnoCode } from './errno';

/**
 * USER_HZ, the unit of /proc/PID/stat and /proc/stat times. Node cannot call sysconf(_SC_CLK_TCK), but the kernel
 * ABI fixes it at 100 on every architecture Linux exports to user space (the internal HZ may differ; /proc converts).
 */
export const CLOCK_TICKS_PER_SECOND = 100;

/** The fields of /proc/PID/stat that Slotwise reads. */
export interface ProcessStat {
  /** Field 3: R, S, D, T, Z (zombie), X (dead), ... */
  state: string;
  /** utime + stime (fields 14 and 15), in clock ticks. */
  cpuTicks: number;
  /** starttime (field 22): start after boot, in clock ticks. */
  startTicks: number;
}

/** One read of a process. */
export interface ProcessReading {
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  /** Start time after boot, in clock ticks. */
  startTicks: number;
  rssBytes: number;
}

/** Busy and total CPU time of the whole host; only differences between two reads mean anything. */
export interface HostCpuTimes {
  busy: number;
  total: number;
}

/**
 * Parses /proc/PID/stat. The command name (field 2) may hold spaces and parentheses, so fields are split after
 * the last ')'. Undefined for text that is not a stat line.
 */
export function parseProcessStat(text: string): ProcessStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = text.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); utime, stime and starttime are fields 14, 15 and 22.
  const state = rest[0] ?? '';
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const start = Number(rest[19]);
  if (!state || ![utime, stime, start].every(Number.isFinite)) return undefined;
  return { state, cpuTicks: utime + stime, startTicks: start };
}

/** Parses /proc/PID/stat and /proc/PID/status; undefined for a zombie or dead process, or unreadable text. */
export function parseProcess(stat: string, status: string): ProcessReading | undefined {
  const s = parseProcessStat(stat);
  if (!s || s.state === 'Z' || s.state === 'X') return undefined;
  // VmRSS is absent for kernel threads; a process we track always has it, but 0 is the honest reading otherwise.
  const rssKiB = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  return { cpuTicks: s.cpuTicks, startTicks: s.startTicks, rssBytes: rssKiB ? Number(rssKiB) * 1024 : 0 };
}

/** Reads /proc/PID/stat and /proc/PID/status; undefined when the process is gone or a zombie. Throws on other errors (EACCES). */
export async function readProcess(pid: number, procRoot = '/proc'): Promise<ProcessReading | undefined> {
  let stat: string;
  let status: string;
  try {
    // Synchronous on purpose: a /proc read is answered by the kernel at once and never waits on a disk,
    // while each fs/promises read is 4 thread-pool round trips (open, stat, read, close) that wake the
    // event loop: the 1 s resource sample was most of an idle daemon's wakeups.
    stat = readFileSync(`${procRoot}/${pid}/stat`, 'utf8');
    status = readFileSync(`${procRoot}/${pid}/status`, 'utf8');
  } catch (err) {
    // ENOENT/ESRCH: the process exited between listing and reading, an everyday race.
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return undefined;
    throw err;
  }
  return parseProcess(stat, status);
}

/** True while the pid exists and is not a zombie (an unreaped zombie would otherwise look alive forever). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
  try {
    return parseProcessStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.state !== 'Z';
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
 * Parses the aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal (guest time is
 * already inside user). Waiting for I/O counts as idle, as top shows it. Undefined without that line.
 */
export function parseHostCpuTimes(text: string): HostCpuTimes | undefined {
  const line = /^cpu\s+([\d\s]+)$/m.exec(text)?.[1];
  if (!line) return undefined;
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** Host CPU time from /proc/stat; from os.cpus() where there is none (macOS). */
export function readHostCpuTimes(procRoot = '/proc'): HostCpuTimes {
  try {
    const times = parseHostCpuTimes(readFileSync(`${procRoot}/stat`, 'utf8'));
    if (times) return times;
  } catch {
    // no /proc/stat: not Linux, or a test's proc root without one
  }
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    busy += all - times.idle;
    total += all;
  }
  return { busy, total };
}
