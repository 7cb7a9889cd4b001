// Host memory and CPU for the status panel; works on every host, so a CPU-only machine still gets readings.
import { readFile } from 'node:fs/promises';
import { availableParallelism, cpus, freemem, totalmem } from 'node:os';
import type { Snapshot } from '../../shared/protocol';

export type HostStatus = NonNullable<Snapshot['host']>;

const MIB = 1024 * 1024;

interface CpuTotals {
  busy: number;
  total: number;
}

export class HostSampler {
  #prev: CpuTotals | undefined;
  #procRoot: string;

  constructor(procRoot = '/proc') {
    this.#procRoot = procRoot;
  }

  async sample(): Promise<HostStatus> {
    const now = cpuTotals();
    const prev = this.#prev;
    this.#prev = now;
    const host: HostStatus = {
      memoryTotalBytes: totalmem(),
      memoryAvailableBytes: await this.#available(),
      cpuCount: availableParallelism(),
    };
    // Busy share of all cores since the previous sample; none on the first (one instant says nothing).
    // Whole percent, like memory in whole MiB below: finer steps would only make every status push differ.
    if (prev && now.total > prev.total) host.loadPct = Math.round(((now.busy - prev.busy) / (now.total - prev.total)) * 100);
    return host;
  }

  /** MemAvailable counts reclaimable cache, which os.freemem() (MemFree) does not: it is what a new model can use. */
  async #available(): Promise<number> {
    try {
      const kib = /^MemAvailable:\s+(\d+)\s+kB/m.exec(await readFile(`${this.#procRoot}/meminfo`, 'utf8'))?.[1];
      if (kib) return Math.floor(Number(kib) / 1024) * MIB;
    } catch {
      // No /proc/meminfo (macOS) or an old kernel without MemAvailable: free memory is the best remaining estimate.
    }
    return Math.floor(freemem() / MIB) * MIB;
  }
}

function cpuTotals(): CpuTotals {
  let busy = 0;
  let total = 0;
  for (const { times } of cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    busy += all - times.idle;
    total += all;
  }
  return { busy, total };
}
