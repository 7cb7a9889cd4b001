// Which layers of a hybrid or state-space model are recurrent and what state each keeps per slot, by
// llama.cpp's per-architecture rules (src/models/*.cpp, llama_hparams::n_embd_r/n_embd_s). The real
// llama-server's buffers for a Qwen 3.5 are checked in test/integration/memory-plan.test.ts.
import { describe, expect, it } from 'vitest';
import type { GgufHeader, GgufValue } from '../../gguf/gguf';
import { recurrentLayers } from '../../daemon/memory/recurrent';
import { modelFacts } from '../../daemon/memory/model-facts';
import { kvBytesPerToken, planMemory } from '../../daemon/memory/plan';
import { serverMemoryOptions } from '../../daemon/memory/server-args';
import { shapeHeader } from '../helpers/gguf-shape';

const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
const meta = (entries: [string, GgufValue][]): Pick<GgufHeader, 'metadata'> => ({ metadata: new Map(entries) });

describe('recurrentLayers', () => {
  it('qwen35: every layer but each fourth, or as full_attention_interval or recurrent_layers say', () => {
    expect(recurrentLayers(meta([]), 'qwen35', [2, 2, 2, 2, 2, 2, 2, 2])?.layers).toEqual([true, true, true, false, true, true, true, false]);
    expect(recurrentLayers(meta([['qwen3next.full_attention_interval', u32(2)]]), 'qwen3next', [2, 2, 2, 2])?.layers).toEqual([true, false, true, false]);
    const flags: GgufValue = { type: 'array', itemType: 'bool', value: [false, true, true] } as GgufValue;
    expect(recurrentLayers(meta([['qwen35moe.attention.recurrent_layers', flags]]), 'qwen35moe', [2, 2, 2])?.layers).toEqual([false, true, true]);
  });

  it('hybrids that store KV heads per layer: the layers without any; Mamba: all; others: none', () => {
    expect(recurrentLayers(meta([]), 'granitehybrid', [0, 0, 8, 0])?.layers).toEqual([true, true, false, true]);
    expect(recurrentLayers(meta([]), 'mamba2', [0, 0])?.layers).toEqual([true, true]);
    expect(recurrentLayers(meta([]), 'granitehybrid', [8, 8])).toBeUndefined();
    expect(recurrentLayers(meta([]), 'llama', [0, 0])).toBeUndefined();
  });

  it('Nemotron-H: the layers with neither KV heads nor an FFN (the others attend or are MLPs); Falcon-H1: every layer, attending too', () => {
    expect(recurrentLayers(meta([]), 'nemotron_h', [0, 0, 8, 0], [0, 2048, 0, 0])?.layers).toEqual([true, false, false, true]);
    expect(recurrentLayers(meta([]), 'falcon-h1', [8, 8])).toMatchObject({ layers: [true, true], attends: true });
    expect(recurrentLayers(meta([]), 'qwen35', [2, 2, 2, 2])).not.toHaveProperty('attends');
  });

  it('plans Falcon-H1 with its KV cache and its state in every layer, Nemotron-H with the state of its Mamba layers', () => {
    const ssm = { 'ssm.conv_kernel': 4, 'ssm.inner_size': 128, 'ssm.state_size': 16, 'ssm.group_count': 1 };
    const state = 4 * (3 * (128 + 2 * 16) + 16 * 128);
    const falcon = modelFacts(shapeHeader('falcon-h1', { block_count: 2, embedding_length: 64, 'attention.head_count': 4, 'attention.head_count_kv': 2, ...ssm }));
    const kv = (facts: ReturnType<typeof modelFacts>): number => planMemory(facts, { slots: 2, ctxPerSlot: 512, gpuLayers: 0, server: serverMemoryOptions([]) }, { host: 2 ** 40, gpus: [] }).devices[0]!.kv;
    expect(kv(falcon)).toBe(2 * (2 * 512 * 2 * 16 * 2 * 2) + 2 * 2 * state);
    const nemotron = shapeHeader('nemotron_h', { block_count: 3, embedding_length: 64, 'attention.head_count': 4, ...ssm });
    nemotron.metadata.set('nemotron_h.attention.head_count_kv', { type: 'array', itemType: 'uint32', value: [0, 2, 0] } as GgufValue);
    nemotron.metadata.set('nemotron_h.feed_forward_length', { type: 'array', itemType: 'uint32', value: [0, 0, 256] } as GgufValue);
    // Layer 0 Mamba (state), layer 1 attention (KV), layer 2 MLP (neither).
    expect(kv(modelFacts(nemotron))).toBe(2 * 512 * 2 * 16 * 2 * 2 + 2 * state);
  });

  it('sizes the state as llama.cpp does: conv (d_conv − 1) × (d_inner + 2 n_group d_state) and d_state × d_inner, or a short conv', () => {
    const ssm = (arch: string): [string, GgufValue][] => [
      [`${arch}.ssm.conv_kernel`, u32(4)],
      [`${arch}.ssm.inner_size`, u32(4096)],
      [`${arch}.ssm.state_size`, u32(128)],
      [`${arch}.ssm.group_count`, u32(16)],
    ];
    // Qwen3-Next's shape: 3 × 8192 conv + 128 × 4096 state floats ≈ 2.1 MiB a slot and layer.
    expect(recurrentLayers(meta(ssm('qwen3next')), 'qwen3next', [2, 2, 2, 2])?.bytesPerSequence).toBe(4 * (3 * 8192 + 128 * 4096));
    // LFM2: n_embd × (L_cache − 1), no state row.
    expect(recurrentLayers(meta([['lfm2.embedding_length', u32(1024)], ['lfm2.shortconv.l_cache', u32(3)]]), 'lfm2', [0, 8])?.bytesPerSequence).toBe(4 * 1024 * 2);
  });
});

describe('the plan of a Qwen 3.5 35B-A3B', () => {
  // Its shape: 40 layers, attention in every fourth (2 KV heads of 256), gated delta nets elsewhere.
  const header = shapeHeader('qwen35moe', {
    block_count: 40,
    embedding_length: 2048,
    'attention.head_count': 16,
    'attention.head_count_kv': 2,
    'attention.key_length': 256,
    'attention.value_length': 256,
    full_attention_interval: 4,
    'ssm.conv_kernel': 4,
    'ssm.inner_size': 4096,
    'ssm.state_size': 128,
    'ssm.group_count': 16,
    vocab_size: 248320,
  });
  it('holds KV in 10 layers and a state per slot in 30: about a quarter of the all-attention figure at 8 × 32k', () => {
    const facts = modelFacts(header);
    const kv = planMemory(facts, { slots: 8, ctxPerSlot: 32768, gpuLayers: 0, server: serverMemoryOptions([]) }, { host: 2 ** 40, gpus: [] }).devices[0]!.kv;
    const cell = 2 * 256 * 2 * 2; // 2 heads of 256, K and V, f16
    const state = 4 * (3 * 8192 + 128 * 4096);
    expect(kv).toBe(10 * 8 * 32768 * cell + 30 * 8 * state); // 5 GiB of KV + 504 MiB of state
    expect(kv / (40 * 8 * 32768 * cell)).toBeLessThan(0.3);
    // A saved prompt costs the attention layers' KV a token (the host prompt cache's "auto" size).
    expect(kvBytesPerToken(facts, serverMemoryOptions([]))).toBe(10 * cell);
  });
});
