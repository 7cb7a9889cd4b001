// Which layers of a hybrid or state-space model are recurrent, and the state each keeps per sequence.
// A recurrent layer has no KV cache: llama.cpp keeps a fixed state per slot instead, a conv row (R)
// and a state row (S), both f32 (src/llama-memory-recurrent.cpp, llama_hparams::n_embd_r/n_embd_s).
// Planned as attention everywhere, a Qwen 3.5 (attention in one layer of four) would count four times
// its KV cache. Pure: a header already read in, no I/O.
//
// Rules from the pinned llama.cpp's src/models/*.cpp and create_memory's layer filters
// (src/llama-model.cpp). Architectures not listed are planned as they
// were: a layer whose `head_count_kv` is 0 has no KV cache (hybrids store it per layer), but its state
// is not counted.
import type { GgufHeader } from '../../gguf/gguf';
import { ggufNumber } from '../../gguf/gguf';

export interface RecurrentLayers {
  /** Per block: true for a recurrent layer (no KV cache unless `attends`). */
  layers: boolean[];
  /** Falcon-H1: every layer is recurrent and attends too, so keeps its KV cache beside the state. */
  attends?: true;
  /** Bytes of one sequence's state in one recurrent layer (R + S rows, f32). */
  bytesPerSequence: number;
}

type Which =
  /** `<arch>.attention.recurrent_layers` flags, else every layer but each `full_attention_interval`-th (default 4). */
  | 'interval'
  /** The layers whose `head_count_kv` is 0. */
  | 'no-kv-heads'
  /** The layers whose `head_count_kv` and `feed_forward_length` are both 0 (Nemotron-H: the others attend or are MLPs). */
  | 'no-kv-heads-no-ffn'
  /** Every layer, each attending as well. */
  | 'all-and-attention'
  /** Every layer. */
  | 'all';

const RULES: Readonly<Record<string, Which>> = {
  qwen3next: 'interval',
  qwen35: 'interval',
  qwen35moe: 'interval',
  granitehybrid: 'no-kv-heads',
  jamba: 'no-kv-heads',
  plamo2: 'no-kv-heads',
  lfm2: 'no-kv-heads',
  lfm2moe: 'no-kv-heads',
  mamba: 'all',
  mamba2: 'all',
  nemotron_h: 'no-kv-heads-no-ffn',
  nemotron_h_moe: 'no-kv-heads-no-ffn',
  'falcon-h1': 'all-and-attention',
};

const F32 = 4;

/** The recurrent layers of a model, or undefined when it has none that this plan knows of. */
export function recurrentLayers(header: Pick<GgufHeader, 'metadata'>, arch: string, headCountKv: readonly number[], feedForward: readonly number[] = []): RecurrentLayers | undefined {
  const which = RULES[arch];
  if (!which) return undefined;
  const n = headCountKv.length;
  let layers: boolean[];
  if (which === 'all' || which === 'all-and-attention') layers = new Array<boolean>(n).fill(true);
  else if (which === 'no-kv-heads') layers = headCountKv.map((h) => h === 0);
  else if (which === 'no-kv-heads-no-ffn') layers = headCountKv.map((h, il) => h === 0 && feedForward[il] === 0);
  else {
    const flags = header.metadata.get(`${arch}.attention.recurrent_layers`);
    if (flags?.type === 'array' && flags.itemType === 'bool') layers = Array.from({ length: n }, (_, il) => (flags.value as boolean[])[il] === true);
    else {
      const interval = ggufNumber(header, `${arch}.full_attention_interval`) ?? 4;
      layers = Array.from({ length: n }, (_, il) => interval <= 0 || (il + 1) % interval !== 0);
    }
  }
  if (!layers.some(Boolean)) return undefined;
  return { layers, bytesPerSequence: F32 * (convRow(header, arch) + stateRow(header, arch)), ...(which === 'all-and-attention' ? { attends: true as const } : {}) };
}

/** n_embd_r: LFM2's short convolution keeps n_embd × (L_cache − 1), a state-space layer its conv window over x, B and C. */
function convRow(header: Pick<GgufHeader, 'metadata'>, arch: string): number {
  const lCache = ggufNumber(header, `${arch}.shortconv.l_cache`) ?? 0;
  if (lCache > 0) return (ggufNumber(header, `${arch}.embedding_length`) ?? 0) * (lCache - 1);
  const ssm = ssmShape(header, arch);
  return Math.max(ssm.conv - 1, 0) * (ssm.inner + 2 * ssm.groups * ssm.state);
}

/** n_embd_s: the state-space state, d_state × d_inner. */
function stateRow(header: Pick<GgufHeader, 'metadata'>, arch: string): number {
  const ssm = ssmShape(header, arch);
  return ssm.state * ssm.inner;
}

function ssmShape(header: Pick<GgufHeader, 'metadata'>, arch: string): { conv: number; inner: number; state: number; groups: number } {
  const key = (k: string): number => ggufNumber(header, `${arch}.ssm.${k}`) ?? 0;
  return { conv: key('conv_kernel'), inner: key('inner_size'), state: key('state_size'), groups: key('group_count') };
}
