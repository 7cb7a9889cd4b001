// Writes a random-weight llama-architecture GGUF that a real llama-server loads and generates from:
// the model of the integration tests and `slotwise tiny-model`. The tokenizer comes from a
// vocab-only GGUF of the llama.cpp source, so prompts tokenize like a real llama model's.
// Variants: `fim` takes a coder vocab with fill-in-the-middle tokens (for /infill); `embedding` and
// `rerank` set `llama.pooling_type` (mean, rank), which llama-server's --embedding / --reranking use;
// `tools` takes Qwen2's vocab (ChatML's tokens) and a chat template with tool calls (tool-template.ts).
// `slidingWindow` writes a Gemma 3 instead (its block shape, five sliding-window layers to one full),
// `fullAttentionInterval` a Qwen 3.5 (gated delta-net recurrent layers, attention every n-th): what the
// memory plan's window and recurrent layers are checked against (daemon/memory/sliding-window.ts, recurrent.ts).
import { access, mkdir, rm } from 'node:fs/promises';
import { cacheDir } from '../shared/paths';
import { ensureVocab, VOCAB_FILE } from './vocab';
import { fimTokens } from './fim';
import { TOOL_CALL_TEMPLATE } from './tool-template';
import { basename, dirname, join } from 'node:path';
import { SlotwiseError } from '../shared/errors';
import { readGgufHeader, type GgufValue } from './gguf';
import { F32, writeRandomGguf, type TensorSpec, type WrittenGguf } from './write-gguf';

export interface TinyModelOptions {
  /** Vocab-only GGUF whose `tokenizer.*` keys are copied, e.g. llama.cpp's `models/ggml-vocab-llama-spm.gguf`. */
  vocabPath: string;
  /** Embedding width; default 64. Must split into `heads` heads of even size. */
  dim?: number;
  /** Transformer blocks; default 2. */
  layers?: number;
  /** Attention heads (and KV heads); default 4. */
  heads?: number;
  /** Feed-forward width; default 4 × dim. */
  ffn?: number;
  /** Training context written to the metadata, tokens; default 4096. */
  contextLength?: number;
  /** PRNG seed of the weights; default 1. Same seed and options → byte-identical file. */
  seed?: number;
  /** Written as `llama.pooling_type`; default none (a generative model). */
  pooling?: TinyPooling;
  /** Written as `tokenizer.chat_template` in place of the vocab's; default the vocab's. */
  chatTemplate?: string;
  /** Tokens of attention window: the model is a `gemma3` whose layers attend over it, but every sixth
   * (llama.cpp's pattern for the architecture); default none: a `llama`. */
  slidingWindow?: number;
  /** Every n-th layer attends, the others are gated delta-net recurrent layers: the model is a `qwen35`
   * (a hybrid, as Qwen 3.5 and Qwen3-Next are); default none. */
  fullAttentionInterval?: number;
  signal?: AbortSignal;
}

/** What a tiny model is for: generation, fill-in-the-middle, embeddings, reranking or tool calls. */
export type TinyModelKind = 'completion' | 'fim' | 'embedding' | 'rerank' | 'tools';
export const TINY_MODEL_KINDS: readonly TinyModelKind[] = ['completion', 'fim', 'embedding', 'rerank', 'tools'];

export type TinyPooling = 'mean' | 'rank';
/** llama.h `enum llama_pooling_type`. */
const POOLING_TYPE: Record<TinyPooling, number> = { mean: 1, rank: 4 };

/** The vocab (a file beside `ggml-vocab-llama-spm.gguf`), pooling and chat template of each kind.
 * DeepSeek-Coder's vocab has FIM tokens and is the smallest such (32k tokens) among llama.cpp's vocab
 * files; Qwen2's has ChatML's `<|im_start|>` and `<|im_end|>`, which the tool template's grammar needs. */
export const TINY_KIND_SPEC: Record<TinyModelKind, { vocabFile: string; pooling?: TinyPooling; chatTemplate?: string }> = {
  completion: { vocabFile: VOCAB_FILE },
  fim: { vocabFile: 'ggml-vocab-deepseek-coder.gguf' },
  embedding: { vocabFile: VOCAB_FILE, pooling: 'mean' },
  rerank: { vocabFile: VOCAB_FILE, pooling: 'rank' },
  tools: { vocabFile: 'ggml-vocab-qwen2.gguf', chatTemplate: TOOL_CALL_TEMPLATE },
};

