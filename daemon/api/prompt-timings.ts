// Prompt tokens a request reused from llama-server's KV cache (`cache_n`) and computed (`prompt_n`),
// from the `timings` object of its final chunk (stream) or body. Only the response's tail is kept
// and parsed once at the end: a per-chunk JSON parse would cost too much at 1,000 streams.

export interface PromptTimings {
  cached: number;
  processed: number;
  /** llama-server's `prompt_ms`: time spent computing the `processed` tokens. */
  promptMs?: number;
  /** With a draft model: tokens it proposed and those the model accepted (`draft_n`, `draft_n_accepted`). */
  draft?: DraftTokens;
}

export interface DraftTokens {
  drafted: number;
  accepted: number;
}

/** The final timings object of a response sits well within its last few KB. */
const TAIL_BYTES = 4096;

/**
 * Keeps the last TAIL_BYTES of a byte stream in one buffer of its own. Chunks are copied, never kept:
 * a chunk from the socket is a slice of a much larger read buffer (tens of KB), and holding slices
 * kept those alive for every open stream (1,000 streams: +150 MB RSS in the bench).
 */
export class ResponseTail {
  #buf: Buffer | undefined;
  #len = 0;

  push(chunk: Uint8Array): void {
    const buf = (this.#buf ??= Buffer.allocUnsafe(TAIL_BYTES));
    if (chunk.length >= TAIL_BYTES) {
      buf.set(chunk.subarray(chunk.length - TAIL_BYTES));
      this.#len = TAIL_BYTES;
      return;
    }
    const overflow = this.#len + chunk.length - TAIL_BYTES;
    if (overflow > 0) {
      buf.copyWithin(0, overflow, this.#len);
      this.#len -= overflow;
    }
    buf.set(chunk, this.#len);
    this.#len += chunk.length;
  }

  text(): string {
    return this.#buf ? this.#buf.toString('utf8', 0, this.#len) : '';
  }
}

/** The last `timings` object's cache_n and prompt_n in a response's text, if any. */
export function promptTimings(text: string): PromptTimings | undefined {
  const at = text.lastIndexOf('"timings"');
  if (at < 0) return undefined;
  const rest = text.slice(at, at + 1024);
  const cached = /"cache_n"\s*:\s*(\d+)/.exec(rest)?.[1];
  const processed = /"prompt_n"\s*:\s*(\d+)/.exec(rest)?.[1];
  if (cached === undefined || processed === undefined) return undefined;
  const promptMs = /"prompt_ms"\s*:\s*([\d.eE+-]+)/.exec(rest)?.[1];
  const drafted = /"draft_n"\s*:\s*(\d+)/.exec(rest)?.[1];
  const accepted = /"draft_n_accepted"\s*:\s*(\d+)/.exec(rest)?.[1];
  return {
    cached: Number(cached),
    processed: Number(processed),
    ...(promptMs !== undefined && Number.isFinite(Number(promptMs)) ? { promptMs: Number(promptMs) } : {}),
    ...(drafted !== undefined && accepted !== undefined ? { draft: { drafted: Number(drafted), accepted: Number(accepted) } } : {}),
  };
}
