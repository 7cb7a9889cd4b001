import { describe, expect, it } from 'vitest';
import { decide, type ModelLoad } from '../../daemon/autoscale/decide';

const GiB = 1024 ** 3;
const base: ModelLoad = {
  replicas: 1, min: 1, max: 3, readyInstances: 1, busySlots: 4, totalSlots: 4, queued: 5, oldestWaitMs: 3000,
  instanceBytes: 5 * GiB, freeBytes: 20 * GiB, memoryKind: 'VRAM',
};
const opts = { saturatedForMs: 30_000, idleForMs: 300_000 };

describe('autoscale decide', () => {
  it.each<[string, Partial<ModelLoad>, { saturatedSince?: number; idleSince?: number }, number, 'up' | 'down' | 'hold', RegExp]>([
    ['saturated long enough, memory free → up', {}, { saturatedSince: 0 }, 30_000, 'up', /saturated for 30 s \(all 4 slots busy, 5 waiting \(oldest 3\.0 s\)\); 20\.0 GiB VRAM free ≥ 5\.0 GiB needed: adding replica 2/],
    ['saturated, not yet 30 s → hold and count', {}, { saturatedSince: 0 }, 12_000, 'hold', /saturated for 12 s of 30 s/],
    ['saturated but no memory → hold saying why', { freeBytes: 3 * GiB, memoryKind: 'RAM' }, { saturatedSince: 0 }, 60_000, 'hold', /only 3\.0 GiB RAM free, another replica needs 5\.0 GiB/],
    // The host prompt cache (--cache-ram) is counted at its limit, as the loader counts it.
    ['on RAM, the replica fits but not with its prompt cache → hold naming it', { freeBytes: 6 * GiB, memoryKind: 'RAM', promptCacheBytes: 2 * GiB }, { saturatedSince: 0 }, 60_000, 'hold', /only 6\.0 GiB RAM free, another replica needs 7\.0 GiB with its 2\.0 GiB prompt cache/],
    ['on RAM, room for the replica and its prompt cache → up', { freeBytes: 8 * GiB, memoryKind: 'RAM', promptCacheBytes: 2 * GiB }, { saturatedSince: 0 }, 60_000, 'up', /8\.0 GiB RAM free ≥ 7\.0 GiB needed with its 2\.0 GiB prompt cache: adding replica 2/],
    ['on VRAM, room on the GPU but not in RAM for the prompt cache → hold naming it', { promptCacheBytes: 4 * GiB, hostFreeBytes: 3 * GiB }, { saturatedSince: 0 }, 60_000, 'hold', /only 3\.0 GiB RAM free, another replica's prompt cache needs 4\.0 GiB \(lower promptCacheMiB; 0 turns it off\)/],
    ['on VRAM, room on both → up', { promptCacheBytes: 4 * GiB, hostFreeBytes: 30 * GiB }, { saturatedSince: 0 }, 60_000, 'up', /20\.0 GiB VRAM free ≥ 5\.0 GiB needed, and RAM for its 4\.0 GiB prompt cache: adding replica 2/],
    ['saturated at max → hold', { replicas: 3, readyInstances: 3, totalSlots: 12, busySlots: 12 }, { saturatedSince: 0 }, 60_000, 'hold', /already at maxReplicas 3/],
    ['GPU-busy look but free slots → not saturated', { busySlots: 3, queued: 0 }, { saturatedSince: 0 }, 60_000, 'hold', /3 of 4 slots busy, 0 waiting: 1 replica\(s\) are enough/],
    ['all busy, short waits → not saturated', { oldestWaitMs: 500 }, {}, 60_000, 'hold', /are enough/],
    ['replica still starting → hold', { replicas: 2, readyInstances: 1 }, { saturatedSince: 0 }, 60_000, 'hold', /waiting for 1 starting replica/],
    ['idle long enough above min → down', { replicas: 2, readyInstances: 2, busySlots: 0, queued: 0, totalSlots: 8 }, { idleSince: 0 }, 300_000, 'down', /idle for 300 s: draining and stopping replica 2/],
    ['idle, not long enough → hold', { replicas: 2, readyInstances: 2, busySlots: 0, queued: 0, totalSlots: 8 }, { idleSince: 0 }, 100_000, 'hold', /idle for 100 s of 300 s/],
    ['idle at min → hold', { busySlots: 0, queued: 0 }, { idleSince: 0 }, 900_000, 'hold', /are enough/],
  ])('%s', (_name, over, prev, now, action, reason) => {
    const d = decide({ ...base, ...over }, prev, now, opts);
    expect(d.action).toBe(action);
    expect(d.reason).toMatch(reason);
  });

  it('starts the saturation clock at the first saturated sample and resets it when saturation ends', () => {
    const first = decide(base, {}, 1000, opts);
    expect(first.state.saturatedSince).toBe(1000);
    const still = decide(base, first.state, 5000, opts);
    expect(still.state.saturatedSince).toBe(1000);
    const calm = decide({ ...base, queued: 0 }, still.state, 6000, opts);
    expect(calm.state.saturatedSince).toBeUndefined();
  });
});
