import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { isAlive, parseHostCpuTimes, parseProcess, parseProcessStat, readHostCpuTimes, readProcess } from '../../platform/procfs';
import { tempDir as makeTempDir } from '../helpers/daemon';

function tempDir(prefix: string): string {
  const dir = makeTempDir(prefix);
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// Recorded on Linux 6.x: a running `cat`, and a stopped bash with a renamed command.
const CAT_STAT =
  '20329 (cat) R 20326 20326 6433 0 -1 4194304 100 0 0 0 7 3 0 0 20 0 1 0 79228 3133440 387 18446744073709551615 94901739540480 94901739560361 140731593594544 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 94901739576368 94901739577984 94902726107136 140731593599518 140731593599538 140731593599538 140731593601003 0\n';
const ODD_NAME_STAT =
  '20330 (llama (server) x) T 20326 20326 6433 0 -1 4194368 1 0 0 0 250 40 0 0 20 0 1 0 79230 4804608 126 18446744073709551615 94859649662976 94859650452381 140729039702736 0 0 0 81922 0 81920 1 0 0 17 0 0 0 0 0 0 94859650685680 94859650733924 94859804184576 140729039711101 140729039711116 140729039711116 140729039712234 19\n';
const ZOMBIE_STAT = '4242 (llama-server) Z 1 4242 4242 0 -1 4227084 0 0 0 0 12 5 0 0 20 0 1 0 90000 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n';
const STATUS = 'Name:\tllama-server\nState:\tS (sleeping)\nVmPeak:\t  412000 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n';
// /proc/stat of a 2-core host.
const PROC_STAT = 'cpu  86823 5 12176 57766 350 7 461 50 0 0\ncpu0 43126 0 5865 29579 48 0 188 24 0 0\ncpu1 43696 5 6311 28186 301 7 273 26 0 0\nintr 1 2 3\nctxt 99\n';

describe('parseProcessStat', () => {
  it.each<[string, string, ReturnType<typeof parseProcessStat>]>([
    ['a plain command', CAT_STAT, { state: 'R', cpuTicks: 10, startTicks: 79228 }],
    ['a name with spaces and parentheses', ODD_NAME_STAT, { state: 'T', cpuTicks: 290, startTicks: 79230 }],
    ['a zombie', ZOMBIE_STAT, { state: 'Z', cpuTicks: 17, startTicks: 90000 }],
    ['no command name', 'garbage', undefined],
    ['cut short', '12 (x) S 1 2', undefined],
  ])('%s', (_name, text, want) => {
    expect(parseProcessStat(text)).toEqual(want);
  });
});

describe('parseProcess', () => {
  it('takes CPU ticks from stat and RSS from status', () => {
    expect(parseProcess(ODD_NAME_STAT, STATUS)).toEqual({ cpuTicks: 290, startTicks: 79230, rssBytes: 20480 * 1024 });
  });

  it('reads RSS 0 when status has none (a kernel thread)', () => {
    expect(parseProcess(CAT_STAT, 'Name:\tkthreadd\n')?.rssBytes).toBe(0);
  });

  it('treats a zombie as gone', () => {
    expect(parseProcess(ZOMBIE_STAT, STATUS)).toBeUndefined();
  });

  it('parses this very process the same as its renamed copy', () => {
    const real = readFileSync('/proc/self/stat', 'utf8');
    expect(parseProcess(real.replace(/\(.*\)/s, '(llama (server) x)'), STATUS)).toEqual(parseProcess(real, STATUS));
  });
});

describe('readProcess', () => {
  it('reads a recorded proc root, and a missing pid as gone', async () => {
    const root = tempDir('procfs');
    mkdirSync(join(root, '77'));
    writeFileSync(join(root, '77', 'stat'), CAT_STAT);
    writeFileSync(join(root, '77', 'status'), STATUS);
    expect(await readProcess(77, root)).toEqual({ cpuTicks: 10, startTicks: 79228, rssBytes: 20480 * 1024 });
    expect(await readProcess(78, root)).toBeUndefined();
    expect(await readProcess(2 ** 30)).toBeUndefined();
  });
});

describe('host CPU times', () => {
  it('parses the aggregate cpu line: iowait is idle, irq/softirq/steal are busy', () => {
    const busy = 86823 + 5 + 12176 + 7 + 461 + 50;
    expect(parseHostCpuTimes(PROC_STAT)).toEqual({ busy, total: busy + 57766 + 350 });
  });

  it('has nothing without a cpu line', () => {
    expect(parseHostCpuTimes('cpu0 1 2 3 4\nintr 1\n')).toBeUndefined();
  });

  it('reads a proc root, and falls back to os.cpus() where there is no /proc/stat', () => {
    const root = tempDir('procfs-stat');
    writeFileSync(join(root, 'stat'), PROC_STAT);
    expect(readHostCpuTimes(root)).toEqual(parseHostCpuTimes(PROC_STAT));
    const fallback = readHostCpuTimes(join(root, 'none'));
    expect(fallback.total).toBeGreaterThan(fallback.busy);
    expect(fallback.busy).toBeGreaterThan(0);
  });
});

describe('isAlive', () => {
  it('is true for a running child, false once it exited (zombie or reaped)', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    expect(isAlive(child.pid!)).toBe(true);
    child.kill('SIGKILL');
    await exited;
    expect(isAlive(child.pid!)).toBe(false);
  });
});
