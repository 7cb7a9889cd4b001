import { describe, expect, it } from 'vitest';
import type { LaunchModel } from '../../daemon/config/types';
import { llamaServerArgs } from '../../daemon/runtime/instance';

const model = (over: Partial<LaunchModel> = {}): LaunchModel => ({
  name: 'm', path: '/m.gguf', slots: 2, ctxPerSlot: 1024, gpuLayers: 'auto', replicas: 1, maxReplicas: 1, autostart: true, args: [], affinity: true, kind: 'completion', reservedSlots: 0, promptCacheMiB: 32, load: 'always', idleUnloadMs: 0, pinned: false, maxSlots: 16, ...over,
});

describe('llamaServerArgs by model kind', () => {
  it('completion: neither --embedding nor --reranking', () => {
    const args = llamaServerArgs(model(), 9000);
    expect(args).not.toContain('--embedding');
    expect(args).not.toContain('--reranking');
    expect(args).toContain('--parallel');
  });

  it('embedding: --embedding, before the user args', () => {
    const args = llamaServerArgs(model({ kind: 'embedding', args: ['--pooling', 'mean'] }), 9000);
    expect(args).toContain('--embedding');
    expect(args.indexOf('--embedding')).toBeLessThan(args.indexOf('--pooling'));
  });

  it('rerank: --reranking', () => {
    const args = llamaServerArgs(model({ kind: 'rerank' }), 9000);
    expect(args).toContain('--reranking');
    expect(args).not.toContain('--embedding');
  });
});
