// llama-server's context checkpoints in the memory plan: their size per model shape, the bound Slotwise
// passes, and how the plan, its load-time share and a shortfall count them. Arithmetic worked out by hand.
import { describe, expect, it } from 'vitest';
import { modelFacts } from '../../daemon/memory/model-facts';
import { autoCheckpoints, checkpointBytes, draftCheckpointBytes, LLAMA_CHECKPOINTS, MIN_AUTO_CHECKPOINTS } from '../../daemon/memory/checkpoints';
import { checkFit, checkpointSize, kvBytesPerCell, loadTimeBytes, planMemory, shortfallMessage } from '../../daemon/memory/plan';
import { serverMemoryOptions } from '../../daemon/memory/server-args';
import { llamaServerArgs } from '../../daemon/runtime/instance';
import type { LaunchModel } from '../../daemon/config/types';
import { shapeHeader } from '../helpers/gguf-shape';

const MIB = 2 ** 20;
const GIB = 2 ** 30;

// Gemma 3 27B's shape: 62 layers, 52 of them over a 1024-token window, 16 KV heads of 128.
const GEMMA3_27B = modelFacts(
  shapeHeader('gemma3', { block_count: 62, embedding_length: 5376, feed_forward_length: 21504, 'attention.head_count': 32, 'attention.head_count_kv': 16, 'attention.key_length': 128, 'attention.value_length': 128, 'attention.sliding_window': 1024, vocab_size: 262208 }),
);
const LLAMA = modelFacts(shapeHeader('llama', { block_count: 32, embedding_length: 4096, feed_forward_length: 14336, 'attention.head_count': 32, 'attention.head_count_kv': 8 }));
/** A checkpoint size function read with a model's args and context, as the plan and the launch call it. */
const sizedBy =
  (size: typeof checkpointBytes) =>
  (facts: typeof LLAMA, args: string[] = [], ctxPerSlot = 8192): number => {
    const server = serverMemoryOptions(args);
    return size(facts, { kvPerCell: kvBytesPerCell(facts, server), swaFull: server.swaFull, ctxPerSlot });
  };
const bytesOf = sizedBy(checkpointBytes);

describe('checkpointBytes', () => {
  it('is the window of every window layer: 1024 cells × 52 layers × 8 KiB = 416 MiB for a Gemma 3 27B', () => {
    expect(bytesOf(GEMMA3_27B)).toBe(1024 * 52 * 16 * 128 * 2 * 2);
    expect(bytesOf(GEMMA3_27B) / MIB).toBe(416);
    expect(bytesOf(GEMMA3_27B, ['-ctk', 'q8_0', '-ctv', 'q8_0'])).toBe(1024 * 52 * 2 * 16 * 136); // q8_0: 34 B a block of 32
    expect(bytesOf(GEMMA3_27B, [], 512)).toBe(512 * 52 * 8192); // a slot's context shorter than the window
  });

  it('is nothing for a model that can roll back: a llama, or window layers with --swa-full', () => {
    expect(bytesOf(LLAMA)).toBe(0);
    expect(bytesOf(GEMMA3_27B, ['--swa-full'])).toBe(0);
  });
});

describe('the bound Slotwise passes (--ctx-checkpoints)', () => {
  it("fits every slot's checkpoints in the prompt cache's bound (4 GiB, or an eighth of host RAM), between 3 and llama.cpp's 32", () => {
    expect(autoCheckpoints(416 * MIB, 4, 64 * GIB)).toBe(MIN_AUTO_CHECKPOINTS); // 4096 / (4 × 416) = 2.5: raised to 3
    expect(autoCheckpoints(100 * MIB, 2, 64 * GIB)).toBe(20); // 4096 / 200
    expect(autoCheckpoints(100 * MIB, 2, 8 * GIB)).toBe(5); // an eighth of 8 GiB: 1024 / 200
    expect(autoCheckpoints(0.3 * MIB, 2, 64 * GIB)).toBe(LLAMA_CHECKPOINTS);
  });

  it('is passed to llama-server when given, after the verbosity', () => {
    const model = { name: 'g', path: '/m.gguf', slots: 4, ctxPerSlot: 8192, gpuLayers: 'auto', args: [], promptCacheMiB: 'auto', kind: 'completion' } as unknown as LaunchModel;
    const args = llamaServerArgs(model, { port: 9000 }, 512, 4, 3);
    expect(args.slice(args.indexOf('--ctx-checkpoints'), args.indexOf('--ctx-checkpoints') + 2)).toEqual(['--ctx-checkpoints', '3']);
    expect(llamaServerArgs(model, { port: 9000 }, 512, 4)).not.toContain('--ctx-checkpoints');
  });
});

