// The resource sampler against recorded nvidia-smi / rocm-smi outputs (test/fixtures/gpu, see SOURCES.md)
// replayed by stand-in executables on PATH, and against real processes on this CPU-only host.
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { GpuStatus } from '../../shared/protocol';
import { parseComputeApps, parseGpuLine } from '../../daemon/resources/nvidia-parse';
import { parseReading, type Reading } from '../../daemon/resources/reading';
import { parseRocmJson } from '../../daemon/resources/rocm-parse';
import { ResourceSampler, type ResourceSamplerOptions } from '../../daemon/resources/sampler';

const FIX = resolve(__dirname, '../fixtures/gpu');
const MIB = 1024 * 1024;
const fixture = (name: string): string => readFileSync(join(FIX, name), 'utf8');

const H100: GpuStatus = { index: 0, name: 'NVIDIA H100 80GB HBM3', utilizationPct: 0, memoryUsedMiB: 72790, memoryTotalMiB: 81559, temperatureC: 39, powerW: 145 };
const GTX_1080_TI: GpuStatus = { index: 0, name: 'GeForce GTX 1080 Ti', utilizationPct: 36, memoryUsedMiB: 2856, memoryTotalMiB: 11175, temperatureC: 60, powerW: 106.56 };
const GTX_1060: GpuStatus = { index: 1, name: 'GeForce GTX 1060 6GB', utilizationPct: 0, memoryUsedMiB: 4, memoryTotalMiB: 6078, temperatureC: 49, powerW: 5.68 };
const GTX_1050_TI: GpuStatus = { index: 0, name: 'GeForce GTX 1050 Ti', utilizationPct: 0, memoryUsedMiB: 0, memoryTotalMiB: 4040, temperatureC: 54 };
const RX_7900_XT: GpuStatus = { index: 0, name: 'Radeon RX 7900 XT', utilizationPct: 0, memoryUsedMiB: 27, memoryTotalMiB: 20464 };
const RADEON_780M: GpuStatus = { index: 0, name: 'Phoenix3', utilizationPct: 19, memoryUsedMiB: 0, memoryTotalMiB: 0, temperatureC: 31, powerW: 7.222 };
const VEGA: GpuStatus = { index: 0, name: 'AMD GPU 0', utilizationPct: 0, memoryUsedMiB: 0, memoryTotalMiB: 0, temperatureC: 77, powerW: 222 };

/** Polls `probe` until it returns a value other than undefined, or fails naming `what` at the deadline. */
async function until<T>(probe: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}

/** A temp dir holding the named stand-in tools; the sampler gets it as its whole PATH. */
function toolDir(tools: Array<'nvidia-smi' | 'rocm-smi'>): string {
  const dir = mkdtempSync(join(tmpdir(), 'slotwise-gpu-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  for (const tool of tools) {
    const target = join(dir, tool);
    copyFileSync(join(FIX, tool === 'nvidia-smi' ? 'fake-nvidia-smi.sh' : 'fake-rocm-smi.sh'), target);
    chmodSync(target, 0o755);
  }
  return dir;
}

function startSampler(opts: Partial<ResourceSamplerOptions> & { env: NodeJS.ProcessEnv }): ResourceSampler {
  const sampler = new ResourceSampler({ intervalMs: 100, pids: () => [], appsIntervalMs: 100, restartBaseMs: 50, rocmMinIntervalMs: 50, ...opts });
  onTestFinished(() => sampler.close());
  void sampler.start();
  return sampler;
}

function nvidiaEnv(gpuFixture: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: toolDir(['nvidia-smi']),
    FAKE_LIST: join(FIX, 'nvidia-smi-L.txt'),
    FAKE_GPU: join(FIX, gpuFixture),
    FAKE_APPS: join(FIX, 'compute-apps.csv'),
    ...extra,
  };
}

/** A child process that lives until the test ends. */
function child(command: string, args: string[]): number {
  const proc = spawn(command, args, { stdio: 'ignore' });
  onTestFinished(() => void proc.kill('SIGKILL'));
  if (proc.pid === undefined) throw new Error(`could not start ${command}`);
  return proc.pid;
}

