// Writes a random-weight projector (`--mmproj`) that the real llama-server loads beside a tiny model,
// as llama.cpp's tools/mtmd/clip.cpp loads it (load_hparams, load_tensors):
// - vision: a Gemma 3 projector (a SigLIP encoder, average-pooled patches, an RMS norm and a projection
//   into the text model's width), run by models/siglip.cpp;
// - audio: a Qwen2-Audio projector (a Whisper encoder over 128 mel bins, average-pooled frames and a
//   linear projection), run by models/whisper-enc.cpp on each 30 s window mtmd-audio.cpp cuts.
// What the memory plan's projector is checked against (daemon/memory/projector.ts) and how image and
// audio requests are tested end to end.
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir } from '../shared/paths';
import type { Modality } from '../shared/protocol';
import { SlotwiseError } from '../shared/errors';
import type { GgufValue } from './gguf';
import { F32, writeRandomGguf, type TensorSpec, type WrittenGguf } from './write-gguf';

export interface TinyProjectorOptions {
  /** What it encodes; default vision. */
  modality?: Modality;
  /** Embedding width of the text model it feeds (its `embedding_length`); default 64, the tiny model's. */
  textDim?: number;
  /** Width of the vision encoder; default 32. */
  dim?: number;
  /** Encoder blocks; default 1. */
  layers?: number;
  /** Side of the square image the encoder takes, pixels; default 64. Any image is resized to it. */
  imageSize?: number;
  /** Side of a patch, pixels; default 8. */
  patchSize?: number;
  /** Patches pooled per side into one image token; default 2. Tokens per image: (imageSize / patchSize / merge)². */
  merge?: number;
  seed?: number;
  signal?: AbortSignal;
}

interface ProjectorParams {
  modality: Modality;
  textDim: number;
  dim: number;
  layers: number;
  heads: number;
  ffn: number;
  imageSize: number;
  patchSize: number;
  merge: number;
  seed: number;
}

const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
const f32s = (value: number[]): GgufValue => ({ type: 'array', itemType: 'float32', value }) as GgufValue;

/** Writes the projector atomically; same options → byte-identical file. */
export async function writeTinyProjector(outPath: string, opts: TinyProjectorOptions = {}): Promise<WrittenGguf> {
  const p = resolveParams(opts);
  const [meta, tensors] = p.modality === 'audio' ? [audioMetadata(p), audioTensors(p)] : [projectorMetadata(p), projectorTensors(p)];
  return writeRandomGguf(outPath, meta, tensors, p.seed, { signal: opts.signal });
}

/** Whisper's window: mtmd-audio.cpp cuts the log-mel spectrogram (10 ms a frame) into 30 s chunks of 3,000 frames. */
const AUDIO_FRAMES = 3000;
/** Mel bins of the spectrogram (Whisper large-v3, Qwen2-Audio). */
const MEL_BINS = 128;

/** Audio tokens the audio projector makes of each 30 s of sound (a shorter clip is padded to it): the conv's stride and the pool halve the frames twice. */
export function tinyAudioTokensPerWindow(): number {
  return AUDIO_FRAMES / 4;
}

/** Image tokens the projector makes of any image: one per pooled patch. */
export function tinyProjectorImageTokens(opts: TinyProjectorOptions = {}): number {
  const p = resolveParams(opts);
  return (p.imageSize / p.patchSize / p.merge) ** 2;
}

