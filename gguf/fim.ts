// Whether a model can fill in the middle: llama-server's /infill needs FIM prefix, suffix and middle
// tokens. llama.cpp takes them from `tokenizer.ggml.fim_{pre,suf,mid}_token_id` (or the older
// `prefix/suffix/middle_token_id` keys), else finds them by their text in the vocab
// (/work/llama-src src/llama-vocab.cpp, "find FIM_PRE token"); this mirrors both lookups.
import type { GgufValue } from './gguf';

export interface FimTokens {
  pre: number;
  suf: number;
  mid: number;
}

type Part = keyof FimTokens;

const KEYS: Record<Part, readonly string[]> = {
  pre: ['tokenizer.ggml.fim_pre_token_id', 'tokenizer.ggml.prefix_token_id'],
  suf: ['tokenizer.ggml.fim_suf_token_id', 'tokenizer.ggml.suffix_token_id'],
  mid: ['tokenizer.ggml.fim_mid_token_id', 'tokenizer.ggml.middle_token_id'],
};

/** Token texts llama.cpp recognises, per model family (Qwen, StarCoder, Granite, DeepSeek, CodeLlama, GLM-4.5, Falcon-H1). */
const TEXTS: Record<Part, ReadonlySet<string>> = {
  pre: new Set(['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>']),
  suf: new Set(['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>']),
  mid: new Set(['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>']),
};

/** The FIM token ids of a GGUF's metadata, or undefined when any of the three is missing. */
export function fimTokens(metadata: ReadonlyMap<string, GgufValue>): FimTokens | undefined {
  const tokens = metadata.get('tokenizer.ggml.tokens');
  const texts = tokens?.type === 'array' && tokens.itemType === 'string' ? (tokens.value as string[]) : [];
  const find = (part: Part): number | undefined => {
    for (const key of KEYS[part]) {
      const v = metadata.get(key);
      if (v && v.type !== 'array' && v.type !== 'string' && v.type !== 'bool') return Number(v.value);
    }
    const i = texts.findIndex((t) => TEXTS[part].has(t));
    return i >= 0 ? i : undefined;
  };
  const pre = find('pre');
  const suf = find('suf');
  const mid = find('mid');
  return pre === undefined || suf === undefined || mid === undefined ? undefined : { pre, suf, mid };
}
