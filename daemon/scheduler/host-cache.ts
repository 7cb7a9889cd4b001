// What one llama-server probably holds in its host-RAM prompt cache (`--cache-ram`), as the daemon can
// tell from the prompts it sent: an approximation of llama-server's own list
// (tools/server/server-task.cpp `server_prompt_cache`), so routing can send a conversation back to the
// replica that can restore it instead of one that must compute it again.
//
// llama-server's rules, modelled here:
// - a slot's prompt is saved when another prompt replaces it (`update_cache`), and every idle slot is
//   saved whenever a task starts (`--cache-idle-slots`, on by default): so a prompt a slot served is
//   in the host cache once the slot moves on;
// - saving a prompt drops the saved prompts it contains (the same conversation, earlier turns), and
//   is skipped when a saved prompt already contains it;
// - restoring a saved prompt into a slot moves it out of the list;
// - when the size limit is reached, the oldest saved prompt goes first.
// Sizes are estimated from the characters each key covers; the capacity is llama-server's limit
// converted to tokens (see daemon/memory/prompt-cache.ts).
import { CHUNK_CHARS, commonChunks, type PromptKey } from './prompt-key';

/** English text through llama-style tokenizers: about 4 characters a token. */
export const CHARS_PER_TOKEN = 4;
/** Tokens one key chunk stands for. */
export const TOKENS_PER_CHUNK = CHUNK_CHARS / CHARS_PER_TOKEN;
/**
 * llama-server only restores a saved prompt that keeps at least a quarter of itself
 * (`f_keep < 0.25` entries are skipped in server_prompt_cache::load).
 */
export const MIN_KEEP = 0.25;

export class HostCache {
  /** Oldest first, as llama-server evicts. */
  #entries: PromptKey[] = [];
  #tokens = 0;

  /** @param capacityTokens prompt tokens llama-server's cache can hold (Infinity when unknown; 0 = no cache). */
  constructor(public capacityTokens: number) {}

  get size(): number {
    return this.#entries.length;
  }

  /** Chunks of `key` the best restorable saved prompt shares (0: nothing here helps). */
  shared(key: PromptKey): number {
    return this.#best(key)?.shared ?? 0;
  }

  /** A slot's prompt left the slot (replaced by another): llama-server saved it. */
  save(key: PromptKey | undefined): void {
    if (!key || key.length === 0 || this.capacityTokens <= 0) return;
    const tokens = tokensOf(key);
    if (tokens > this.capacityTokens) return; // llama-server skips an entry over its limit
    if (this.#entries.some((e) => commonChunks(e, key) === key.length)) return; // already contained
    this.#entries = this.#entries.filter((e) => commonChunks(e, key) < e.length); // contained in the new one
    this.#entries.push(key);
    this.#tokens = this.#entries.reduce((n, e) => n + tokensOf(e), 0);
    while (this.#tokens > this.capacityTokens && this.#entries.length > 0) this.#tokens -= tokensOf(this.#entries.shift()!);
  }

  /**
   * A prompt starts in a slot that held `slotKey`: llama-server restores the saved prompt that beats
   * what the slot keeps, and that prompt leaves the list. Returns the chunks restored (0: none).
   */
  restore(key: PromptKey, slotKey: PromptKey | undefined): number {
    const best = this.#best(key);
    const inSlot = slotKey ? commonChunks(slotKey, key) : 0;
    if (!best || best.shared <= inSlot) return 0;
    this.#entries.splice(best.index, 1);
    this.#tokens -= tokensOf(best.entry);
    return best.shared;
  }

  /** The process restarted: its cache went with it. */
  clear(): void {
    this.#entries = [];
    this.#tokens = 0;
  }

  #best(key: PromptKey): { index: number; entry: PromptKey; shared: number } | undefined {
    let best: { index: number; entry: PromptKey; shared: number } | undefined;
    this.#entries.forEach((entry, index) => {
      const shared = commonChunks(entry, key);
      if (shared === 0 || shared < MIN_KEEP * entry.length) return;
      if (!best || shared > best.shared) best = { index, entry, shared };
    });
    return best;
  }
}

function tokensOf(key: PromptKey): number {
  return key.length * TOKENS_PER_CHUNK;
}