function resolveParams(opts: TinyProjectorOptions): ProjectorParams {
  const dim = opts.dim ?? 32;
  const p: ProjectorParams = {
    modality: opts.modality ?? 'vision',
    textDim: opts.textDim ?? 64,
    dim,
    layers: opts.layers ?? 1,
    heads: 2,
    ffn: 2 * dim,
    imageSize: opts.imageSize ?? 64,
    patchSize: opts.patchSize ?? 8,
    merge: opts.merge ?? 2,
    seed: opts.seed ?? 1,
  };
  for (const [key, value] of Object.entries(p)) {
    if (key === 'modality') continue;
    if (!Number.isSafeInteger(value) || value < (key === 'seed' ? 0 : 1)) throw usage(`${key} must be a ${key === 'seed' ? 'non-negative' : 'positive'} integer, got ${value}`);
  }
  const side = p.imageSize / p.patchSize;
  // clip.cpp pools the patch grid in merge × merge squares (siglip.cpp ggml_pool_2d): it must divide evenly.
  if (!Number.isInteger(side) || side % p.merge !== 0) throw usage(`imageSize ${p.imageSize} must be patchSize × merge × an integer (patchSize ${p.patchSize}, merge ${p.merge})`);
  if (dim % p.heads !== 0) throw usage(`dim ${dim} must split into ${p.heads} heads`);
  return p;
}

function usage(message: string): SlotwiseError {
  return new SlotwiseError('SW_ERR_USAGE', `tiny projector: ${message}`);
}

/** The keys clip.cpp reads for a vision projector (`clip.*`, KEY_* in tools/mtmd/clip-impl.h). */
function projectorMetadata(p: ProjectorParams): Map<string, GgufValue> {
  return new Map<string, GgufValue>([
    ['general.architecture', { type: 'string', value: 'clip' }],
    ['general.name', { type: 'string', value: `slotwise-tiny-mmproj-d${p.dim}-t${p.textDim}-s${p.seed}` }],
    ['general.file_type', u32(0)],
    ['clip.has_vision_encoder', { type: 'bool', value: true }],
    ['clip.projector_type', { type: 'string', value: 'gemma3' }],
    ['clip.use_gelu', { type: 'bool', value: true }],
    ['clip.vision.embedding_length', u32(p.dim)],
    ['clip.vision.feed_forward_length', u32(p.ffn)],
    ['clip.vision.block_count', u32(p.layers)],
    ['clip.vision.projection_dim', u32(p.textDim)],
    ['clip.vision.attention.head_count', u32(p.heads)],
    ['clip.vision.attention.layer_norm_epsilon', { type: 'float32', value: 1e-6 }],
    ['clip.vision.image_size', u32(p.imageSize)],
    ['clip.vision.patch_size', u32(p.patchSize)],
    ['clip.vision.image_mean', f32s([0.5, 0.5, 0.5])],
    ['clip.vision.image_std', f32s([0.5, 0.5, 0.5])],
    ['clip.vision.projector.scale_factor', u32(p.merge)],
  ]);
}

/** The tensors of a SigLIP encoder with Gemma 3's projection (clip.cpp load_tensors; dims fastest-first). */
function projectorTensors(p: ProjectorParams): TensorSpec[] {
  const t = (name: string, ...dims: number[]): TensorSpec => ({ name, dims, type: F32 });
  const patches = (p.imageSize / p.patchSize) ** 2;
  const specs = [
    t('v.patch_embd.weight', p.patchSize, p.patchSize, 3, p.dim),
    t('v.patch_embd.bias', p.dim),
    t('v.position_embd.weight', p.dim, patches),
  ];
  for (let i = 0; i < p.layers; i++) specs.push(...encoderBlock('v', i, p, true));
  specs.push(
    t('v.post_ln.weight', p.dim),
    t('v.post_ln.bias', p.dim),
    t('mm.soft_emb_norm.weight', p.dim),
    // Transposed before use (siglip.cpp): [text width, encoder width]; clip_n_mmproj_embd reads ne[0].
    t('mm.input_projection.weight', p.textDim, p.dim),
  );
  return specs;
}

