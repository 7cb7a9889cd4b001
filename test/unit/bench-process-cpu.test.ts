// The hop's CPU per request in the bench report: CPU time of a process over all its threads, from /proc.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cpuPerRequest, processCpuUs } from '../../bench/process-cpu';

const onLinux = process.platform === 'linux';

/** Keeps this thread on the CPU for `ms`. */
/** Busy until this process has spent `ms` of CPU (not wall time: on a loaded host the loop is descheduled). */
function spin(ms: number): void {
  const cpu = (): number => {
    const u = process.cpuUsage();
    return u.user + u.system;
  };
  const end = cpu() + ms * 1000;
  while (cpu() < end);
}

describe.runIf(onLinux)('processCpuUs', () => {
  it('counts the CPU a process spends, at sub-millisecond resolution', () => {
    const before = processCpuUs(process.pid)!;
    spin(30);
    const spent = processCpuUs(process.pid)! - before;
    // The 30 ms of CPU, give or take the clock's resolution, and not wildly more.
    expect(spent).toBeGreaterThan(15_000);
    expect(spent).toBeLessThan(1_000_000);
  });

  it('counts every thread of the process, not only its main one', async () => {
    // A child whose worker thread spins for 400 ms while its main thread sleeps.
    const child = spawn(process.execPath, ['-e', `
      const { Worker } = require('node:worker_threads');
      new Worker('const e = performance.now() + 400; while (performance.now() < e);', { eval: true });
      console.log('started');
      setTimeout(() => {}, 10_000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await once(child.stdout!, 'data');
      const mainUs = (): number => Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
      const [total0, main0] = [processCpuUs(child.pid!)!, mainUs()];
      await new Promise((r) => setTimeout(r, 150));
      const [total1, main1] = [processCpuUs(child.pid!)!, mainUs()];
      expect(total1 - total0).toBeGreaterThan(50_000); // the worker's spin (it may share the cores with this test)
      expect(main1 - main0).toBeLessThan(20_000); // the sleeping main thread alone would read about nothing
    } finally {
      child.kill();
    }
  });

  it('is undefined for a process that is not there', () => {
    expect(processCpuUs(2 ** 30)).toBeUndefined();
  });
});

describe.runIf(onLinux)('cpuPerRequest', () => {
  it('divides the CPU spent since it started by the requests', () => {
    const done = cpuPerRequest(process.pid);
    spin(20);
    const per = done(10)!;
    expect(per).toBeGreaterThan(1_000); // ≥ 10 ms over 10 requests, with room for descheduling
    expect(per).toBeLessThan(100_000);
  });

  it('is undefined without a process or requests', () => {
    expect(cpuPerRequest(undefined)(10)).toBeUndefined();
    expect(cpuPerRequest(process.pid)(0)).toBeUndefined();
  });
});
