// Which layers keep only a window of KV cache, by llama.cpp's per-architecture rules (src/models/*.cpp),
// and what the plan makes of them. The real llama-server's buffers are checked in
// test/integration/memory-plan.test.ts; these are the rules no tiny model here can exercise.
import { describe, expect, it } from 'vitest';
import type { GgufHeader, GgufValue } from '../../gguf/gguf';
import { slidingWindow, windowCells } from '../../daemon/memory/sliding-window';
import { modelFacts } from '../../daemon/memory/model-facts';
import { planMemory } from '../../daemon/memory/plan';
import { serverMemoryOptions } from '../../daemon/memory/server-args';
import { shapeHeader } from '../helpers/gguf-shape';

const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
const meta = (entries: [string, GgufValue][]): Pick<GgufHeader, 'metadata'> => ({ metadata: new Map(entries) });
const layersOf = (sw: ReturnType<typeof slidingWindow>): number[] => sw?.swa.flatMap((w, il) => (w ? [] : [il])) ?? [];

describe('slidingWindow', () => {
  it('gemma3: every sixth layer full, only with a window in the file', () => {
    const sw = slidingWindow(meta([['gemma3.attention.sliding_window', u32(1024)]]), 'gemma3', 62);
    expect(sw?.window).toBe(1024);
    expect(layersOf(sw)).toEqual([5, 11, 17, 23, 29, 35, 41, 47, 53, 59]); // the full-attention layers
    expect(sw?.swa.filter(Boolean)).toHaveLength(52);
    expect(slidingWindow(meta([]), 'gemma3', 62)).toBeUndefined();
    expect(slidingWindow(meta([['gemma3.attention.sliding_window', u32(0)]]), 'gemma3', 62)).toBeUndefined();
  });

  it('gemma2: a 4096 window unless the file says; gpt-oss and cohere2 need the key', () => {
    expect(slidingWindow(meta([]), 'gemma2', 4)).toEqual({ window: 4096, swa: [true, false, true, false] });
    expect(slidingWindow(meta([['gemma2.attention.sliding_window', u32(2048)]]), 'gemma2', 2)?.window).toBe(2048);
    expect(slidingWindow(meta([['gpt-oss.attention.sliding_window', u32(128)]]), 'gpt-oss', 24)).toEqual({ window: 128, swa: Array.from({ length: 24 }, (_, il) => il % 2 === 0) });
    expect(slidingWindow(meta([]), 'gpt-oss', 24)).toBeUndefined();
    expect(layersOf(slidingWindow(meta([['cohere2.attention.sliding_window', u32(4096)]]), 'cohere2', 8))).toEqual([3, 7]);
  });

  it('lfm2: with a window in the file, every layer with KV heads (the others are convolutions)', () => {
    expect(slidingWindow(meta([['lfm2.attention.sliding_window', u32(512)]]), 'lfm2', 4, [0, 8, 0, 8])).toEqual({ window: 512, swa: [false, true, false, true] });
    expect(slidingWindow(meta([]), 'lfm2', 4, [0, 8, 0, 8])).toBeUndefined();
  });

  it('exaone4 has window layers only at its 64-layer size; an unknown architecture has none', () => {
    expect(layersOf(slidingWindow(meta([]), 'exaone4', 64))).toHaveLength(16);
    expect(slidingWindow(meta([]), 'exaone4', 30)).toBeUndefined();
    expect(slidingWindow(meta([['llama.attention.sliding_window', u32(4096)]]), 'llama', 32)).toBeUndefined();
    expect(slidingWindow(meta([['qwen2.attention.sliding_window', u32(4096)]]), 'qwen2', 28)).toBeUndefined();
  });

  it('takes the pattern from the file: a period, or one flag per layer', () => {
    const window: [string, GgufValue] = ['gemma3.attention.sliding_window', u32(512)];
    expect(layersOf(slidingWindow(meta([window, ['gemma3.attention.sliding_window_pattern', u32(3)]]), 'gemma3', 6))).toEqual([2, 5]);
    // pattern 0: every layer a window layer (llama_hparams::set_swa_pattern)
    expect(slidingWindow(meta([window, ['gemma3.attention.sliding_window_pattern', u32(0)]]), 'gemma3', 3)?.swa).toEqual([true, true, true]);
    const flags: GgufValue = { type: 'array', itemType: 'bool', value: [true, false, false, true] } as GgufValue;
    expect(slidingWindow(meta([window, ['gemma3.attention.sliding_window_pattern', flags]]), 'gemma3', 4)?.swa).toEqual([true, false, false, true]);
    const ints: GgufValue = { type: 'array', itemType: 'int32', value: [1, 1, 0] } as GgufValue;
    expect(slidingWindow(meta([window, ['gemma3.attention.sliding_window_pattern', ints]]), 'gemma3', 3)?.swa).toEqual([true, true, false]);
    const none: GgufValue = { type: 'array', itemType: 'bool', value: [false, false] } as GgufValue;
    expect(slidingWindow(meta([window, ['gemma3.attention.sliding_window_pattern', none]]), 'gemma3', 2)).toBeUndefined();
  });
});

