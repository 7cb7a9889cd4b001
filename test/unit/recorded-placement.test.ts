// When a launch may reuse an earlier load's placement (and so run llama-server at -lv 3): only where
// llama-server would place the model the same way again (daemon/memory/calibration.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CalibrationStore, calibrationKey, CONTEXT_MARGIN_BYTES, FIT_TARGET_BYTES, MAX_CALIBRATION_ENTRIES, recordedPlacement, wholeFitAgain, type GpusAtLaunch, type LaunchPlacement } from '../../daemon/memory/calibration';
import { serverMemoryOptions } from '../../daemon/memory/server-args';
import type { Placement } from '../../shared/protocol';
import { tempDir } from '../helpers/daemon';

const CPU: Placement = { layersOnGpu: 0, layersTotal: 3, buffers: { 'model CPU_Mapped': 0.52, 'kv CPU': 2, 'compute CPU': 1.1 } };
const GPU: Placement = { layersOnGpu: 9, layersTotal: 9, buffers: { 'model CUDA0': 2600, 'kv CUDA0': 128, 'compute CUDA_Host': 4 } };

/** A store holding one load of `launch` that placed the model as `placement`. */
async function recorded(launch: Omit<LaunchPlacement, 'path'>, placement: Placement, actual: [string, number][] = [['host', 1000]]): Promise<{ store: CalibrationStore; path: string }> {
  const dir = tempDir('placement');
  const path = join(dir, 'm.gguf');
  writeFileSync(path, 'GGUF');
  const store = new CalibrationStore(join(dir, 'calibration.json'));
  const key = await calibrationKey(path, { slots: launch.slots, ctxPerSlot: launch.ctxPerSlot, gpuLayers: launch.gpuLayers, server: serverMemoryOptions(launch.args) });
  await store.record(key!, 1000, new Map(actual), { ...placement, recordedAt: 1 }); // a recordedAt passed in is not stored
  return { store, path };
}

const GIB = 1024 ** 3;
const noGpu = async (): Promise<GpusAtLaunch> => ({ count: 0, free: [], othersLoading: false });
/** One GPU, `free` bytes free on it now (default: none, as when the recorded load needs more than is free). */
const oneGpu = async (free = 0, othersLoading = false): Promise<GpusAtLaunch> => ({ count: 1, free: [{ index: 0, free }], othersLoading });