/** The keys clip.cpp reads for a Qwen2-Audio projector (`clip.audio.*`; its preprocessing params are fixed by the type). */
function audioMetadata(p: ProjectorParams): Map<string, GgufValue> {
  return new Map<string, GgufValue>([
    ['general.architecture', { type: 'string', value: 'clip' }],
    ['general.name', { type: 'string', value: `slotwise-tiny-mmproj-audio-d${p.dim}-t${p.textDim}-s${p.seed}` }],
    ['general.file_type', u32(0)],
    ['clip.has_audio_encoder', { type: 'bool', value: true }],
    ['clip.projector_type', { type: 'string', value: 'qwen2a' }],
    ['clip.audio.embedding_length', u32(p.dim)],
    ['clip.audio.feed_forward_length', u32(p.ffn)],
    ['clip.audio.block_count', u32(p.layers)],
    ['clip.audio.projection_dim', u32(p.textDim)],
    ['clip.audio.attention.head_count', u32(p.heads)],
    ['clip.audio.attention.layer_norm_epsilon', { type: 'float32', value: 1e-5 }],
    ['clip.audio.num_mel_bins', u32(MEL_BINS)],
  ]);
}

/** The tensors of a Whisper encoder with Qwen2-Audio's projection (clip.cpp load_tensors; dims fastest-first). */
function audioTensors(p: ProjectorParams): TensorSpec[] {
  const t = (name: string, ...dims: number[]): TensorSpec => ({ name, dims, type: F32 });
  const specs = [
    // Two convolutions of kernel 3 (the second of stride 2); a bias is added to [frames, channels].
    t('a.conv1d.1.weight', 3, MEL_BINS, p.dim),
    t('a.conv1d.1.bias', 1, p.dim),
    t('a.conv1d.2.weight', 3, p.dim, p.dim),
    t('a.conv1d.2.bias', 1, p.dim),
    t('a.position_embd.weight', p.dim, AUDIO_FRAMES / 2),
  ];
  // Whisper's key projection has no bias (whisper-enc.cpp asserts it).
  for (let i = 0; i < p.layers; i++) specs.push(...encoderBlock('a', i, p, false));
  specs.push(
    t('a.post_ln.weight', p.dim),
    t('a.post_ln.bias', p.dim),
    // clip_n_mmproj_embd reads ne[1]: the text model's width.
    t('mm.a.fc.weight', p.dim, p.textDim),
    t('mm.a.fc.bias', p.textDim),
  );
  return specs;
}

/** One pre-norm transformer block of an encoder (`v.blk.N`, `a.blk.N`), as clip.cpp load_tensors names it. */
function encoderBlock(prefix: 'v' | 'a', i: number, p: ProjectorParams, keyBias: boolean): TensorSpec[] {
  const t = (name: string, ...dims: number[]): TensorSpec => ({ name: `${prefix}.blk.${i}.${name}`, dims, type: F32 });
  const [d, ff] = [p.dim, p.ffn];
  return [
    t('ln1.weight', d),
    t('ln1.bias', d),
    t('attn_q.weight', d, d),
    t('attn_q.bias', d),
    t('attn_k.weight', d, d),
    ...(keyBias ? [t('attn_k.bias', d)] : []),
    t('attn_v.weight', d, d),
    t('attn_v.bias', d),
    t('attn_out.weight', d, d),
    t('attn_out.bias', d),
    t('ln2.weight', d),
    t('ln2.bias', d),
    t('ffn_up.weight', d, ff),
    t('ffn_up.bias', ff),
    t('ffn_down.weight', ff, d),
    t('ffn_down.bias', d),
  ];
}

/** The tiny projector in the cache (`<cache>/models/tiny-mmproj-d32-t64-s1.gguf`, `tiny-mmproj-audio-…` for audio), written on first use. */
export async function ensureCachedTinyProjector(opts: Omit<TinyProjectorOptions, 'dim' | 'layers' | 'imageSize' | 'patchSize' | 'merge'> & { env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const p = resolveParams(opts);
  const dir = join(cacheDir(opts.env ?? process.env), 'models');
  const path = join(dir, `tiny-mmproj-${p.modality === 'audio' ? 'audio-' : ''}d${p.dim}-t${p.textDim}-s${p.seed}.gguf`);
  try {
    await access(path);
    return path;
  } catch {
    // not written yet: fall through and write it
  }
  await mkdir(dir, { recursive: true });
  await writeTinyProjector(path, opts);
  return path;
}
