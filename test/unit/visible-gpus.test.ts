// CUDA_VISIBLE_DEVICES: the plan uses the GPUs llama-server sees, in its order, and reads its buffers
// back under nvidia-smi's indices. This host has no GPU, so the GPUs come from the stand-in nvidia-smi
// replaying a recorded two-GPU host (test/fixtures/gpu); llama-server's own numbering is its log's buffer names.
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inDeviceOrder, visibleGpus } from '../../daemon/resources/visible-gpus';
import { readFreeMemory } from '../../daemon/memory/free-memory';
import { actualByDevice } from '../../daemon/memory/budget';

const FIX = resolve(__dirname, '../fixtures/gpu');
const MIB = 2 ** 20;

describe('visibleGpus', () => {
  it.each([
    [{}, undefined],
    [{ CUDA_VISIBLE_DEVICES: '1' }, [1]],
    [{ CUDA_VISIBLE_DEVICES: '2, 0' }, [2, 0]],
    [{ CUDA_VISIBLE_DEVICES: '' }, []],
    [{ CUDA_VISIBLE_DEVICES: '-1' }, []],
    [{ CUDA_VISIBLE_DEVICES: '1,-1,0' }, [1]], // CUDA stops at the first invalid entry
    [{ CUDA_VISIBLE_DEVICES: '0,0' }, [0]],
    [{ CUDA_VISIBLE_DEVICES: 'GPU-8f6c1e2a-0d1b-4c3e-9a7f-123456789abc' }, undefined], // a UUID: not mapped
    [{ HIP_VISIBLE_DEVICES: '1' }, [1]],
    [{ CUDA_VISIBLE_DEVICES: '0', HIP_VISIBLE_DEVICES: '1' }, [0]],
  ])('%j → %j', (env, want) => {
    expect(visibleGpus(env as NodeJS.ProcessEnv)).toEqual(want);
  });

  it('orders GPUs as llama-server numbers them, dropping those it cannot see', () => {
    const gpus = [{ index: 0 }, { index: 1 }, { index: 2 }];
    expect(inDeviceOrder(gpus, [2, 0])).toEqual([{ index: 2 }, { index: 0 }]);
    expect(inDeviceOrder(gpus, [5])).toEqual([]);
    expect(inDeviceOrder(gpus, undefined)).toEqual(gpus);
  });

  it("reads llama-server's CUDA0 as the first visible GPU", () => {
    const buffers = { 'model CUDA0': 100, 'kv CUDA1': 10, 'model CPU_Mapped': 5 };
    expect(Object.fromEntries(actualByDevice(buffers, [2, 0]))).toEqual({ gpu2: 100 * MIB, gpu0: 10 * MIB, host: 5 * MIB });
    expect(Object.fromEntries(actualByDevice(buffers))).toEqual({ gpu0: 100 * MIB, gpu1: 10 * MIB, host: 5 * MIB });
  });
});

describe('free memory for a plan', () => {
  const dir = mkdtempSync(join(tmpdir(), 'slotwise-visible-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(join(FIX, 'fake-nvidia-smi.sh'), join(dir, 'nvidia-smi'));
  chmodSync(join(dir, 'nvidia-smi'), 0o755);
  // GPU 0: 11175 MiB, 2856 used; GPU 1: 6078 MiB, 4 used.
  const env = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ PATH: dir, FAKE_LIST: join(FIX, 'nvidia-smi-L.txt'), FAKE_GPU: join(FIX, 'query-gpu-2gpu.csv'), ...extra });

  it('lists only the visible GPUs, in their CUDA order', async () => {
    const all = await readFreeMemory(env({}));
    expect(all.free.gpus).toEqual([{ index: 0, free: (11175 - 2856) * MIB }, { index: 1, free: (6078 - 4) * MIB }]);
    expect((await readFreeMemory(env({ CUDA_VISIBLE_DEVICES: '1' }))).free.gpus).toEqual([{ index: 1, free: (6078 - 4) * MIB }]);
    expect((await readFreeMemory(env({ CUDA_VISIBLE_DEVICES: '1,0' }))).free.gpus.map((g) => g.index)).toEqual([1, 0]);
    expect((await readFreeMemory(env({ CUDA_VISIBLE_DEVICES: '' }))).free.gpus).toEqual([]);
  });
});
