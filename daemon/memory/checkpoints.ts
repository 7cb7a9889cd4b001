// llama-server's context checkpoints: copies, in host RAM, of the part of a slot's memory that cannot
// be rolled back (a window layer's cells, a recurrent layer's state), taken as a prompt is read, so a
// later prompt that diverges inside the window (an edited or regenerated turn) resumes from one instead
// of reading everything again (tools/server/server-context.cpp create_checkpoint). Only models with
// window or recurrent layers make them; each slot keeps up to `--ctx-checkpoints` (llama.cpp: 32).
// At 32 a Gemma 3 27B keeps up to 13 GiB per slot (416 MiB a checkpoint), so Slotwise passes a bound
// sized like the prompt cache's unless the model's args set one, and the plan counts them on the host
// at that limit, as they fill with use. Pure.
import type { ModelFacts } from './model-facts';
import { HOST_FRACTION, PROMPT_CACHE_MAX_MIB } from './prompt-cache';

/** llama.cpp's default per slot (common/common.h n_ctx_checkpoints). */
export const LLAMA_CHECKPOINTS = 32;
/** The fewest Slotwise passes: the last user turn's and one or two before it (llama.cpp's first default was 3). */
export const MIN_AUTO_CHECKPOINTS = 3;

const MIB = 2 ** 20;

/**
 * Bytes of one checkpoint of a slot (llama_state_seq_get_size with PARTIAL_ONLY): its cells in every
 * window layer (`kvPerCell`: plan.ts kvBytesPerCell), at most the window (a Gemma 3's tiny test model: 128 cells × 10 layers = 0.3125 MiB,
 * llama-server 0.314), plus its recurrent layers' state (the tiny Qwen 3.5: 6 × 5,632 B = 0.032 MiB, as llama-server says). 0 for a model that makes none (`--swa-full` leaves
 * window layers nothing to roll back).
 */
export function checkpointBytes(facts: Pick<ModelFacts, 'recurrent' | 'slidingWindow'>, o: { kvPerCell: readonly number[]; swaFull: boolean; ctxPerSlot: number }): number {
  const rec = facts.recurrent;
  let bytes = rec ? rec.bytesPerSequence * rec.layers.filter(Boolean).length : 0;
  const sw = facts.slidingWindow;
  if (sw && !o.swaFull) bytes += Math.min(sw.window, o.ctxPerSlot) * o.kvPerCell.reduce((a, b, il) => a + (sw.swa[il] ? b : 0), 0);
  return bytes;
}

/**
 * What a draft model adds to each of its target's checkpoints: create_checkpoint saves the draft's state
 * with PARTIAL_ONLY too (common_prompt_checkpoint::update_dft). A draft with window or recurrent layers
 * saves those, as a target does (with `--swa-full` its window cache holds the whole context); a plain
 * one ignores the flag (llama_kv_cache::state_write) and saves every cell of the sequence, up to the
 * context. `kvPerCell`: the draft's own, with its cache types.
 */
export function draftCheckpointBytes(draft: Pick<ModelFacts, 'recurrent' | 'slidingWindow'>, o: { kvPerCell: readonly number[]; swaFull: boolean; ctxPerSlot: number }): number {
  const sw = draft.slidingWindow;
  if (!draft.recurrent && !sw) return o.ctxPerSlot * o.kvPerCell.reduce((a, b) => a + b, 0);
  // Saved as a target's; with --swa-full the window cache it saves spans the context.
  return checkpointBytes(sw && o.swaFull ? { ...draft, slidingWindow: { ...sw, window: o.ctxPerSlot } } : draft, { ...o, swaFull: false });
}

/**
 * The `--ctx-checkpoints` Slotwise passes: as many as fit, over all slots, in the prompt cache's bound
 * (4 GiB or an eighth of host RAM), between MIN_AUTO_CHECKPOINTS and llama.cpp's 32.
 */
export function autoCheckpoints(bytes: number, slots: number, hostBytes = Number.POSITIVE_INFINITY): number {
  if (bytes <= 0) return LLAMA_CHECKPOINTS;
  const budget = Math.min(PROMPT_CACHE_MAX_MIB * MIB, hostBytes * HOST_FRACTION);
  return Math.min(LLAMA_CHECKPOINTS, Math.max(MIN_AUTO_CHECKPOINTS, Math.floor(budget / (slots * bytes))));
}

/** Checkpoints per slot llama-server will keep: the args' `--ctx-checkpoints`, else Slotwise's bound. */
export function checkpointsPerSlot(set: number | undefined, bytes: number, slots: number, hostBytes?: number): number {
  return set ?? autoCheckpoints(bytes, slots, hostBytes);
}