describe('parseReading', () => {
  it.each<[unknown, Reading]>([
    [' 145.00', 145],
    ['0', 0],
    [12, 12],
    ['[N/A]', 'missing'],
    ['N/A', 'missing'],
    ['[Not Supported]', 'missing'],
    ['[Unknown Error]', 'missing'],
    ['N/A (Secondary die)', 'missing'],
    ['', 'missing'],
    [undefined, 'missing'],
    ['Unable to determine the device handle', 'invalid'],
    ['(400Mhz)', 'invalid'],
    [Number.NaN, 'invalid'],
  ])('%j → %j', (raw, want) => {
    expect(parseReading(raw)).toEqual(want);
  });
});

describe('parseGpuLine', () => {
  it.each<[string, string, GpuStatus | undefined]>([
    ['H100', fixture('query-gpu-h100.csv').split('\n')[0]!, H100],
    ['first of two GPUs', fixture('query-gpu-2gpu.csv').split('\n')[0]!, GTX_1080_TI],
    ['second of two GPUs', fixture('query-gpu-2gpu.csv').split('\n')[1]!, GTX_1060],
    ['[N/A] power is left out', fixture('query-gpu-na.csv').split('\n')[0]!, GTX_1050_TI],
    ['a comma inside the name', '0, NVIDIA A100-SXM4-80GB, MIG 1g.10gb, 5, 10, 20, 30, 40.5', { ...H100, name: 'NVIDIA A100-SXM4-80GB, MIG 1g.10gb', utilizationPct: 5, memoryUsedMiB: 10, memoryTotalMiB: 20, temperatureC: 30, powerW: 40.5 }],
    ['an error line', fixture('query-gpu-lost.csv').split('\n')[1]!, undefined],
    ['too few fields', '0, NVIDIA H100 80GB HBM3, 0, 72790', undefined],
    ['a non-number reading', '0, NVIDIA H100 80GB HBM3, 0 %, 72790, 81559, 39, 145.00', undefined],
  ])('%s', (_name, line, want) => {
    const got = parseGpuLine(line);
    expect(got).toEqual(want ? { ok: true, gpu: want } : { ok: false });
  });
});

describe('parseComputeApps', () => {
  it('maps recorded rows to VRAM bytes per pid', () => {
    const apps = parseComputeApps(fixture('compute-apps.csv'));
    expect(apps).toEqual({ vram: new Map([[4054862, 990 * MIB], [4055325, 2404 * MIB]]), bad: [] });
  });

  it('sums a pid across GPUs, skips [N/A] memory and reports garbage', () => {
    const apps = parseComputeApps('17, 100\n17, 50\n18, [N/A]\nNo running processes found\nFailed to initialize NVML: Unknown Error\n');
    expect(apps).toEqual({ vram: new Map([[17, 150 * MIB]]), bad: ['Failed to initialize NVML: Unknown Error'] });
  });
});

describe('parseRocmJson', () => {
  it.each<[string, GpuStatus[], string[]]>([
    ['rocm-6.x-rx7900xt.json', [RX_7900_XT], []],
    ['rocm-6.2-radeon780m.json', [RADEON_780M], []],
    ['rocm-2.x-vega.json', [VEGA], []],
  ])('%s', (file, gpus, warnings) => {
    expect(parseRocmJson(fixture(file))).toEqual({ gpus, warnings });
  });

  it('tolerates a warning before the JSON, and reports output without JSON or cards', () => {
    expect(parseRocmJson(`WARNING: AMD GPU device(s) is/are in a low-power state. Check power control/runtime_status\n${fixture('rocm-2.x-vega.json')}`).gpus).toEqual([VEGA]);
    expect(parseRocmJson('ERROR: GPU[0]\t\t: Unable to get GPU use.')).toEqual({ gpus: [], warnings: ['rocm-smi: no JSON in output "ERROR: GPU[0]\\t\\t: Unable to get GPU use."'] });
    expect(parseRocmJson('{"system": {"Driver version": "6.8.5"}}')).toEqual({ gpus: [], warnings: ['rocm-smi: no GPU (cardN) in its output'] });
  });
});