/** Path of the vocab file a kind needs, given the path `ensureVocab` returned. */
export function tinyVocabPath(llamaSpmVocab: string, kind: TinyModelKind): string {
  return join(dirname(llamaSpmVocab), TINY_KIND_SPEC[kind].vocabFile);
}

export type TinyModelResult = WrittenGguf;

interface TinyParams {
  dim: number;
  layers: number;
  heads: number;
  ffn: number;
  contextLength: number;
  seed: number;
  pooling?: TinyPooling;
  slidingWindow?: number;
  fullAttentionInterval?: number;
}

/** The recurrent layers' shape of a tiny qwen35: state 16 wide, 2 key heads, 4 value heads, conv kernel 4. */
const SSM = { dState: 16, groups: 2, vHeads: 4, conv: 4 };

function archOf(p: Pick<TinyParams, 'slidingWindow' | 'fullAttentionInterval'>): 'llama' | 'gemma3' | 'qwen35' {
  return p.slidingWindow !== undefined ? 'gemma3' : p.fullAttentionInterval !== undefined ? 'qwen35' : 'llama';
}

/** The part of a tiny model's name (general.name, and its file in the cache) that says its shape: `-w128`, `-a4`. */
function shapeSuffix(p: Pick<TinyParams, 'slidingWindow' | 'fullAttentionInterval'>): string {
  return `${p.slidingWindow === undefined ? '' : `-w${p.slidingWindow}`}${p.fullAttentionInterval === undefined ? '' : `-a${p.fullAttentionInterval}`}`;
}

const u32 = (value: number): GgufValue => ({ type: 'uint32', value });

/** Writes the model atomically (temp file beside `outPath`, then rename) and streams the weights. */
export async function writeTinyModel(outPath: string, opts: TinyModelOptions): Promise<TinyModelResult> {
  const params = resolveParams(opts);
  const tokenizer = await readTokenizer(opts.vocabPath, opts.signal);
  if (opts.chatTemplate !== undefined) tokenizer.set('tokenizer.chat_template', { type: 'string', value: opts.chatTemplate });
  const nVocab = vocabSize(tokenizer, opts.vocabPath);
  const metadata = new Map<string, GgufValue>([...modelMetadata(params), ...tokenizer]);
  const zeroRows = new Map([['output.weight', endOfGenerationIds(tokenizer)]]);
  return writeRandomGguf(outPath, metadata, tensorSpecs(params, nVocab), params.seed, { signal: opts.signal, zeroRows });
}

/**
 * Tokens llama.cpp may end a reply at (src/llama-vocab.cpp: the eos/eot/eom and FIM ids, control
 * tokens, and the texts it takes for end-of-turn). Their rows of output.weight are zero, so each of
 * their logits is 0, the middle of a random model's flat distribution and never within the sampler's
 * top 40. With random rows, 10 of 1,071 replies of 400 tokens ended early (llama-server's default
 * sampling), and a test that asked for N tokens got fewer; with these rows zeroed, 0 of 1,071.
 */
export function endOfGenerationIds(tokenizer: ReadonlyMap<string, GgufValue>): Set<number> {
  const ids = new Set<number>();
  for (const [key, v] of tokenizer) {
    if (/^tokenizer\.ggml\.(eos|eot|eom|fim_pad|fim_rep|fim_sep)_token_id$/.test(key) && v.type !== 'array') ids.add(Number(v.value));
  }
  const tokens = tokenizer.get('tokenizer.ggml.tokens');
  const types = tokenizer.get('tokenizer.ggml.token_type');
  if (tokens?.type === 'array') {
    for (const [id, text] of tokens.value.entries()) if (EOG_TEXTS.has(String(text))) ids.add(id);
  }
  if (types?.type === 'array') {
    for (const [id, type] of types.value.entries()) if (Number(type) === TOKEN_TYPE_CONTROL) ids.add(id);
  }
  return ids;
}

