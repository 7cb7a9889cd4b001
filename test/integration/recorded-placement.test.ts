// The load's placement lines (layers, buffers) print only at -lv 4, where llama-server also lists its
// whole prompt cache on every request. Once a load of the same file and settings recorded the placement
// (calibration.json), a launch that places the model the same way runs at -lv 3 and shows the recorded
// placement (daemon/memory/calibration.ts recordedPlacement). Real llama-server, tiny model, on the CPU.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { InstanceStatus } from '../../shared/protocol';
import { llamaVerbosity, placementRecorded, startTestDaemon, tempDir, type TestDaemon } from '../helpers/daemon';
import { tinyModelPath } from '../helpers/tiny';
import type { CalibrationEntry } from '../../daemon/memory/calibration';

const FIX = resolve(__dirname, '../fixtures/gpu');

/** The instance's log since its latest launch (each launch starts with a `--- <time> slotwise:` line). */
function currentLaunchLog(d: TestDaemon): string {
  const log = readFileSync(join(d.stateDir, 'logs', 'm_1.log'), 'utf8');
  return log.slice(log.lastIndexOf('--- '));
}

async function complete(d: TestDaemon, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'm', prompt: `Prompt ${i}: name a colour.`, max_tokens: 2 }) });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  }
}

/** A stand-in nvidia-smi on PATH (test/fixtures/gpu): one GPU listed, or the driver failure it replays when FAKE_LIST is unset. */
function fakeNvidiaSmi(lists: boolean, usedMiB = 512): NodeJS.ProcessEnv {
  const dir = tempDir('gpu');
  copyFileSync(join(FIX, 'fake-nvidia-smi.sh'), join(dir, 'nvidia-smi'));
  chmodSync(join(dir, 'nvidia-smi'), 0o755);
  writeFileSync(join(dir, 'gpu.csv'), `0, NVIDIA GeForce RTX 4090, 0, ${usedMiB}, 24564, 40, 30.00\n`);
  writeFileSync(join(dir, 'apps.csv'), '');
  return { PATH: `${dir}:${process.env.PATH}`, FAKE_GPU: join(dir, 'gpu.csv'), FAKE_APPS: join(dir, 'apps.csv'), ...(lists ? { FAKE_LIST: join(FIX, 'nvidia-smi-L.txt') } : {}) };
}

const instance = (d: TestDaemon) => async (): Promise<InstanceStatus | undefined> => (await d.status()).models[0]?.instances[0];

