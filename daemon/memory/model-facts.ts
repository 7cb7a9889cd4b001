// The facts of a GGUF header that the memory plan needs: the bytes of each block's tensors and of the
// tensors outside the blocks, and the attention shapes that size the KV cache. Pure: it takes a
// header already read (gguf/gguf.ts `readGgufHeader`) and does no I/O.
import { basename } from 'node:path';
import { SlotwiseError } from '../../shared/errors';
import { ggmlTensorBytes, ggufNumber, ggufString, type GgufHeader } from '../../gguf/gguf';
import { slidingWindow, type SlidingWindow } from './sliding-window';
import { recurrentLayers, type RecurrentLayers } from './recurrent';
import type { ProjectorFacts } from './projector';

export interface ModelFacts {
  architecture: string;
  /** `<arch>.block_count`. */
  layers: number;
  /** Bytes of the tensors `blk.N.*`, index N. */
  layerBytes: number[];
  /** Each tensor of `blk.N.*` by name, index N: what `-ot`/`--n-cpu-moe` patterns match (server-args.ts tensorOverrides). */
  layerTensors: { name: string; bytes: number }[][];
  /** token_embd and whatever else is outside the blocks and not the output: llama.cpp keeps it on the host. */
  inputBytes: number;
  /** `output.*` and `output_norm.*`: on a GPU only when gpuLayers > layers. */
  outputBytes: number;
  /** Bytes llama.cpp adds on the output's GPU when the file has no output.weight: it copies token_embd there. */
  tiedOutputBytes: number;
  /** KV heads of each layer (`<arch>.attention.head_count_kv`, which may be per layer; default head_count). */
  headCountKv: number[];
  /** Attention heads (largest per-layer value). */
  headCount: number;
  /** Elements of one K head: `<arch>.attention.key_length`, else embedding_length / head_count. */
  keyLength: number;
  /** Elements of one V head: `<arch>.attention.value_length`, else embedding_length / head_count. */
  valueLength: number;
  embeddingLength: number;
  /** `<arch>.feed_forward_length` (largest per-layer value). */
  feedForwardLength: number;
  vocabSize: number;
  /** Training context, tokens; 0 when the file does not say. */
  contextLength: number;
  /** The layers that attend over a sliding window and keep a smaller KV cache (sliding-window.ts); absent: none. */
  slidingWindow?: SlidingWindow;
  /** The recurrent layers (no KV cache, a fixed state per slot: recurrent.ts); absent: none. */
  recurrent?: RecurrentLayers;
  /** Layers from the first that keep a KV cache; the later ones read an earlier layer's (Gemma 3n: 20; Gemma 4:
   * all but `attention.shared_kv_layers`; llama_hparams::has_kv). Absent: every layer has its own. */
  kvLayers?: number;
  /** Head widths of the sliding-window layers (`attention.key_length_swa`/`value_length_swa`), where they differ from the others'. */
  windowKeyLength?: number;
  windowValueLength?: number;
  /** DeepSeek V3.2 and GLM-5's sparse attention: each layer also caches one key of this width per token for its
   * lightning indexer (`attention.indexer.key_length`; src/llama-kv-cache-dsa.cpp). Absent: none. */
  indexerKeyLength?: number;
  /** Multi-head latent attention (`<arch>.attention.key_length_mla` and `value_length_mla`, as DeepSeek V2/V3
   * and Kimi K2 files have): llama.cpp caches only K, the compressed latent, and reads V out of it. */
  latentAttention?: true;
  /** The model's multimodal projector (`mmproj`), read from its own file (projector.ts); absent: none. */
  projector?: ProjectorFacts;
  /** The facts of its draft model (`draft`), read from that file; absent: none. */
  draft?: ModelFacts;
}

const BLOCK = /^blk\.(\d+)\./;
const OUTPUT = /^(output|output_norm)\./;