const TOKEN_TYPE_CONTROL = 3;
const EOG_TEXTS: ReadonlySet<string> = new Set([
  '</s>', '<eos>', '<|endoftext|>', '<|end_of_text|>', '<|eot_id|>', '<|eom_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>',
  '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|return|>', '<|call|>', '<end_of_utterance>', '<｜end▁of▁sentence｜>',
]);

function resolveParams(opts: TinyModelOptions): TinyParams {
  const dim = positiveInt('dim', opts.dim ?? 64);
  const heads = positiveInt('heads', opts.heads ?? 4);
  const params: TinyParams = {
    dim,
    heads,
    layers: positiveInt('layers', opts.layers ?? 2),
    ffn: positiveInt('ffn', opts.ffn ?? 4 * dim),
    contextLength: positiveInt('contextLength', opts.contextLength ?? 4096),
    seed: nonNegativeInt('seed', opts.seed ?? 1),
    pooling: opts.pooling,
    ...(opts.slidingWindow !== undefined ? { slidingWindow: positiveInt('slidingWindow', opts.slidingWindow) } : {}),
    ...(opts.fullAttentionInterval !== undefined ? { fullAttentionInterval: positiveInt('fullAttentionInterval', opts.fullAttentionInterval) } : {}),
  };
  if (params.slidingWindow !== undefined && params.fullAttentionInterval !== undefined) throw usage('give slidingWindow (gemma3) or fullAttentionInterval (qwen35), not both');
  if (archOf(params) !== 'llama' && params.pooling) throw usage(`a ${archOf(params)} model is generative: give no pooling`);
  // RoPE rotates pairs of a head's dimensions, so the head size must be even.
  if (dim % heads !== 0 || (dim / heads) % 2 !== 0) {
    throw usage(`dim ${dim} must split into ${heads} heads of even size (dim = heads × an even number)`);
  }
  return params;
}

function positiveInt(key: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw usage(`${key} must be a positive integer, got ${value}`);
  return value;
}

function nonNegativeInt(key: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw usage(`${key} must be a non-negative integer, got ${value}`);
  return value;
}

function usage(message: string): SlotwiseError {
  return new SlotwiseError('SW_ERR_USAGE', `tiny model: ${message}`);
}

async function readTokenizer(vocabPath: string, signal?: AbortSignal): Promise<Map<string, GgufValue>> {
  // Every tokenizer table, merges and scores included: the model's tokenizer is this one.
  const vocab = await readGgufHeader(vocabPath, { signal, skipArrays: new Set() });
  const tokenizer = new Map([...vocab.metadata].filter(([key]) => key.startsWith('tokenizer.')));
  // Spell out FIM ids the vocab only implies by token text, so any reader of the keys sees them.
  const fim = fimTokens(tokenizer);
  if (fim) {
    for (const [part, id] of Object.entries(fim)) {
      const key = `tokenizer.ggml.fim_${part}_token_id`;
      if (!tokenizer.has(key)) tokenizer.set(key, { type: 'uint32', value: id });
    }
  }
  return tokenizer;
}

function vocabSize(tokenizer: Map<string, GgufValue>, vocabPath: string): number {
  const tokens = tokenizer.get('tokenizer.ggml.tokens');
  if (tokens?.type !== 'array' || tokens.itemType !== 'string' || tokens.value.length === 0) {
    throw new SlotwiseError(
      'SW_ERR_GGUF_INVALID',
      `[${basename(vocabPath)}] no tokenizer.ggml.tokens string array: not a vocab file`,
    );
  }
  return tokens.value.length;
}

