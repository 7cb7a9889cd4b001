// A multimodal projector (`--mmproj`, a GGUF of architecture `clip`): what it takes of memory and what
// it lets a model read (images, audio). llama.cpp's tools/mtmd/clip.cpp loads it beside the text
// model: all its weights on one device (the first GPU unless `--no-mmproj-offload`, else host RAM),
// and a compute buffer for its encoder's worst-case graph, reserved once with a warmup image.
// Pure: it takes a header already read (gguf/gguf.ts) and does no I/O.
import { basename } from 'node:path';
import { SlotwiseError } from '../../shared/errors';
import type { Modality } from '../../shared/protocol';
import { ggmlTensorBytes, ggufNumber, ggufString, type GgufHeader } from '../../gguf/gguf';

export interface ProjectorFacts {
  /** `clip.projector_type` (or the vision/audio one of a mixed file), e.g. `gemma3`, `qwen2.5vl`. */
  projectorType: string;
  /** What its encoders read. */
  modalities: Modality[];
  /** Bytes of every tensor in the file: clip.cpp's "model size". */
  weightBytes: number;
  /** The encoders' compute buffer, an estimate (see `encoderComputeBytes`); a load's actual figure replaces it (calibration.ts). */
  computeBytes: number;
}

const F32 = 4;

/** Facts of a projector's header; fails with SW_ERR_MODEL_FILE naming `path` when it is not a projector. */
export function projectorFacts(header: GgufHeader, path: string): ProjectorFacts {
  const arch = ggufString(header, 'general.architecture');
  if (arch !== 'clip') {
    const what = arch ? `a "${arch}" model` : 'no model (it has no general.architecture)';
    throw new SlotwiseError('SW_ERR_MODEL_FILE', `${basename(path)} is ${what}, not a projector (general.architecture "clip") — give the mmproj-*.gguf file that comes with the model`);
  }
  const modalities: Modality[] = [];
  if (flag(header, 'clip.has_vision_encoder')) modalities.push('vision');
  if (flag(header, 'clip.has_audio_encoder')) modalities.push('audio');
  if (modalities.length === 0) {
    throw new SlotwiseError('SW_ERR_MODEL_FILE', `${basename(path)} has neither a vision nor an audio encoder (clip.has_vision_encoder, clip.has_audio_encoder) — llama-server cannot use it as a projector`);
  }
  let weightBytes = 0;
  for (const t of header.tensors) {
    const bytes = ggmlTensorBytes(t.type, t.dims);
    if (bytes === undefined) throw new SlotwiseError('SW_ERR_GGUF_INVALID', `${basename(path)}: tensor ${t.name} has a ggml type (${t.type}) this Slotwise does not know`);
    weightBytes += bytes;
  }
  const projectorType = ggufString(header, 'clip.projector_type') ?? ggufString(header, `clip.${modalities[0]}.projector_type`) ?? 'unknown';
  const computeBytes = modalities.reduce((a, m) => Math.max(a, encoderComputeBytes(header, m)), 0);
  return { projectorType, modalities, weightBytes, computeBytes };
}

function flag(header: GgufHeader, key: string): boolean {
  const v = header.metadata.get(key);
  return v?.type === 'bool' && v.value === true;
}

/**
 * The compute buffer of one encoder's worst-case graph, bytes: the f32 activations of a transformer
 * block over its positions (Q, K, V and the FFN's hidden layer, twice for the allocator's overlap),
 * with flash attention, which clip.cpp turns on wherever the backend has it (CPU, CUDA). Positions:
 * an image's patches at `clip.vision.image_size` (dynamic-resolution encoders warm up at 46 × 46 merged
 * tokens, clip.cpp load_hparams), or 1,500 audio frames (30 s, Whisper's window). Against the tiny
 * projector's real buffer (test/integration/projector.test.ts) it is about 20 % high.
 * An audio encoder's convolutions come first and can need more (`whisperConvBytes`).
 */
export function encoderComputeBytes(header: GgufHeader, modality: Modality): number {
  const n = (key: string): number => ggufNumber(header, `clip.${modality}.${key}`) ?? 0;
  const embd = n('embedding_length');
  const ff = n('feed_forward_length');
  const block = (positions: number): number => F32 * positions * ((3 * embd + ff) * 2 + embd);
  if (modality === 'audio') return Math.max(block(WHISPER_FRAMES / 2), whisperConvBytes(n('num_mel_bins') || 128, embd));
  const patch = Math.max(1, n('patch_size'));
  const merge = Math.max(1, ggufNumber(header, 'clip.vision.spatial_merge_size') ?? ggufNumber(header, 'clip.vision.projector.scale_factor') ?? 1);
  const dynamic = header.metadata.has('clip.vision.image_max_pixels');
  return block(dynamic ? (46 * merge) ** 2 : Math.floor(n('image_size') / patch) ** 2);
}

/** Mel frames in Whisper's 30 s window, what each audio chunk is encoded as (mtmd-audio.cpp). */
const WHISPER_FRAMES = 3000;
const F16 = 2;

/**
 * The larger of a Whisper encoder's two convolution steps (whisper-enc.cpp: kernel 3, the second of
 * stride 2; ggml_conv_1d unrolls its input into an f16 im2col): the input and its im2col beside the
 * output, then that output and the second's im2col beside its own. For a small encoder over 128 mel bins
 * the first outweighs the transformer: the tiny audio projector's (width 32) is 3.66 MiB, its block 2.0.
 */
function whisperConvBytes(mel: number, embd: number): number {
  const f = WHISPER_FRAMES;
  const first = F32 * f * mel + F16 * f * 3 * mel + F32 * f * embd;
  const second = F32 * f * embd + F16 * (f / 2) * 3 * embd + F32 * (f / 2) * embd;
  return Math.max(first, second);
}