describe('ResourceSampler with nvidia-smi', () => {
  it.each<[string, string, GpuStatus[]]>([
    ['one GPU', 'query-gpu-h100.csv', [H100]],
    ['two GPUs, grouped by index', 'query-gpu-2gpu.csv', [GTX_1080_TI, GTX_1060]],
    ['[N/A] fields', 'query-gpu-na.csv', [GTX_1050_TI]],
  ])('%s', async (_name, file, want) => {
    const sampler = startSampler({ env: nvidiaEnv(file) });
    const gpus = await until(() => (sampler.view().gpus.length === want.length ? sampler.view().gpus : undefined), `${want.length} GPU(s)`);
    expect(sampler.tool).toBe('nvidia');
    expect(gpus).toEqual(want);
    expect(sampler.view().warnings).toEqual([]);
  });

  it('turns a garbage line into a warning and keeps the readable GPU', async () => {
    const sampler = startSampler({ env: nvidiaEnv('query-gpu-lost.csv') });
    const warnings = await until(() => (sampler.view().warnings.length ? sampler.view().warnings : undefined), 'a warning');
    expect(warnings).toEqual(['nvidia-smi: could not parse line "Unable to determine the device handle for GPU 0000:0B:00.0: Unknown Error"']);
    expect(sampler.view().gpus).toEqual([H100]);
  });

  it('restarts the sampler when nvidia-smi exits, with a warning saying why', async () => {
    const spawns = join(toolDir([]), 'spawns');
    const sampler = startSampler({ env: nvidiaEnv('query-gpu-h100.csv', { FAKE_DIE: '1', FAKE_SPAWNS: spawns }) });
    const warning = await until(() => sampler.view().warnings.find((w) => w.startsWith('nvidia-smi sampler stopped')), 'the exit warning');
    expect(warning).toMatch(/^nvidia-smi sampler stopped \(exit code 15: Unable to determine the device handle for GPU 0000:0B:00\.0: Unknown Error\); restarting in \d+ ms$/);
    await until(() => (readFileSync(spawns, 'utf8').trim().split('\n').length >= 3 ? true : undefined), 'a third start');
    expect(sampler.view().gpus).toEqual([H100]);
  });

  it('kills and restarts an nvidia-smi that stays alive but prints nothing', async () => {
    const spawns = join(toolDir([]), 'spawns');
    const sampler = startSampler({ env: nvidiaEnv('query-gpu-h100.csv', { FAKE_HANG: '1', FAKE_SPAWNS: spawns }), stallMs: 300 });
    const warning = await until(() => sampler.view().warnings.find((w) => w.includes('printed nothing')), 'the stall warning');
    expect(warning).toMatch(/^nvidia-smi printed nothing for \d+ ms; restarting it$/);
    const first = Number(readFileSync(spawns, 'utf8').split('\n')[0]);
    await until(() => (readFileSync(spawns, 'utf8').trim().split('\n').length >= 2 ? true : undefined), 'a second start');
    expect(() => process.kill(first, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });

  it('kills nvidia-smi on close', async () => {
    const spawns = join(toolDir([]), 'spawns');
    const sampler = startSampler({ env: nvidiaEnv('query-gpu-h100.csv', { FAKE_SPAWNS: spawns }) });
    await until(() => (sampler.view().gpus.length ? true : undefined), 'a GPU');
    const pid = Number(readFileSync(spawns, 'utf8').trim());
    await sampler.close();
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });

  it('maps --query-compute-apps rows to the tracked pids as vramBytes', async () => {
    const sleeper = child('/bin/sleep', ['30']);
    const sampler = startSampler({
      env: nvidiaEnv('query-gpu-h100.csv', { FAKE_PID_MAP: `4054862:${sleeper} 4055325:${process.pid}` }),
      pids: () => [sleeper, process.pid],
    });
    const usage = await until(() => {
      const a = sampler.usage(sleeper);
      const b = sampler.usage(process.pid);
      return a?.vramBytes !== undefined && b?.vramBytes !== undefined ? { a, b } : undefined;
    }, 'VRAM for both pids');
    expect(usage.a.vramBytes).toBe(990 * MIB);
    expect(usage.b.vramBytes).toBe(2404 * MIB);
    expect(usage.a.rssBytes).toBeGreaterThan(0);
    expect(sampler.view().usage(sleeper)).toEqual(sampler.usage(sleeper));
  });

  it('warns when nvidia-smi lists no GPU and samples CPU only', async () => {
    const sampler = startSampler({ env: { ...nvidiaEnv('query-gpu-h100.csv'), FAKE_LIST: '' } });
    await sampler.start();
    expect(sampler.tool).toBe('none');
    expect(sampler.view().warnings).toEqual([
      "nvidia-smi lists no GPU: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
    ]);
    expect(sampler.view().gpus).toEqual([]);
    expect(sampler.view().host?.memoryTotalBytes).toBe(totalmem());
  });
});

describe('ResourceSampler with rocm-smi', () => {
  it.each<[string, GpuStatus[]]>([
    ['rocm-6.x-rx7900xt.json', [RX_7900_XT]],
    ['rocm-6.2-radeon780m.json', [RADEON_780M]],
    ['rocm-2.x-vega.json', [VEGA]],
  ])('%s', async (file, want) => {
    const sampler = startSampler({ env: { PATH: toolDir(['rocm-smi']), FAKE_ROCM: join(FIX, file) } });
    const gpus = await until(() => (sampler.view().gpus.length ? sampler.view().gpus : undefined), 'a GPU');
    expect(sampler.tool).toBe('rocm');
    expect(gpus).toEqual(want);
    expect(sampler.view().warnings).toEqual([]);
  });

  it('warns when rocm-smi prints no JSON', async () => {
    const bad = join(toolDir([]), 'bad.txt');
    writeFileSync(bad, 'ERROR: GPU[0]\t\t: Unable to get GPU use.\n');
    const sampler = startSampler({ env: { PATH: toolDir(['rocm-smi']), FAKE_ROCM: bad } });
    const warnings = await until(() => (sampler.view().warnings.length ? sampler.view().warnings : undefined), 'a warning');
    expect(warnings).toEqual(['rocm-smi: no JSON in output "ERROR: GPU[0]\\t\\t: Unable to get GPU use."']);
    expect(sampler.view().gpus).toEqual([]);
  });
});

describe('ResourceSampler without GPU tools', () => {
  it('reports host memory, CPU count and load, and CPU/RSS of real processes', async () => {
    // Busy for at most 20 s so a crashed test run cannot leave a core spinning.
    const busy = child(process.execPath, ['-e', 'const end = Date.now() + 20000; while (Date.now() < end);']);
    const sampler = startSampler({ env: { PATH: toolDir([]) }, pids: () => [process.pid, busy] });
    let changes = 0;
    sampler.on('change', () => changes++);
    // Past the first reading (a lifetime average), a spinning process shows most of a core.
    const spinning = await until(() => {
      const u = sampler.usage(busy);
      return u && u.cpuPct > 20 && sampler.view().host?.loadPct !== undefined ? u : undefined;
    }, 'the busy child above 20% CPU');
    expect(spinning.cpuPct).toBeLessThanOrEqual(100 * availableParallelism() + 10);
    expect(spinning.rssBytes).toBeGreaterThan(MIB);
    const own = sampler.usage(process.pid);
    expect(own?.rssBytes).toBeGreaterThan(10 * MIB);
    expect(own?.vramBytes).toBeUndefined();

    const view = sampler.view();
    expect(sampler.tool).toBe('none');
    expect(view.gpus).toEqual([]);
    expect(view.warnings).toEqual([]);
    expect(view.host).toEqual({
      memoryTotalBytes: totalmem(),
      memoryAvailableBytes: expect.any(Number),
      cpuCount: availableParallelism(),
      loadPct: expect.any(Number),
    });
    expect(view.host!.memoryAvailableBytes).toBeGreaterThan(0);
    expect(view.host!.memoryAvailableBytes).toBeLessThanOrEqual(totalmem());
    expect(view.host!.loadPct).toBeGreaterThanOrEqual(0);
    expect(view.host!.loadPct).toBeLessThanOrEqual(100);
    expect(changes).toBeGreaterThan(0);
    expect(sampler.usage(12345678)).toBeUndefined();
  });

  it('turns a throwing pids callback into a warning instead of crashing the timer', async () => {
    const sampler = startSampler({ env: { PATH: toolDir([]) }, pids: () => { throw new Error('supervisor gone'); } });
    const warnings = await until(() => (sampler.view().warnings.length ? sampler.view().warnings : undefined), 'a warning');
    expect(warnings).toEqual(['resource sampling failed: supervisor gone']);
  });
});