function modelMetadata(p: TinyParams): [string, GgufValue][] {
  const arch = archOf(p);
  return [
    ['general.architecture', { type: 'string', value: arch }],
    ['general.name', { type: 'string', value: `slotwise-tiny-d${p.dim}-l${p.layers}-s${p.seed}${shapeSuffix(p)}` }],
    [`${arch}.context_length`, u32(p.contextLength)],
    [`${arch}.embedding_length`, u32(p.dim)],
    [`${arch}.block_count`, u32(p.layers)],
    [`${arch}.feed_forward_length`, u32(p.ffn)],
    [`${arch}.attention.head_count`, u32(p.heads)],
    [`${arch}.attention.head_count_kv`, u32(p.heads)],
    [`${arch}.rope.dimension_count`, u32(p.dim / p.heads)],
    [`${arch}.attention.layer_norm_rms_epsilon`, { type: 'float32', value: 1e-5 }],
    ['general.file_type', u32(0)],
    ...(p.slidingWindow !== undefined ? [[`${arch}.attention.sliding_window`, u32(p.slidingWindow)] as [string, GgufValue]] : []),
    ...(p.fullAttentionInterval !== undefined ? qwen35Metadata(p.fullAttentionInterval, p.dim / p.heads) : []),
    ...(p.pooling ? [['llama.pooling_type', u32(POOLING_TYPE[p.pooling])] as [string, GgufValue]] : []),
  ];
}

/** Qwen 3.5's keys (src/models/qwen35.cpp load_arch_hparams): the recurrent layers' shape, the attention interval, M-RoPE sections. */
function qwen35Metadata(interval: number, headDim: number): [string, GgufValue][] {
  return [
    ['qwen35.full_attention_interval', u32(interval)],
    ['qwen35.ssm.conv_kernel', u32(SSM.conv)],
    ['qwen35.ssm.state_size', u32(SSM.dState)],
    ['qwen35.ssm.group_count', u32(SSM.groups)],
    ['qwen35.ssm.time_step_rank', u32(SSM.vHeads)],
    ['qwen35.ssm.inner_size', u32(SSM.dState * SSM.vHeads)],
    ['qwen35.rope.dimension_sections', { type: 'array', itemType: 'int32', value: [headDim / 2, 0, 0, 0] } as GgufValue],
  ];
}

/** The tensors llama.cpp's LLM_ARCH_LLAMA (or GEMMA3, QWEN35) loader asks for; dims fastest-first as GGUF stores them. */
function tensorSpecs(p: TinyParams, nVocab: number): TensorSpec[] {
  const t = (name: string, ...dims: number[]): TensorSpec => ({ name, dims, type: F32 });
  const specs = [t('token_embd.weight', p.dim, nVocab)];
  for (let i = 0; i < p.layers; i++) {
    const b = `blk.${i}`;
    if (p.fullAttentionInterval !== undefined) {
      specs.push(...qwen35Block(p, i, t));
      continue;
    }
    specs.push(
      t(`${b}.attn_norm.weight`, p.dim),
      t(`${b}.attn_q.weight`, p.dim, p.dim),
      t(`${b}.attn_k.weight`, p.dim, p.dim),
      t(`${b}.attn_v.weight`, p.dim, p.dim),
      t(`${b}.attn_output.weight`, p.dim, p.dim),
      t(`${b}.ffn_norm.weight`, p.dim),
      t(`${b}.ffn_gate.weight`, p.dim, p.ffn),
      t(`${b}.ffn_down.weight`, p.ffn, p.dim),
      t(`${b}.ffn_up.weight`, p.dim, p.ffn),
    );
    // Gemma 3's extra norms (src/models/gemma3.cpp load_arch_tensors): after attention and the FFN, and per head on Q and K.
    if (p.slidingWindow !== undefined) {
      const head = p.dim / p.heads;
      specs.push(t(`${b}.post_attention_norm.weight`, p.dim), t(`${b}.post_ffw_norm.weight`, p.dim), t(`${b}.attn_q_norm.weight`, head), t(`${b}.attn_k_norm.weight`, head));
    }
  }
  specs.push(t('output_norm.weight', p.dim), t('output.weight', p.dim, nVocab));
  return specs;
}

