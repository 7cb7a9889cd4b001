import { describe, expect, it } from 'vitest';
import { freeFromStatus, markFitsNow, usedByLoaded } from '../../daemon/memory/fit-now';
import { promptCachesByDevice } from '../../shared/prompt-caches';
import type { ModelMemoryStatus, ModelStatus } from '../../shared/protocol';
import { instance, model } from './extension-fixtures';

const MIB = 1024 * 1024;

function mem(host: number, gpu0?: number, actual?: { host: number; gpu0?: number }): ModelMemoryStatus {
  const byDevice = [
    { device: 'host', label: 'host RAM', planBytes: host * MIB, ...(actual ? { actualBytes: actual.host * MIB } : {}) },
    ...(gpu0 !== undefined ? [{ device: 'gpu0', label: 'GPU 0', planBytes: gpu0 * MIB, ...(actual ? { actualBytes: (actual.gpu0 ?? 0) * MIB } : {}) }] : []),
  ];
  return { planBytes: byDevice.reduce((a, d) => a + d.planBytes, 0), byDevice };
}

const loaded = (name: string, memory: ModelMemoryStatus, replicas = 1): ModelStatus =>
  model({ name, memory, replicas, instances: Array.from({ length: replicas }, (_, i) => instance({ id: `${name}#${i + 1}` })) });
const down = (name: string, memory?: ModelMemoryStatus): ModelStatus => model({ name, replicas: 0, instances: [], ...(memory ? { memory } : {}) });

describe('fit now (status)', () => {
  it('counts what loaded models hold: actual buffers once ready, the plan while loading, per live replica', () => {
    const ready = loaded('a', mem(100, 400, { host: 90, gpu0: 410 }), 2);
    const loading = model({ name: 'b', replicas: 1, memory: mem(50), instances: [instance({ id: 'b#1', state: 'loading' })] });
    const starting = model({ name: 'c', replicas: 1, memory: mem(30), instances: [] });
    const used = usedByLoaded([ready, loading, starting, down('d', mem(999))]);
    expect(Object.fromEntries(used)).toEqual({ host: (2 * 90 + 50 + 30) * MIB, gpu0: 2 * 410 * MIB });
  });

  it('under a budget: a down model fits in what the loaded ones leave; one that needs eviction does not', () => {
    const models = [loaded('a', mem(300)), down('small', mem(150)), down('mid', mem(250)), down('never', undefined)];
    markFitsNow(models, { host: 10_000 * MIB, gpus: [] }, 512);
    expect(models.map((m) => m.memory?.fitsNow)).toEqual([undefined, true, false, undefined]);
  });

  it('without a budget the free memory decides, on every device of the plan', () => {
    const models = [down('fits', mem(100, 500)), down('gpu-short', mem(100, 900)), down('host-short', mem(3000, 10))];
    markFitsNow(models, { host: 2000 * MIB, gpus: [{ index: 0, free: 800 * MIB }] }, undefined);
    expect(models.map((m) => m.memory?.fitsNow)).toEqual([true, false, false]);
  });

  it('plans a down model without a plan through the preview, given the room the loaded ones leave; never a loading one', () => {
    const seen: [string, number][] = [];
    const preview = (name: string, _free: unknown, room: { host: number }) => {
      seen.push([name, room.host / MIB]);
      return name === 'auto' ? mem(100) : undefined;
    };
    const models = [loaded('a', mem(300)), down('auto'), down('unreadable'), down('planned', mem(150)), model({ name: 'preparing', replicas: 0, instances: [], load: { state: 'loading' } })];
    markFitsNow(models, { host: 10_000 * MIB, gpus: [] }, 512, preview);
    expect(seen).toEqual([['auto', 212], ['unreadable', 212]]);
    expect(models.map((m) => m.memory?.fitsNow)).toEqual([undefined, true, undefined, true, undefined]);
    expect(models[1]!.memory?.planBytes).toBe(100 * MIB);
  });

  it('leaves the fit unknown while a GPU of the plan has no reading yet', () => {
    const models = [down('gpu', mem(100, 500)), down('host-only', mem(100, 0))];
    markFitsNow(models, { host: 2000 * MIB, gpus: [] }, undefined);
    expect(models.map((m) => m.memory?.fitsNow)).toEqual([undefined, true]);
  });

  it("counts each model's prompt cache at its limit: held beside the buffers, in a down model's plan, and off free memory without a budget", () => {
    const cached = (host: number, cache: number, actual?: number): ModelMemoryStatus => {
      const m = mem(host, undefined, actual !== undefined ? { host: actual } : undefined);
      return { ...m, promptCacheBytes: cache * MIB, byDevice: m.byDevice.map((d) => ({ ...d, promptCacheBytes: cache * MIB })) };
    };
    expect(Object.fromEntries(usedByLoaded([loaded('a', cached(100, 32, 90), 2)]))).toEqual({ host: 2 * (90 + 32) * MIB });
    expect(Object.fromEntries(promptCachesByDevice([loaded('a', cached(100, 32, 90), 2), down('d', cached(10, 8))]))).toEqual({ host: 2 * 32 * MIB });

    // Budget 512: a holds 100 + 32; the 300 MiB model fits only without its 100 MiB cache; with promptCacheMiB 0 it fits.
    const budget = [loaded('a', cached(100, 32, 100)), down('cache', cached(300, 100)), down('nocache', mem(300))];
    markFitsNow(budget, { host: 10_000 * MIB, gpus: [] }, 512);
    expect(budget.map((m) => m.memory?.fitsNow)).toEqual([undefined, false, true]);

    // No budget, 500 MiB free: a's cache may still take 32 of it.
    const free = [loaded('a', cached(100, 32, 100)), down('fits', mem(468)), down('short', mem(469))];
    markFitsNow(free, { host: 500 * MIB, gpus: [] }, undefined);
    expect(free.map((m) => m.memory?.fitsNow)).toEqual([undefined, true, false]);
  });

  it('reads free memory from status as the loader reads it: MemAvailable, total − used per GPU', () => {
    const free = freeFromStatus({ memoryTotalBytes: 16 * 2 ** 30, memoryAvailableBytes: 5 * 2 ** 30, cpuCount: 4 }, [
      { index: 0, name: 'H100', utilizationPct: 0, memoryUsedMiB: 1000, memoryTotalMiB: 81_559 },
    ]);
    expect(free).toEqual({ host: 5 * 2 ** 30, gpus: [{ index: 0, free: 80_559 * MIB }] });
  });
});
