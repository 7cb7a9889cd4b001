// How big llama-server's host-RAM prompt cache (`--cache-ram`) is for a model. Pure.
//
// The cache is what lets a conversation come back to a slot that served another one in between:
// llama-server saves the slot's prompt (its KV cells) to host RAM and restores the best saved prompt
// for the new one (tools/server/server-task.cpp server_prompt_cache). A fixed 32 MiB held about 500
// tokens of a dim-2048 × 8-layer f16 model (64 KiB per token): useless on a GPU. So `auto` sizes it
// from the model: per-token KV bytes (plan.ts kvBytesPerToken) × CONTEXTS_PER_SLOT × slots × ctxPerSlot,
// within bounds. The memory plan counts it on the host (plan.ts, PlanSettings.promptCacheMiB).
// The upper bound is there because the cache's cost per request grows with what it holds (every
// save and restore compares the new prompt with each saved one, and at -lv 4 llama-server logs every
// saved prompt per request, the larger part: design.md; a 10-minute soak at llama-server's own 8 GiB
// grew it to 522 MB and lost half its throughput): an explicit `promptCacheMiB` overrides.

/** Slot contexts' worth of saved prompts per slot: conversations waiting for their next turn. */
export const CONTEXTS_PER_SLOT = 4;
/** Never smaller than the old fixed size. */
export const PROMPT_CACHE_MIN_MIB = 32;
/** Never larger than this (the soak's trade-off above), nor than HOST_FRACTION of host RAM. */
export const PROMPT_CACHE_MAX_MIB = 4096;
export const HOST_FRACTION = 1 / 8;

const MIB = 2 ** 20;

/** `auto`: enough for CONTEXTS_PER_SLOT full contexts per slot, within [MIN, min(MAX, host RAM × HOST_FRACTION)]. */
export function autoPromptCacheMiB(perToken: number, slots: number, ctxPerSlot: number, hostBytes = Number.POSITIVE_INFINITY): number {
  const want = Math.ceil((perToken * CONTEXTS_PER_SLOT * slots * ctxPerSlot) / MIB);
  const max = Math.max(PROMPT_CACHE_MIN_MIB, Math.min(PROMPT_CACHE_MAX_MIB, Math.floor((hostBytes * HOST_FRACTION) / MIB)));
  return Math.min(max, Math.max(PROMPT_CACHE_MIN_MIB, want));
}

/** The `--cache-ram` value: the configured MiB, or `auto` sized from the model (MIN when its header cannot be read). */
export function resolvePromptCacheMiB(setting: number | 'auto', perToken: number | undefined, slots: number, ctxPerSlot: number, hostBytes?: number): number {
  if (setting !== 'auto') return setting;
  return perToken && perToken > 0 ? autoPromptCacheMiB(perToken, slots, ctxPerSlot, hostBytes) : PROMPT_CACHE_MIN_MIB;
}

/** Prompt tokens a cache of `mib` holds (Infinity when the per-token size is unknown). */
export function promptCacheTokens(mib: number, perToken: number | undefined): number {
  if (mib <= 0) return 0;
  return perToken && perToken > 0 ? Math.floor((mib * MIB) / perToken) : Number.POSITIVE_INFINITY;
}