/** One Qwen 3.5 block (src/models/qwen35.cpp load_arch_tensors): gated attention every n-th layer, a gated delta net elsewhere. */
function qwen35Block(p: TinyParams, i: number, t: (name: string, ...dims: number[]) => TensorSpec): TensorSpec[] {
  const b = `blk.${i}`;
  const head = p.dim / p.heads;
  const keyDim = SSM.dState * SSM.groups;
  const valueDim = SSM.dState * SSM.vHeads;
  const attends = (i + 1) % p.fullAttentionInterval! === 0;
  return [
    t(`${b}.attn_norm.weight`, p.dim),
    t(`${b}.post_attention_norm.weight`, p.dim),
    ...(attends
      ? [
          t(`${b}.attn_q.weight`, p.dim, 2 * p.dim), // the query and its gate
          t(`${b}.attn_k.weight`, p.dim, p.dim),
          t(`${b}.attn_v.weight`, p.dim, p.dim),
          t(`${b}.attn_output.weight`, p.dim, p.dim),
          t(`${b}.attn_q_norm.weight`, head),
          t(`${b}.attn_k_norm.weight`, head),
        ]
      : [
          t(`${b}.attn_qkv.weight`, p.dim, 2 * keyDim + valueDim),
          t(`${b}.attn_gate.weight`, p.dim, valueDim),
          t(`${b}.ssm_conv1d.weight`, SSM.conv, 2 * keyDim + valueDim),
          t(`${b}.ssm_dt.bias`, SSM.vHeads),
          t(`${b}.ssm_a`, SSM.vHeads),
          t(`${b}.ssm_beta.weight`, p.dim, SSM.vHeads),
          t(`${b}.ssm_alpha.weight`, p.dim, SSM.vHeads),
          t(`${b}.ssm_norm.weight`, SSM.dState),
          t(`${b}.ssm_out.weight`, valueDim, p.dim),
        ]),
    t(`${b}.ffn_gate.weight`, p.dim, p.ffn),
    t(`${b}.ffn_down.weight`, p.ffn, p.dim),
    t(`${b}.ffn_up.weight`, p.dim, p.ffn),
  ];
}

/** Parameters of a cached tiny model; the file name encodes them so each variant is written once. */
export interface CachedTinyModelOptions {
  env?: NodeJS.ProcessEnv;
  dim?: number;
  layers?: number;
  seed?: number;
  /** Training context; default 4096 (llama-server caps a slot's context at it). */
  contextLength?: number;
  /** Default 'completion'. */
  kind?: TinyModelKind;
  /** A gemma3 with this attention window (TinyModelOptions.slidingWindow); default none. */
  slidingWindow?: number;
  /** A qwen35 hybrid attending every n-th layer (TinyModelOptions.fullAttentionInterval); default none. */
  fullAttentionInterval?: number;
  signal?: AbortSignal;
}

/** Bumped when the writer's output changes, so that no cache keeps a file an older writer made (2: end-of-generation rows zeroed). */
const TINY_WRITER_VERSION = 2;

/**
 * The tiny model in the cache (`<cache>/models/v2/tiny-d64-l2-s1.gguf`), written on first use.
 * The demo, the benchmark and the tests share it; writing is atomic so concurrent callers are safe.
 */
export async function ensureCachedTinyModel(opts: CachedTinyModelOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const dim = opts.dim ?? 64;
  const layers = opts.layers ?? 2;
  const seed = opts.seed ?? 1;
  const contextLength = opts.contextLength ?? 4096;
  const kind = opts.kind ?? 'completion';
  const models = join(cacheDir(env), 'models');
  const dir = join(models, `v${TINY_WRITER_VERSION}`);
  const suffix = `${contextLength === 4096 ? '' : `-c${contextLength}`}${kind === 'completion' ? '' : `-${kind}`}${shapeSuffix(opts)}`;
  const name = `tiny-d${dim}-l${layers}-s${seed}${suffix}.gguf`;
  const path = join(dir, name);
  try {
    await access(path);
    return path;
  } catch {
    // not written yet: fall through and write it
  }
  await mkdir(dir, { recursive: true });
  const vocabPath = tinyVocabPath(await ensureVocab({ env, signal: opts.signal }), kind);
  const { pooling, chatTemplate } = TINY_KIND_SPEC[kind];
  await writeTinyModel(path, { vocabPath, dim, layers, seed, contextLength, pooling, chatTemplate, slidingWindow: opts.slidingWindow, fullAttentionInterval: opts.fullAttentionInterval, signal: opts.signal });
  // The first writer kept this model in models/ itself: that file is never read again.
  await rm(join(models, name), { force: true });
  return path;
}