describe('recordedPlacement', () => {
  const base = { slots: 2, ctxPerSlot: 1024, args: [] as string[], promptCacheMiB: 'auto' as const };

  it('gives a fixed layer count or "all" the recorded placement, with the time of that load', async () => {
    for (const [gpuLayers, placement] of [[0, CPU], [9, GPU], ['all', GPU]] as const) {
      const { store, path } = await recorded({ ...base, gpuLayers }, placement);
      const got = await recordedPlacement(store, { ...base, gpuLayers, path }, () => oneGpu());
      expect(got).toEqual({ ...placement, recordedAt: expect.any(Number) });
      expect(got!.recordedAt).toBeGreaterThan(1);
    }
  });

  it('gives "auto" one on a host with no GPU where the recorded load used none', async () => {
    const cpu = await recorded({ ...base, gpuLayers: 'auto' }, CPU);
    expect(await recordedPlacement(cpu.store, { ...base, gpuLayers: 'auto', path: cpu.path }, noGpu)).toMatchObject(CPU);
    // A GPU now: llama-server's fit decides from the memory free at launch.
    expect(await recordedPlacement(cpu.store, { ...base, gpuLayers: 'auto', path: cpu.path }, () => oneGpu(80 * GIB))).toBeUndefined();
    // The recorded load used a GPU the daemon does not see now (no nvidia-smi): not the same placement either.
    const gpu = await recorded({ ...base, gpuLayers: 'auto' }, GPU);
    expect(await recordedPlacement(gpu.store, { ...base, gpuLayers: 'auto', path: gpu.path }, noGpu)).toBeUndefined();
    const host = await recorded({ ...base, gpuLayers: 'auto' }, { ...CPU, buffers: { ...CPU.buffers, 'compute CUDA_Host': 4 } });
    expect(await recordedPlacement(host.store, { ...base, gpuLayers: 'auto', path: host.path }, noGpu)).toBeUndefined();
  });

  it('gives "auto" one on a host with one GPU when the recorded load put every layer there and as much is free again, with the fit\'s margin', async () => {
    const need = 2_900_000_000; // what that load allocated on the GPU
    const enough = need + FIT_TARGET_BYTES + CONTEXT_MARGIN_BYTES;
    const { store, path } = await recorded({ ...base, gpuLayers: 'auto' }, GPU, [['host', 0.3 * GIB], ['gpu0', need]]);
    const launch = { ...base, gpuLayers: 'auto' as const, path };
    expect(await recordedPlacement(store, launch, () => oneGpu(enough))).toEqual({ ...GPU, recordedAt: expect.any(Number) });
    // A byte short: the fit might keep a layer on the CPU.
    expect(await recordedPlacement(store, launch, () => oneGpu(enough - 1))).toBeUndefined();
    // Another instance loading now: its memory is not in nvidia-smi's reading yet.
    expect(await recordedPlacement(store, launch, () => oneGpu(enough, true))).toBeUndefined();
    // The GPU tool failed: nothing free is known.
    expect(await recordedPlacement(store, launch, async () => ({ count: 1, free: [], othersLoading: false }))).toBeUndefined();
    // Two GPUs: the split follows each one's free memory.
    expect(await recordedPlacement(store, launch, async () => ({ count: 2, free: [{ index: 0, free: 80 * GIB }, { index: 1, free: 80 * GIB }], othersLoading: false }))).toBeUndefined();
  });

  it('wholeFitAgain: every layer on the GPU, on the GPU now listed, no fit option of the user\'s', () => {
    const gpus: GpusAtLaunch = { count: 1, free: [{ index: 0, free: 80 * GIB }], othersLoading: false };
    const entry = { actual: { host: GIB, gpu0: 3 * GIB }, placement: GPU };
    expect(wholeFitAgain(entry, [], gpus)).toBe(true);
    expect(wholeFitAgain({ ...entry, placement: { ...GPU, layersOnGpu: 8 } }, [], gpus)).toBe(false); // the fit kept a layer off
    expect(wholeFitAgain({ ...entry, placement: { buffers: GPU.buffers } }, [], gpus)).toBe(false); // no layer counts read
    expect(wholeFitAgain({ ...entry, placement: undefined }, [], gpus)).toBe(false);
    expect(wholeFitAgain(entry, [], { ...gpus, free: [{ index: 1, free: 80 * GIB }] })).toBe(false); // recorded on gpu0, the one listed is gpu1
    expect(wholeFitAgain({ ...entry, actual: { host: GIB, gpu0: GIB, gpu1: GIB } }, [], gpus)).toBe(false); // the recorded load used two
    for (const args of [['--fit-target', '4096'], ['-fitt', '4096'], ['--fit', 'off'], ['-fitc', '8192']]) expect(wholeFitAgain(entry, args, gpus)).toBe(false);
    expect(wholeFitAgain(entry, ['--threads', '4'], gpus)).toBe(true);
  });

  it('has none for other settings, a changed file or a load recorded without one', async () => {
    const { store, path } = await recorded({ ...base, gpuLayers: 0 }, CPU);
    const launch = { ...base, gpuLayers: 0, path };
    expect(await recordedPlacement(store, { ...launch, slots: 3 }, noGpu)).toBeUndefined();
    expect(await recordedPlacement(store, { ...launch, ctxPerSlot: 2048 }, noGpu)).toBeUndefined();
    expect(await recordedPlacement(store, { ...launch, gpuLayers: 1 }, noGpu)).toBeUndefined();
    expect(await recordedPlacement(store, { ...launch, args: ['-ctk', 'q8_0'] }, noGpu)).toBeUndefined();
    expect(await recordedPlacement(store, { ...launch, args: ['-ctk', 'nope'] }, noGpu)).toBeUndefined(); // unreadable args: no key
    expect(await recordedPlacement(store, { ...launch, args: ['--threads', '1'] }, noGpu)).toMatchObject(CPU); // no memory flag
    expect(await recordedPlacement(store, { ...launch, args: ['--swa-full'] }, noGpu)).toBeUndefined(); // window layers at full size: other buffers
    expect(await recordedPlacement(store, { ...launch, args: ['--n-cpu-moe', '4'] }, noGpu)).toBeUndefined(); // tensors placed otherwise
    writeFileSync(path, 'GGUF, rewritten'); // size and mtime are part of the key
    expect(await recordedPlacement(store, launch, noGpu)).toBeUndefined();
    expect(await recordedPlacement(store, { ...launch, path: `${path}.missing` }, noGpu)).toBeUndefined();

    const old = await recorded({ ...base, gpuLayers: 0 }, CPU);
    const file = join(old.path, '..', 'calibration.json');
    const bare = new CalibrationStore(file);
    const key = await calibrationKey(old.path, { ...base, gpuLayers: 0, server: serverMemoryOptions([]) });
    await bare.record(key!, 1000, new Map([['host', 1000]])); // as daemons before placements were kept wrote it
    expect(await recordedPlacement(new CalibrationStore(file), { ...base, gpuLayers: 0, path: old.path }, noGpu)).toBeUndefined();
  });

  it('has none after llama-server changed: the binary (path, size, mtime) is part of the key', async () => {
    const dir = tempDir('placement-build');
    const model = join(dir, 'm.gguf');
    const binary = join(dir, 'llama-server');
    writeFileSync(model, 'GGUF');
    writeFileSync(binary, 'build 1');
    const file = join(dir, 'calibration.json');
    const launch = { ...base, gpuLayers: 0, path: model };
    const store = new CalibrationStore(file, binary);
    await store.record((await store.key(model, { ...base, gpuLayers: 0, server: serverMemoryOptions([]) }))!, 1000, new Map([['host', 1000]]), CPU);
    expect(await recordedPlacement(new CalibrationStore(file, binary), launch, noGpu)).toMatchObject(CPU); // the same build, read back
    expect(await recordedPlacement(new CalibrationStore(file, join(dir, 'other-llama-server')), launch, noGpu)).toBeUndefined();
    expect(await recordedPlacement(new CalibrationStore(file), launch, noGpu)).toBeUndefined();
    writeFileSync(binary, 'build 2, upgraded in place');
    expect(await recordedPlacement(new CalibrationStore(file, binary), launch, noGpu)).toBeUndefined();
  });
});

describe('CalibrationStore', () => {
  it(`keeps the ${MAX_CALIBRATION_ENTRIES} most recently recorded entries, on disk too`, async () => {
    const file = join(tempDir('calib'), 'calibration.json');
    const store = new CalibrationStore(file);
    const n = MAX_CALIBRATION_ENTRIES + 5;
    for (let i = 0; i < n; i++) {
      await store.record(`k${i}`, 1, new Map([['host', i]]));
      await new Promise((r) => setTimeout(r, i < 6 ? 2 : 0)); // the first ones strictly older
    }
    const onDisk = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(onDisk)).toHaveLength(MAX_CALIBRATION_ENTRIES);
    for (let i = 0; i < 5; i++) expect(onDisk[`k${i}`]).toBeUndefined();
    expect(onDisk.k5).toBeDefined();
    expect(await new CalibrationStore(file).get(`k${n - 1}`)).toMatchObject({ planBytes: 1, actual: { host: n - 1 } });
  });
});
