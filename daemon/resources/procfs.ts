// CPU and memory of given processes from /proc (Linux): CPU % from utime+stime deltas over wall time.
import { readFile } from 'node:fs/promises';
import { errnoCode } from '../../platform/errno';

/**
 * USER_HZ, the unit of /proc/PID/stat times. Node cannot call sysconf(_SC_CLK_TCK), but the kernel ABI fixes it
 * at 100 on every architecture Linux exports to user space (the internal HZ may differ; /proc converts).
 */
export const CLOCK_TICKS_PER_SECOND = 100;

/** One read of a process. */
export interface ProcessReading {
  /** utime + stime, in clock ticks. */
  cpuTicks: number;
  /** Start time after boot, in clock ticks. */
  startTicks: number;
  rssBytes: number;
}

/** Reads /proc/PID/stat and /proc/PID/status; undefined when the process is gone or a zombie. Throws on other errors (EACCES). */
export async function readProcess(pid: number, procRoot = '/proc'): Promise<ProcessReading | undefined> {
  let stat: string;
  let status: string;
  try {
    [stat, status] = await Promise.all([readFile(`${procRoot}/${pid}/stat`, 'utf8'), readFile(`${procRoot}/${pid}/status`, 'utf8')]);
  } catch (err) {
    // ENOENT/ESRCH: the process exited between listing and reading, an everyday race.
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ESRCH') return undefined;
    throw err;
  }
  return parseProcess(stat, status);
}

/** Parses the two files; exported for tests. The command name in stat may hold spaces and parentheses: split after the last ')'. */
export function parseProcess(stat: string, status: string): ProcessReading | undefined {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime, stime and starttime are fields 14, 15 and 22.
  if (rest[0] === 'Z' || rest[0] === 'X') return undefined;
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const start = Number(rest[19]);
  if (![utime, stime, start].every(Number.isFinite)) return undefined;
  // VmRSS is absent for kernel threads; a process we track always has it, but 0 is the honest reading otherwise.
  const rssKiB = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  return { cpuTicks: utime + stime, startTicks: start, rssBytes: rssKiB ? Number(rssKiB) * 1024 : 0 };
}

interface Tracked {
  ticks: number;
  /** performance.now() of the reading. */
  at: number;
  cpuPct: number;
  rssBytes: number;
}

/** Per-pid CPU % (100 = one core) and RSS for a changing set of pids. */
export class ProcessTracker {
  #procRoot: string;
  #tracked = new Map<number, Tracked>();

  constructor(procRoot = '/proc') {
    this.#procRoot = procRoot;
  }

  /** Reads every pid; forgets pids no longer given or gone. Rejects only on unexpected read errors (after updating the rest). */
  async update(pids: Iterable<number>): Promise<void> {
    const wanted = new Set(pids);
    for (const pid of this.#tracked.keys()) if (!wanted.has(pid)) this.#tracked.delete(pid);
    if (wanted.size === 0) return;
    const uptimeS = await this.#uptimeSeconds();
    const errors: unknown[] = [];
    await Promise.all(
      [...wanted].map(async (pid) => {
        try {
          const r = await readProcess(pid, this.#procRoot);
          const at = performance.now();
          if (!r) return void this.#tracked.delete(pid);
          const prev = this.#tracked.get(pid);
          let cpuPct: number;
          if (prev && at > prev.at && r.cpuTicks >= prev.ticks) {
            cpuPct = ((r.cpuTicks - prev.ticks) / CLOCK_TICKS_PER_SECOND / ((at - prev.at) / 1000)) * 100;
          } else {
            // First sight (or a reused pid): the average over the process's life, so the panel shows something at once.
            const aliveS = uptimeS - r.startTicks / CLOCK_TICKS_PER_SECOND;
            cpuPct = aliveS > 0 ? (r.cpuTicks / CLOCK_TICKS_PER_SECOND / aliveS) * 100 : 0;
          }
          this.#tracked.set(pid, { ticks: r.cpuTicks, at, cpuPct: Math.round(cpuPct * 10) / 10, rssBytes: r.rssBytes });
        } catch (err) {
          errors.push(err);
        }
      }),
    );
    if (errors.length) throw errors[0];
  }

  usage(pid: number): { cpuPct: number; rssBytes: number } | undefined {
    const t = this.#tracked.get(pid);
    return t ? { cpuPct: t.cpuPct, rssBytes: t.rssBytes } : undefined;
  }

  async #uptimeSeconds(): Promise<number> {
    const text = await readFile(`${this.#procRoot}/uptime`, 'utf8');
    return Number(text.split(' ')[0]);
  }
}
