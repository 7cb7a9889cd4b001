// CPU time a process spent, all of its threads, for the hop's cost per request: a figure that does
// not swing with scheduling as latencies do on a small shared machine. Read from
// /proc/PID/task/*/schedstat (first field: ns on a CPU); /proc/PID/stat counts 10 ms ticks, too coarse
// for a level of a few hundred requests (~0.3 ms of the daemon's CPU each).
import { readdirSync, readFileSync } from 'node:fs';

/** CPU time of `pid`'s live threads so far, µs; undefined where /proc cannot tell (not Linux, the process gone). */
export function processCpuUs(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended between the listing and the read: its time is gone with it
      }
    }
    return Number.isFinite(ns) ? ns / 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** Starts counting `pid`'s CPU now; the returned function gives the µs since, per `requests`. */
export function cpuPerRequest(pid: number | undefined): (requests: number) => number | undefined {
  const start = pid === undefined ? undefined : processCpuUs(pid);
  return (requests) => {
    if (pid === undefined || start === undefined || requests <= 0) return undefined;
    const end = processCpuUs(pid);
    return end === undefined ? undefined : (end - start) / requests;
  };
}
