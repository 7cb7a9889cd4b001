// A multimodal projector in the memory plan: its facts from a header (weights, encoder buffer, what it
// reads), where the plan puts it, and the tiny projector the integration tests load.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readGgufHeader, type GgufHeader, type GgufTensorInfo, type GgufValue } from '../../gguf/gguf';
import { tinyAudioTokensPerWindow, tinyProjectorImageTokens, writeTinyProjector } from '../../gguf/tiny-projector';
import { encoderComputeBytes, projectorFacts } from '../../daemon/memory/projector';
import { modelFacts } from '../../daemon/memory/model-facts';
import { planMemory, type FreeMemory } from '../../daemon/memory/plan';
import { serverMemoryOptions } from '../../daemon/memory/server-args';
import { shapeHeader } from '../helpers/gguf-shape';

const [F32, F16] = [0, 1];
const MIB = 2 ** 20;
const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
const yes: GgufValue = { type: 'bool', value: true };

/**
 * A Gemma 3-shaped vision projector, its numbers worked out by hand: encoder 1152 wide, n_ff 4304,
 * 896-pixel images in 14-pixel patches = 64 × 64 = 4096 positions. Tensors: one f16 1152×1152 (2,654,208 B)
 * and one f32 1152 (4,608 B) = 2,658,816 B.
 */
function clipHeader(extra: [string, GgufValue][] = [], arch = 'clip'): GgufHeader {
  const t = (name: string, type: number, ...dims: number[]): GgufTensorInfo => ({ name, type, dims, offset: 0 });
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', { type: 'string', value: arch }],
    ['clip.projector_type', { type: 'string', value: 'gemma3' }],
    ['clip.has_vision_encoder', yes],
    ['clip.vision.embedding_length', u32(1152)],
    ['clip.vision.feed_forward_length', u32(4304)],
    ['clip.vision.image_size', u32(896)],
    ['clip.vision.patch_size', u32(14)],
    ...extra,
  ]);
  return { path: '/models/mmproj.gguf', fileSize: 0, version: 3, metadata, tensors: [t('v.blk.0.attn_q.weight', F16, 1152, 1152), t('v.post_ln.weight', F32, 1152)], alignment: 32, dataOffset: 0, skipped: new Map() };
}

describe('projectorFacts', () => {
  it('sums its tensors and estimates the encoder buffer over the patches of one image', () => {
    const f = projectorFacts(clipHeader(), '/models/mmproj.gguf');
    // 4 B × 4096 positions × ((3 × 1152 + 4304) × 2 + 1152) = 4 × 4096 × 16672 = 273,154,048 B
    expect(f).toEqual({ projectorType: 'gemma3', modalities: ['vision'], weightBytes: 2_658_816, computeBytes: 273_154_048 });
  });

  it('sizes a dynamic-resolution encoder at the 46 × 46 merged tokens clip.cpp warms it up with, and audio at 1,500 frames', () => {
    const dynamic = clipHeader([['clip.vision.image_max_pixels', u32(3_211_264)], ['clip.vision.spatial_merge_size', u32(2)]]);
    expect(encoderComputeBytes(dynamic, 'vision')).toBe(4 * (46 * 2) ** 2 * 16672);
    const audio = clipHeader([['clip.has_audio_encoder', yes], ['clip.audio.embedding_length', u32(1280)], ['clip.audio.feed_forward_length', u32(5120)]]);
    const f = projectorFacts(audio, '/models/mmproj.gguf');
    expect(f.modalities).toEqual(['vision', 'audio']);
    // The larger of the two encoders' buffers: audio's 4 × 1500 × ((3 × 1280 + 5120) × 2 + 1280) = 115,200,000 B < vision's.
    expect(encoderComputeBytes(audio, 'audio')).toBe(115_200_000);
    expect(f.computeBytes).toBe(273_154_048);
  });

  it('refuses a file that is not a projector, or one with no encoder, naming the file and the fix', () => {
    expect(() => projectorFacts(clipHeader([], 'llama'), '/models/x/model.gguf')).toThrow(
      'model.gguf is a "llama" model, not a projector (general.architecture "clip") — give the mmproj-*.gguf file that comes with the model',
    );
    const none = clipHeader();
    none.metadata.delete('clip.has_vision_encoder');
    expect(() => projectorFacts(none, '/models/mmproj.gguf')).toThrow(/mmproj\.gguf has neither a vision nor an audio encoder/);
  });
});