/** Facts of a model's header; fails with SW_ERR_GGUF_INVALID when a tensor type or the shape is unknown. */
export function modelFacts(header: GgufHeader): ModelFacts {
  const file = basename(header.path);
  const fail = (msg: string): SlotwiseError => new SlotwiseError('SW_ERR_GGUF_INVALID', `[${file}] ${msg}`);
  const arch = ggufString(header, 'general.architecture');
  if (!arch) throw fail('no "general.architecture" in the metadata: not a model file');
  const blocks = ggufNumber(header, `${arch}.block_count`) ?? 0;
  if (!Number.isInteger(blocks) || blocks < 1) throw fail(`no ${arch}.block_count: cannot plan the memory of a model without layers`);
  // The last nextn_predict_layers blocks are a multi-token-prediction head (GLM-4.5, Qwen 3.5 with MTP):
  // llama-server loads neither their weights nor their KV cache unless it drafts with them (llama_hparams::n_layer).
  const nextn = ggufNumber(header, `${arch}.nextn_predict_layers`) ?? 0;
  const layers = nextn > 0 && nextn < blocks ? blocks - nextn : blocks;

  const layerBytes = new Array<number>(layers).fill(0);
  const layerTensors = Array.from({ length: layers }, (): { name: string; bytes: number }[] => []);
  let inputBytes = 0;
  let outputBytes = 0;
  let embdBytes = 0;
  let hasOutputWeight = false;
  for (const t of header.tensors) {
    const bytes = ggmlTensorBytes(t.type, t.dims);
    if (bytes === undefined) throw fail(`tensor "${t.name}" has ggml type ${t.type}, which Slotwise does not know: cannot plan its memory`);
    const block = BLOCK.exec(t.name);
    if (block && Number(block[1]) < layers) {
      layerBytes[Number(block[1])]! += bytes;
      layerTensors[Number(block[1])]!.push({ name: t.name, bytes });
    } else if (block && Number(block[1]) < blocks) continue; // a prediction-head block: not loaded
    else if (OUTPUT.test(t.name)) outputBytes += bytes;
    else inputBytes += bytes;
    if (t.name === 'token_embd.weight') embdBytes = bytes;
    if (t.name === 'output.weight') hasOutputWeight = true;
  }

  const embeddingLength = ggufNumber(header, `${arch}.embedding_length`) ?? 0;
  const headCount = ggufNumber(header, `${arch}.attention.head_count`) ?? 0;
  const headDim = headCount > 0 ? embeddingLength / headCount : 0;
  const tokens = header.metadata.get('tokenizer.ggml.tokens');
  const headCountKv = perLayer(header, `${arch}.attention.head_count_kv`, layers) ?? perLayer(header, `${arch}.attention.head_count`, layers) ?? new Array<number>(layers).fill(0);
  return {
    architecture: arch,
    layers,
    layerBytes,
    layerTensors,
    inputBytes,
    outputBytes,
    tiedOutputBytes: hasOutputWeight ? 0 : embdBytes,
    headCountKv,
    headCount,
    keyLength: ggufNumber(header, `${arch}.attention.key_length`) ?? headDim,
    valueLength: ggufNumber(header, `${arch}.attention.value_length`) ?? headDim,
    embeddingLength,
    feedForwardLength: ggufNumber(header, `${arch}.feed_forward_length`) ?? 4 * embeddingLength,
    vocabSize: tokens?.type === 'array' ? tokens.value.length : (ggufNumber(header, `${arch}.vocab_size`) ?? 0),
    contextLength: ggufNumber(header, `${arch}.context_length`) ?? 0,
    ...optional('slidingWindow', slidingWindow(header, arch, layers, headCountKv)),
    ...optional('recurrent', recurrentLayers(header, arch, headCountKv, perLayer(header, `${arch}.feed_forward_length`, layers) ?? [])),
    ...optional('kvLayers', kvLayers(header, arch, layers)),
    ...optional('windowKeyLength', ggufNumber(header, `${arch}.attention.key_length_swa`)),
    ...optional('windowValueLength', ggufNumber(header, `${arch}.attention.value_length_swa`)),
    // Every layer is counted, GLM-5's too, though it keeps an indexer cache only in its "full" indexer layers: an overestimate.
    ...optional('indexerKeyLength', arch === 'deepseek32' || arch === 'glm-dsa' ? ggufNumber(header, `${arch}.attention.indexer.key_length`) : undefined),
    // llama_hparams::is_mla: both keys set (the KV cache then has no V rows, src/llama-kv-cache.cpp).
    ...optional('latentAttention', ggufNumber(header, `${arch}.attention.key_length_mla`) && ggufNumber(header, `${arch}.attention.value_length_mla`) ? true : undefined),
  };
}

/** llama_hparams::n_layer_kv_from_start, where an architecture sets it (src/models/gemma3n.cpp, gemma4.cpp). */
function kvLayers(header: GgufHeader, arch: string, layers: number): number | undefined {
  if (arch === 'gemma3n') return Math.min(20, layers);
  if (arch !== 'gemma4') return undefined;
  const shared = ggufNumber(header, `${arch}.attention.shared_kv_layers`) ?? 0;
  return shared > 0 ? layers - shared : undefined;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [k in K]?: V };
}

/** A key that is either one number for every layer or an array with one per layer (hybrid models: 0 = no attention). */
function perLayer(header: GgufHeader, key: string, layers: number): number[] | undefined {
  const v = header.metadata.get(key);
  if (v?.type === 'array' && (v.itemType !== 'bool' && v.itemType !== 'string')) {
    const items = (v.value as (number | bigint)[]).map(Number);
    return Array.from({ length: layers }, (_, i) => items[i] ?? items[items.length - 1] ?? 0);
  }
  const n = ggufNumber(header, key);
  return n === undefined ? undefined : new Array<number>(layers).fill(n);
}