describe('the plan with checkpoints', () => {
  const plan = (args: string[], host = 64 * GIB) => planMemory(GEMMA3_27B, { slots: 4, ctxPerSlot: 8192, gpuLayers: 0, server: serverMemoryOptions(args), hostBytes: host }, { host, gpus: [] });

  it('counts them on the host at their limit, apart from what llama-server allocates at load', () => {
    const host = plan([]).devices[0]!;
    expect(host.checkpoints).toBe(4 * 3 * 416 * MIB); // 4.9 GiB: 3 a slot, Slotwise's bound
    expect(loadTimeBytes(host)).toBe(host.weights + host.kv + host.compute + host.output);
    expect(plan(['--ctx-checkpoints', '8']).devices[0]!.checkpoints).toBe(4 * 8 * 416 * MIB); // the args' own count wins
    expect(plan(['--swa-full']).devices[0]!.checkpoints).toBeUndefined();
    expect(serverMemoryOptions(['-ctxcp', '2']).ctxCheckpoints).toBe(2);
    expect(serverMemoryOptions(['--swa-checkpoints=5']).ctxCheckpoints).toBe(5);
  });

  it('a host short by no more than the checkpoints is told to lower them', () => {
    const p = plan([]);
    const host = p.devices[0]!;
    const fit = checkFit(p, { host: loadTimeBytes(host) + 1 * GIB, gpus: [] });
    expect(fit.fits).toBe(false);
    expect(shortfallMessage(fit.shortfalls[0]!, false)).toMatch(/^needs [\d.]+ GiB of host RAM with its 4\.9 GiB of context checkpoints, which has [\d.]+ GiB free: lower --ctx-checkpoints N in args$/);
  });
});

describe('checkpoints with a draft model', () => {
  // Gemma 3 1B's shape as a window draft (26 layers, 5 of 6 over a 512 window, 1 KV head of 256), and a small plain llama draft.
  const GEMMA3_1B = modelFacts(
    shapeHeader('gemma3', { block_count: 26, embedding_length: 1152, feed_forward_length: 6912, 'attention.head_count': 4, 'attention.head_count_kv': 1, 'attention.key_length': 256, 'attention.value_length': 256, 'attention.sliding_window': 512, vocab_size: 262144 }),
  );
  const SMALL_LLAMA = modelFacts(shapeHeader('llama', { block_count: 16, embedding_length: 2048, feed_forward_length: 8192, 'attention.head_count': 32, 'attention.head_count_kv': 8 }));
  const draftBytes = sizedBy(draftCheckpointBytes);

  it("adds the draft's window to each checkpoint, or all its cells for a plain draft (llama_kv_cache ignores PARTIAL_ONLY)", () => {
    const sw = GEMMA3_1B.slidingWindow!;
    const swaLayers = sw.swa.filter(Boolean).length;
    expect(draftBytes(GEMMA3_1B)).toBe(512 * swaLayers * 256 * 2 * 2);
    expect(draftBytes(GEMMA3_1B, ['--swa-full'])).toBe(8192 * swaLayers * 256 * 2 * 2); // its window cache holds the whole context
    expect(draftBytes(SMALL_LLAMA)).toBe(8192 * 16 * 8 * 64 * 2 * 2); // 8192 cells × 16 layers × 2 KiB (8 KV heads of 64) = 256 MiB
    expect(draftBytes(SMALL_LLAMA, [], 1024)).toBe(1024 * 16 * 2048);
  });

  it("counts the draft's share in the target's checkpoints and bound, and none for a draft beside a target that makes none", () => {
    const settings = (args: string[] = []) => ({ slots: 4, ctxPerSlot: 8192, gpuLayers: 0 as const, server: serverMemoryOptions(args), hostBytes: 256 * GIB });
    const free = { host: 256 * GIB, gpus: [] };
    const each = 416 * MIB + draftBytes(SMALL_LLAMA);
    expect(checkpointSize({ ...GEMMA3_27B, draft: SMALL_LLAMA }, serverMemoryOptions([]), 8192)).toBe(each);
    const host = planMemory({ ...GEMMA3_27B, draft: SMALL_LLAMA }, settings(), free).devices[0]!;
    expect(host.checkpoints).toBe(4 * 3 * each); // 4 GiB / (4 × 672 MiB): Slotwise's floor of 3 a slot
    // A plain target makes no checkpoints, whatever its draft: the draft's share counts none of its own.
    const plain = planMemory({ ...LLAMA, draft: GEMMA3_1B }, settings(), free).devices[0]!;
    expect(plain.checkpoints).toBeUndefined();
    const draftAlone = planMemory(GEMMA3_1B, settings(), free).devices[0]!;
    expect(draftAlone.checkpoints).toBeGreaterThan(0);
    expect(plain.draft).toBe(draftAlone.total - draftAlone.checkpoints!);
  });
});
