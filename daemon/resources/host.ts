// Host memory and CPU for the status panel; works on every host, so a CPU-only machine still gets readings.
import { readFileSync } from 'node:fs';
import { availableParallelism, freemem, totalmem } from 'node:os';
import type { Snapshot } from '../../shared/protocol';
import { readHostCpuTimes, type HostCpuTimes } from '../../platform/procfs';

export type HostStatus = NonNullable<Snapshot['host']>;

const MIB = 1024 * 1024;

export class HostSampler {
  #prev: HostCpuTimes | undefined;
  #procRoot: string;

  constructor(procRoot = '/proc') {
    this.#procRoot = procRoot;
  }

  async sample(): Promise<HostStatus> {
    const now = readHostCpuTimes(this.#procRoot);
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
      // Synchronous: /proc is answered at once, and a promise read wakes the loop 4 times (platform/procfs.ts readProcess).
      const kib = /^MemAvailable:\s+(\d+)\s+kB/m.exec(readFileSync(`${this.#procRoot}/meminfo`, 'utf8'))?.[1];
      if (kib) return Math.floor(Number(kib) / 1024) * MIB;
    } catch {
      // No /proc/meminfo (macOS) or an old kernel without MemAvailable: free memory is the best remaining estimate.
    }
    return Math.floor(freemem() / MIB) * MIB;
  }
}
