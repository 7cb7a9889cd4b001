// Which layers of a model attend over a sliding window, and how wide it is. llama.cpp gives those
// layers a KV cache of their own that holds only the window (src/llama-kv-cache-iswa.cpp), so a plan
// that sized them like full-attention layers would overstate, say, a Gemma 3's KV cache about fivefold
// at 8k context and refuse loads that fit. Pure: a header already read in, no I/O.
//
// The rules are each architecture's `load_arch_hparams` in the pinned llama.cpp (src/models/*.cpp).
// An architecture not listed here is planned with a full cache in every layer: an overestimate, never
// an out-of-memory. Gemma 3n and Gemma 4 also share the caches of their last layers and may size their
// window layers' heads apart: model-facts.ts reads those (kvLayers, windowKeyLength).
import type { GgufHeader } from '../../gguf/gguf';
import { ggufNumber } from '../../gguf/gguf';

export interface SlidingWindow {
  /** `n_swa`: the tokens a window layer attends over. */
  window: number;
  /** Per block: true for a window layer. */
  swa: boolean[];
}

interface Rule {
  /** `load_swa_pattern(ml, n, dense_first)`'s default n: with dense_first every n-th layer from the first is
   * full, else the last of every n. `<arch>.attention.sliding_window_pattern` overrides it. */
  pattern: number;
  denseFirst?: boolean;
  /** n_swa when the file has no `<arch>.attention.sliding_window`; without one the key is required. */
  defaultWindow?: number;
  /** llama4: the window is `defaultWindow` whatever the key says, unless it says 0 (no chunked attention). */
  fixedWindow?: boolean;
  /** Whether the model has window layers at all (exaone4: only its 64-layer size). */
  applies?: (layers: number) => boolean;
  /** LFM2: every layer that attends (has KV heads) is a window layer; the others are convolutions. */
  attentionLayers?: boolean;
}

const RULES: Readonly<Record<string, Rule>> = {
  gemma2: { pattern: 2, defaultWindow: 4096 },
  gemma3: { pattern: 6 },
  'gpt-oss': { pattern: 2 },
  cohere2: { pattern: 4 },
  olmo2: { pattern: 4 },
  exaone4: { pattern: 4, defaultWindow: 4096, applies: (layers) => layers === 64 },
  gemma3n: { pattern: 5 },
  // Gemma 4 lists its window layers in the file (sliding_window_pattern, required); pattern 1 marks none.
  gemma4: { pattern: 1 },
  // Llama 4's chunked attention: 3 chunked layers to 1 full, 8192-token chunks, sized as a window.
  llama4: { pattern: 4, defaultWindow: 8192, fixedWindow: true },
  lfm2: { pattern: 0, attentionLayers: true },
};

/** The window layers of a model, or undefined when it has none that this plan knows of. */
export function slidingWindow(header: Pick<GgufHeader, 'metadata'>, arch: string, layers: number, headCountKv: readonly number[] = []): SlidingWindow | undefined {
  const rule = RULES[arch];
  if (!rule || (rule.applies && !rule.applies(layers))) return undefined;
  const key = ggufNumber(header, `${arch}.attention.sliding_window`);
  const window = rule.fixedWindow ? (key === 0 ? 0 : rule.defaultWindow!) : (key ?? rule.defaultWindow ?? 0);
  if (!Number.isInteger(window) || window <= 0) return undefined; // llama.cpp: no key or 0 → full attention
  const patternKey = `${arch}.attention.sliding_window_pattern`;
  const given = header.metadata.get(patternKey);
  let swa: boolean[];
  if (rule.attentionLayers) swa = Array.from({ length: layers }, (_, il) => (headCountKv[il] ?? 0) > 0);
  else if (given?.type === 'array' && given.itemType !== 'string') {
    // One flag per layer: bools, or 0/1 integers, which llama.cpp's loader reads the same way.
    const flags = given.value as unknown[];
    swa = Array.from({ length: layers }, (_, il) => flags[il] === true || (flags[il] !== undefined && flags[il] !== false && Number(flags[il]) !== 0));
  } else {
    const n = ggufNumber(header, patternKey) ?? rule.pattern;
    swa = Array.from({ length: layers }, (_, il) => isWindowLayer(il, n, rule.denseFirst === true));
  }
  return swa.some(Boolean) ? { window, swa } : undefined;
}

/** llama_hparams::set_swa_pattern: pattern 0 makes every layer a window layer. */
function isWindowLayer(il: number, n: number, denseFirst: boolean): boolean {
  if (n === 0) return true;
  return denseFirst ? il % n !== 0 : il % n < n - 1;
}

/**
 * KV cells of a window layer's cache in each stream: the window of every sequence that stream holds,
 * plus one ubatch, padded to 256 and never more than a full layer's (llama_kv_cache_iswa's size_swa).
 * `--swa-full` gives window layers the full size.
 */
export function windowCells(o: { window: number; fullCells: number; sequencesPerStream: number; ubatch: number; swaFull: boolean }): number {
  if (o.swaFull) return o.fullCells;
  return Math.ceil(Math.min(o.fullCells, o.window * o.sequencesPerStream + o.ubatch) / 256) * 256;
}
