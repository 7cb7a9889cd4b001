// CPU and memory of given processes from /proc (Linux): CPU % from utime+stime deltas over wall time.
import { readFileSync } from 'node:fs';
import { CLOCK_TICKS_PER_SECOND, readProcess } from '../../platform/procfs';

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
    const text = readFileSync(`${this.#procRoot}/uptime`, 'utf8'); // /proc: answered at once (see platform/procfs.ts readProcess)
    return Number(text.split(' ')[0]);
  }
}
