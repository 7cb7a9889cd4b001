import { describe, expect, it } from 'vitest';
import { actualByDevice, available, capacity, lessPending, pickVictim, withFreed } from '../../daemon/memory/budget';

const MIB = 1024 * 1024;

describe('memory budget', () => {
  it('sums llama-server buffers per device: CPU kinds are host RAM, CUDA0/ROCm1 are GPUs', () => {
    const d = actualByDevice({ 'model CPU_Mapped': 10, 'kv CPU': 2, 'compute CUDA0': 4, 'model CUDA0': 100, 'kv ROCm1': 8, 'compute CUDA_Host': 1 });
    expect(Object.fromEntries(d)).toEqual({ host: 13 * MIB, gpu0: 104 * MIB, gpu1: 8 * MIB });
  });

  it('without a budget offers what is free; with one, the budget less what loaded models hold, never more than free', () => {
    const free = { host: 1000 * MIB, gpus: [{ index: 0, free: 500 * MIB }] };
    const used = new Map([['host', 300 * MIB], ['gpu0', 100 * MIB]]);
    expect(available(free, used, undefined)).toEqual(free);
    expect(available(free, used, 400)).toEqual({ host: 100 * MIB, gpus: [{ index: 0, free: 300 * MIB }] });
    expect(available(free, used, 10_000)).toEqual(free);
    expect(available(free, used, 200).host).toBe(0);
  });

  it('capacity is the budget, else free plus what Slotwise holds (all others unloaded)', () => {
    const free = { host: 1000 * MIB, gpus: [{ index: 0, free: 500 * MIB }] };
    const used = new Map([['gpu0', 100 * MIB]]);
    expect(capacity(free, used, 64)).toEqual({ host: 64 * MIB, gpus: [{ index: 0, free: 64 * MIB }] });
    expect(capacity(free, used, undefined)).toEqual({ host: 1000 * MIB, gpus: [{ index: 0, free: 600 * MIB }] });
  });

  it('picks the least recently used idle model that is not pinned; never a busy or pinned one', () => {
    expect(pickVictim([
      { name: 'a', lastUsedAt: 1, idle: true, pinned: true },
      { name: 'b', lastUsedAt: 2, idle: false, pinned: false },
      { name: 'c', lastUsedAt: 5, idle: true, pinned: false },
      { name: 'd', lastUsedAt: 3, idle: true, pinned: false },
    ])).toBe('d');
    expect(pickVictim([{ name: 'x', idle: true, pinned: false }, { name: 'y', lastUsedAt: 1, idle: true, pinned: false }])).toBe('x');
    expect(pickVictim([{ name: 'a', lastUsedAt: 1, idle: false, pinned: false }, { name: 'b', idle: true, pinned: true }])).toBeUndefined();
  });

  it('lessPending takes what loading models will still allocate off the free memory (never below 0); withFreed adds back what unloading frees', () => {
    const free = { host: 10 * MIB, gpus: [{ index: 0, free: 4 * MIB }, { index: 1, free: 8 * MIB }] };
    const pending = new Map([['host', 3 * MIB], ['gpu0', 6 * MIB]]);
    expect(lessPending(free, pending)).toEqual({ host: 7 * MIB, gpus: [{ index: 0, free: 0 }, { index: 1, free: 8 * MIB }] });
    expect(withFreed(free, new Map([['gpu1', 2 * MIB]]))).toEqual({ host: 10 * MIB, gpus: [{ index: 0, free: 4 * MIB }, { index: 1, free: 10 * MIB }] });
  });
});
