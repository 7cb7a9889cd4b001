// Prompt tokens a request reused from llama-server's KV cache (`cache_n`) and computed (`prompt_n`),
// from the `timings` object of its final chunk (stream) or body. Only the response's tail is kept
// and parsed once at the end: a per-chunk JSON parse would cost too much at 1,000 streams.

export interface PromptTimings {
  cached: number;
  processed: number;
}

/** The final timings object of a response sits well within its last few KB. */
const TAIL_BYTES = 4096;

/** Keeps the last TAIL_BYTES (or a little more) of a byte stream without copying each chunk. */
export class ResponseTail {
  #chunks: Uint8Array[] = [];
  #bytes = 0;

  push(chunk: Uint8Array): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    while (this.#chunks.length > 1 && this.#bytes - this.#chunks[0]!.length >= TAIL_BYTES) this.#bytes -= this.#chunks.shift()!.length;
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
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
  return { cached: Number(cached), processed: Number(processed) };
}