describe('recorded placement', () => {
  it('runs llama-server at -lv 4 until a load recorded its placement, then at -lv 3 with that placement in status', async () => {
    const d = await startTestDaemon({ models: { m: { slots: 2, gpuLayers: 0 } } });
    const s1 = await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready', 'ready');
    const first = s1.models[0]!.instances[0]!;
    expect(llamaVerbosity(first.pid!)).toBe('4');
    expect(first.offload?.recordedAt).toBeUndefined();
    expect(Object.keys(first.offload?.buffers ?? {})).toContain('model CPU_Mapped');
    await placementRecorded(d.stateDir);
    const actual = s1.models[0]!.memory?.actualBytes;
    await complete(d, 4);
    expect(currentLaunchLog(d)).toContain(' - cache state: '); // -lv 4: the prompt cache's state on each request

    // The process dies; its replacement places the model as the first did (gpuLayers 0).
    process.kill(first.pid!, 'SIGKILL');
    const s2 = await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready' && s.models[0].instances[0].pid !== first.pid, 'restarted', 30_000);
    const second = s2.models[0]!.instances[0]!;
    expect(llamaVerbosity(second.pid!)).toBe('3');
    const { recordedAt, ...placement } = second.offload!;
    expect(placement).toEqual(first.offload);
    expect(recordedAt).toBeGreaterThan(0);
    expect(s2.models[0]!.memory?.actualBytes).toBe(actual); // the loader's plan vs actual is unchanged
    await complete(d, 4);
    const log = currentLaunchLog(d);
    expect(log).toContain('-lv 3');
    expect(log).not.toContain(' - cache state: '); // no trace lines, so no prompt-cache listing either
    expect((await instance(d)())?.offload?.recordedAt).toBe(recordedAt);
  }, 90_000);

  // gpuLayers "auto" with a GPU is llama-server's own fit, from the memory free at each launch; a GPU tool
  // that is there but fails cannot rule a GPU out. (This host has no GPU: a stand-in nvidia-smi, as in
  // capacity.test.ts, makes the daemon see one, or fail to ask; llama-server itself still runs on the CPU.)
  for (const [what, gpuTool] of [['a GPU the daemon sees', 'lists'], ['a GPU tool that fails', 'fails'], ['no GPU tool', 'none']] as const) {
    it(`with gpuLayers "auto" and ${what}, ${gpuTool === 'none' ? 'runs at -lv 3 after the first load' : 'keeps every launch at -lv 4'}`, async () => {
      const d = await startTestDaemon({ models: { m: { slots: 2 } }, env: gpuTool === 'none' ? {} : fakeNvidiaSmi(gpuTool === 'lists') });
      const first = (await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready', 'ready')).models[0]!.instances[0]!;
      expect(llamaVerbosity(first.pid!)).toBe('4');
      await placementRecorded(d.stateDir);
      process.kill(first.pid!, 'SIGKILL');
      const s = await d.waitFor((x) => x.models[0]?.instances[0]?.state === 'ready' && x.models[0].instances[0].pid !== first.pid, 'restarted', 30_000);
      const second = s.models[0]!.instances[0]!;
      expect(llamaVerbosity(second.pid!)).toBe(gpuTool === 'none' ? '3' : '4');
      expect(second.offload?.recordedAt === undefined).toBe(gpuTool !== 'none');
    }, 60_000);
  }

  // The common case on a GPU host: "auto" put every layer on its one GPU. When that GPU has as much free
  // again (with the fit's 1 GiB target and a margin), the fit changes nothing, so the recorded placement
  // holds and the launch runs at -lv 3. The load recorded here ran on the CPU: its entry is rewritten as
  // a whole-GPU load (100 MiB on gpu0) between two daemons on one state dir and one model path (both in the key).
  it('with gpuLayers "auto", a whole-GPU load recorded and that much free on the one GPU, runs at -lv 3; with the GPU nearly full, at -lv 4', async () => {
    const dir = tempDir('whole-gpu');
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    const path = join(dir, 'm.gguf');
    symlinkSync(await tinyModelPath(), path);
    const launch = async (usedMiB: number): Promise<{ d: TestDaemon; inst: InstanceStatus }> => {
      const d = await startTestDaemon({ models: { m: { slots: 2, path } }, stateDir, env: fakeNvidiaSmi(true, usedMiB) });
      const inst = (await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready', 'ready')).models[0]!.instances[0]!;
      return { d, inst };
    };
    const first = await launch(512);
    expect(llamaVerbosity(first.inst.pid!)).toBe('4'); // nothing recorded yet
    const file = join(stateDir, 'calibration.json');
    await placementRecorded(stateDir);
    await first.d.stop();
    const entries = JSON.parse(readFileSync(file, 'utf8')) as Record<string, CalibrationEntry>;
    expect(Object.keys(entries)).toHaveLength(1);
    const entry = Object.values(entries)[0]!;
    const layers = entry.placement!.layersTotal!;
    entry.placement = { layersOnGpu: layers, layersTotal: layers, buffers: { 'model CUDA0': 50, 'kv CUDA0': 30, 'compute CUDA0': 20 } };
    entry.actual = { host: entry.actual.host!, gpu0: 100 * 1024 * 1024 };
    writeFileSync(file, JSON.stringify(entries));

    const second = await launch(512); // 23.5 GiB free ≥ 100 MiB + 1 GiB + 1 GiB
    expect(llamaVerbosity(second.inst.pid!)).toBe('3');
    expect(second.inst.offload).toMatchObject({ layersOnGpu: layers, layersTotal: layers, recordedAt: entry.at });
    await second.d.stop();

    const third = await launch(24564 - 2000); // 1.95 GiB free: short of the margin
    expect(llamaVerbosity(third.inst.pid!)).toBe('4');
    expect(third.inst.offload?.recordedAt).toBeUndefined();
  }, 120_000);

  it('leaves a verbosity in the model\'s args alone', async () => {
    const d = await startTestDaemon({ models: { m: { slots: 2, gpuLayers: 0, args: ['-lv', '2'] } } });
    const s = await d.waitFor((x) => x.models[0]?.instances[0]?.state === 'ready', 'ready');
    expect(llamaVerbosity(s.models[0]!.instances[0]!.pid!)).toBe('2');
    expect(s.models[0]!.instances[0]!.offload).toBeUndefined(); // -lv 2: no placement lines, none recorded yet
  }, 60_000);
});