describe('windowCells', () => {
  it('is the window per sequence plus a ubatch, padded to 256, at most the full size; all of it with --swa-full', () => {
    expect(windowCells({ window: 1024, fullCells: 8192, sequencesPerStream: 1, ubatch: 512, swaFull: false })).toBe(1536);
    expect(windowCells({ window: 128, fullCells: 8192, sequencesPerStream: 1, ubatch: 512, swaFull: false })).toBe(768);
    expect(windowCells({ window: 1024, fullCells: 16384, sequencesPerStream: 8, ubatch: 512, swaFull: false })).toBe(8704);
    expect(windowCells({ window: 4096, fullCells: 2048, sequencesPerStream: 1, ubatch: 512, swaFull: false })).toBe(2048);
    expect(windowCells({ window: 128, fullCells: 8192, sequencesPerStream: 1, ubatch: 512, swaFull: true })).toBe(8192);
  });
});

describe('the plan of a Gemma 3 27B', () => {
  // Its shape: 62 layers, 16 KV heads of 128, a 1024 window; no tensors (weights are not the point here).
  const header = shapeHeader('gemma3', {
    block_count: 62,
    embedding_length: 5376,
    feed_forward_length: 21504,
    'attention.head_count': 32,
    'attention.head_count_kv': 16,
    'attention.key_length': 128,
    'attention.value_length': 128,
    'attention.sliding_window': 1024,
    vocab_size: 262208,
  });
  it('holds a full cache in 10 layers and 1536 cells a slot in the other 52: a third of the full-attention figure at 8 × 8k', () => {
    const facts = modelFacts(header);
    const kv = (args: string[]): number => planMemory(facts, { slots: 8, ctxPerSlot: 8192, gpuLayers: 0, server: serverMemoryOptions(args) }, { host: 2 ** 40, gpus: [] }).devices[0]!.kv;
    const cell = 16 * 128 * 2 * 2; // K and V, f16
    expect(kv([])).toBe((10 * 8 * 8192 + 52 * 8 * 1536) * cell); // 10.6 GiB
    expect(kv(['--swa-full'])).toBe(62 * 8 * 8192 * cell); // 31 GiB
    expect(kv([]) / kv(['--swa-full'])).toBeLessThan(0.35);
  });
});

describe('Gemma 3n, Gemma 4 and Llama 4', () => {
  const kvOf = (header: ReturnType<typeof shapeHeader>, slots: number, ctxPerSlot: number): number =>
    planMemory(modelFacts(header), { slots, ctxPerSlot, gpuLayers: 0, server: serverMemoryOptions([]) }, { host: 2 ** 40, gpus: [] }).devices[0]!.kv;

  it("Gemma 4: window layers from the file's flags at their own head width, and no cache in the layers that share one", () => {
    // 6 layers, flags [w w w w w f]: 5 window layers of 8 KV heads × 256, 1 full of 2 × 512; the last 2 share earlier caches.
    const header = shapeHeader('gemma4', { block_count: 6, embedding_length: 1024, 'attention.head_count': 8, 'attention.key_length': 512, 'attention.value_length': 512, 'attention.key_length_swa': 256, 'attention.value_length_swa': 256, 'attention.sliding_window': 1024, 'attention.shared_kv_layers': 2 });
    header.metadata.set('gemma4.attention.sliding_window_pattern', { type: 'array', itemType: 'bool', value: [true, true, true, true, true, false] } as GgufValue);
    header.metadata.set('gemma4.attention.head_count_kv', { type: 'array', itemType: 'uint32', value: [8, 8, 8, 8, 8, 2] } as GgufValue);
    const facts = modelFacts(header);
    expect(facts).toMatchObject({ kvLayers: 4, windowKeyLength: 256, windowValueLength: 256, slidingWindow: { window: 1024 } });
    // Layers 0–3 own caches, all window layers: 4 slots × 1536 cells × 8 heads × 256 × 2 (K, V) × 2 B. Layers 4 and 5: none.
    expect(kvOf(header, 4, 8192)).toBe(4 * 4 * 1536 * 8 * 256 * 2 * 2);
  });

  it('Gemma 3n: caches in the first 20 layers only, every fifth full', () => {
    const header = shapeHeader('gemma3n', { block_count: 35, embedding_length: 2048, 'attention.head_count': 8, 'attention.head_count_kv': 2, 'attention.key_length': 256, 'attention.value_length': 256, 'attention.sliding_window': 512 });
    const facts = modelFacts(header);
    expect(facts.kvLayers).toBe(20);
    const cell = 2 * 256 * 2 * 2;
    // Of layers 0–19, 4, 9, 14, 19 are full (4 × 32768 cells a slot), the other 16 hold 512 + 512 → 1024 cells a slot.
    expect(kvOf(header, 4, 32768)).toBe(4 * (4 * 32768 + 16 * 1024) * cell);
  });

  it('Llama 4: chunks of 8192 in 3 layers of 4 whatever the key says, none when it says 0', () => {
    const base = { block_count: 48, embedding_length: 5120, 'attention.head_count': 40, 'attention.head_count_kv': 8, 'attention.key_length': 128, 'attention.value_length': 128 };
    expect(modelFacts(shapeHeader('llama4', base)).slidingWindow?.window).toBe(8192);
    expect(modelFacts(shapeHeader('llama4', { ...base, 'attention.sliding_window': 4096 })).slidingWindow?.window).toBe(8192);
    expect(modelFacts(shapeHeader('llama4', { ...base, 'attention.sliding_window': 0 })).slidingWindow).toBeUndefined();
    const cell = 8 * 128 * 2 * 2;
    // 12 full layers × 32768 cells, 36 chunked × (8192 + 512) a slot.
    expect(kvOf(shapeHeader('llama4', base), 8, 32768)).toBe(8 * (12 * 32768 + 36 * 8704) * cell);
  });
});
