import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../daemon/config/types';
import { plannedInstances, setsThreads, threadsPerInstance, withThreads } from '../../daemon/runtime/threads';

const model = (over: Partial<ModelConfig> = {}): ModelConfig => ({
  name: 'm', path: '/m.gguf', slots: 4, ctxPerSlot: 4096, gpuLayers: 'auto', replicas: 1, maxReplicas: 1, autostart: true, args: [], affinity: true, kind: 'completion', reservedSlots: 0, promptCacheMiB: 32, load: 'always', idleUnloadMs: 0, pinned: false, maxSlots: 16, ...over,
});

describe('threads per llama-server', () => {
  it.each([
    // cores, planned instances, threads
    [2, 1, 1],
    [2, 2, 1],
    [4, 1, 3],
    [4, 2, 1],
    [8, 1, undefined],
    [8, 2, 4],
    [16, 3, 5],
    [1, 1, 1],
    [2, 8, 1],
  ] as const)('%i cores, %i instance(s) → %s', (cores, planned, threads) => {
    expect(threadsPerInstance(cores, planned)).toBe(threads);
  });

  it('counts every replica a config can run at once', () => {
    expect(plannedInstances([model()])).toBe(1);
    expect(plannedInstances([model({ replicas: 'auto', maxReplicas: 3 }), model({ replicas: 2, maxReplicas: 2 })])).toBe(5);
    expect(plannedInstances([model({ replicas: 0, maxReplicas: 1 })])).toBe(1);
  });

  it("adds --threads before the user's args, and never over the user's own choice", () => {
    expect(withThreads(model({ args: ['--top-k', '5'] }), 3).args).toEqual(['--threads', '3', '--top-k', '5']);
    expect(withThreads(model(), undefined).args).toEqual([]);
    for (const args of [['-t', '2'], ['--threads', '2'], ['--threads=2']]) {
      expect(setsThreads(args)).toBe(true);
      expect(withThreads(model({ args }), 3).args).toEqual(args);
    }
    expect(setsThreads(['-tb', '2'])).toBe(false);
  });
});