describe('the plan with a projector', () => {
  const model = modelFacts(shapeHeaderWithTensors());
  const projector = projectorFacts(clipHeader(), '/models/mmproj.gguf');
  const facts = { ...model, projector };
  const bytes = projector.weightBytes + projector.computeBytes;

  it('puts weights and encoder buffer on the first GPU whatever gpuLayers says, on the host with --no-mmproj-offload or no GPU', () => {
    const gpus: FreeMemory = { host: 64 * 2 ** 30, gpus: [{ index: 0, free: 24 * 2 ** 30 }, { index: 1, free: 24 * 2 ** 30 }] };
    const at = (args: string[], free: FreeMemory) => planMemory(facts, { slots: 1, ctxPerSlot: 512, gpuLayers: 0, server: serverMemoryOptions(args) }, free).devices.map((d) => [d.device, d.projector]);
    expect(at([], gpus)).toEqual([['host', undefined], ['gpu0', bytes], ['gpu1', undefined]]);
    expect(at(['--no-mmproj-offload'], gpus)).toEqual([['host', bytes], ['gpu0', undefined], ['gpu1', undefined]]);
    expect(at([], { host: 64 * 2 ** 30, gpus: [] })).toEqual([['host', bytes]]);
    const plan = planMemory(facts, { slots: 1, ctxPerSlot: 512, gpuLayers: 0, server: serverMemoryOptions([]) }, gpus);
    expect(plan.devices[1]!.total).toBe(bytes);
    expect(plan.total).toBe(planMemory(model, { slots: 1, ctxPerSlot: 512, gpuLayers: 0, server: serverMemoryOptions([]) }, gpus).total + bytes);
  });

  it('gpuLayers "auto" leaves the projector its room: fewer layers fit beside it', () => {
    const without = planMemory(model, { slots: 1, ctxPerSlot: 512, gpuLayers: 'all', server: serverMemoryOptions([]) }, { host: 64 * 2 ** 30, gpus: [{ index: 0, free: 64 * 2 ** 30 }] });
    // A GPU that holds the whole model with 100 MiB to spare: without the projector every layer fits; with it (261 MiB) not.
    const tight: FreeMemory = { host: 64 * 2 ** 30, gpus: [{ index: 0, free: without.devices[1]!.total + 100 * MIB }] };
    const auto = (f: typeof facts | typeof model) => planMemory(f, { slots: 1, ctxPerSlot: 512, gpuLayers: 'auto', server: serverMemoryOptions([]) }, tight).gpuLayers;
    expect(auto(model)).toBe(model.layers + 1);
    expect(auto(facts)).toBeLessThan(model.layers + 1);
  });
});

/** A llama of 8 blocks of 64 MiB (f32 4096 × 4096), whose shape the plan reads. */
function shapeHeaderWithTensors(): GgufHeader {
  const h = shapeHeader('llama', { block_count: 8, embedding_length: 4096, feed_forward_length: 11008, 'attention.head_count': 32, 'attention.head_count_kv': 8, context_length: 4096 });
  h.metadata.set('tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: ['a', 'b'] } as GgufValue);
  h.tensors.push({ name: 'token_embd.weight', type: F32, dims: [4096, 2], offset: 0 });
  for (let i = 0; i < 8; i++) h.tensors.push({ name: `blk.${i}.attn_q.weight`, type: F32, dims: [4096, 4096], offset: 0 });
  return h;
}

describe('the tiny projector', () => {
  const dir = mkdtempSync(join(tmpdir(), 'slotwise-projector-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is a Gemma 3 vision projector for the tiny model: 64-pixel images in 8-pixel patches pooled 2 × 2 into 16 tokens', async () => {
    const path = join(dir, 'mmproj.gguf');
    const written = await writeTinyProjector(path);
    const header = await readGgufHeader(path);
    expect(header.fileSize).toBe(written.bytes);
    const f = projectorFacts(header, path);
    expect(f).toMatchObject({ projectorType: 'gemma3', modalities: ['vision'] });
    // mm.input_projection is [text width 64, encoder width 32]: what clip_n_mmproj_embd reads against the text model's width.
    expect(header.tensors.find((t) => t.name === 'mm.input_projection.weight')?.dims).toEqual([64, 32]);
    expect(header.tensors.find((t) => t.name === 'v.position_embd.weight')?.dims).toEqual([32, 64]);
    expect(tinyProjectorImageTokens()).toBe(16);
    expect((await writeTinyProjector(join(dir, 'again.gguf'))).sha256).toBe(written.sha256); // same options, same bytes
  });

  it('is a Qwen2-Audio projector when asked for audio: a Whisper encoder over 128 mel bins, 750 tokens a 30 s window', async () => {
    const path = join(dir, 'mmproj-audio.gguf');
    await writeTinyProjector(path, { modality: 'audio' });
    const header = await readGgufHeader(path);
    const f = projectorFacts(header, path);
    expect(f).toMatchObject({ projectorType: 'qwen2a', modalities: ['audio'] });
    // Its first convolution outweighs its one block (2,112,000 B): 3,000 frames × (f32 128 mel + f16 im2col 3 × 128 + f32 32 out).
    expect(f.computeBytes).toBe(3000 * (4 * 128 + 2 * 3 * 128 + 4 * 32));
    // mm.a.fc is [encoder width 32, text width 64]: clip_n_mmproj_embd reads ne[1]; 1,500 positions after the stride-2 conv.
    expect(header.tensors.find((t) => t.name === 'mm.a.fc.weight')?.dims).toEqual([32, 64]);
    expect(header.tensors.find((t) => t.name === 'a.position_embd.weight')?.dims).toEqual([32, 1500]);
    expect(header.tensors.find((t) => t.name === 'a.conv1d.1.weight')?.dims).toEqual([3, 128, 32]);
    expect(header.tensors.some((t) => t.name.startsWith('v.'))).toBe(false);
    expect(tinyAudioTokensPerWindow()).toBe(750);
  });

  it('refuses shapes clip.cpp cannot pool', async () => {
    await expect(writeTinyProjector(join(dir, 'bad.gguf'), { imageSize: 60 })).rejects.toThrow('tiny projector: imageSize 60 must be patchSize × merge × an integer (patchSize 8, merge 2)');
  });
});
