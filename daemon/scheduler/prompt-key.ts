// What a request's prompt starts with, cheaply comparable: for prompt-cache affinity the scheduler
// asks "which slot last served the longest common prefix of this prompt?". The prompt text is cut
// into fixed-size chunks and hashed as one running FNV-1a; the running hash at the end of each
// full chunk is kept. Equal i-th entries mean (up to hash collisions) equal text through chunk i,
// so the common prefix of two keys is found by binary search. Cost: one pass over the text.
import { createHash } from 'node:crypto';
import { mediaOf } from '../../shared/chat-content';
import { standInDigest } from '../server/lifted-strings';

/** Running hashes at the end of each full chunk; entry i covers characters [0, (i + 1) × CHUNK_CHARS). */
export type PromptKey = Uint32Array;

/** About 16 tokens of English text: fine enough to tell turns apart, coarse enough to stay cheap. */
export const CHUNK_CHARS = 64;
/** Prefixes longer than this are not told apart (1 MiB bodies would otherwise cost a few ms each). */
export const MAX_CHUNKS = 4096;

/** What the daemon sees of a prompt: the `prompt` string(s), the chat `messages` in order, or a Responses API request's `instructions` and `input`. */
export interface PromptSource {
  prompt?: unknown;
  messages?: readonly unknown[];
  instructions?: unknown;
  input?: unknown;
}

/** The prompt as one string, in the order llama-server will read it; undefined when there is none (token arrays). */
export function promptText(src: PromptSource): string | undefined {
  if (typeof src.prompt === 'string') return src.prompt;
  if (Array.isArray(src.prompt)) return src.prompt.every((p) => typeof p === 'string') ? src.prompt.join('\u0000') : undefined;
  if (src.input !== undefined && src.messages === undefined) return promptText({ messages: responsesMessages(src.instructions, src.input) });
  if (!Array.isArray(src.messages)) return undefined;
  let out = '';
  for (const m of src.messages) {
    const { role, content } = (m ?? {}) as { role?: unknown; content?: unknown };
    out += `${String(role)}\n${typeof content === 'string' ? content : Array.isArray(content) ? content.map(partText).join('') : JSON.stringify(content ?? '')}\u0000`;
  }
  return out;
}

/**
 * A Responses API request as messages, in the order llama-server's conversion puts them: the
 * instructions, then the input (a string is one user message; an item without a role, such as a
 * function call or its output, counts as its whole JSON).
 */
function responsesMessages(instructions: unknown, input: unknown): unknown[] {
  const out: unknown[] = typeof instructions === 'string' ? [{ role: 'system', content: instructions }] : [];
  if (typeof input === 'string') return [...out, { role: 'user', content: input }];
  if (!Array.isArray(input)) return out;
  for (const item of input) {
    const it = (item ?? {}) as { role?: unknown; content?: unknown; type?: unknown };
    out.push(typeof it.role === 'string' && it.content !== undefined ? { role: it.role, content: it.content } : { role: String(it.type), content: JSON.stringify(item) });
  }
  return out;
}

/**
 * One content part as prompt text: a media part (an image's base64 data URL, audio data) by a digest of
 * its data, so a photo costs one native hash instead of megabytes of JSON in the text and its key;
 * two requests with the same image still share the prefix through it.
 */
function partText(part: unknown): string {
  const p = (part ?? {}) as { type?: unknown; text?: unknown };
  if ((p.type === 'text' || p.type === 'input_text' || p.type === 'output_text') && typeof p.text === 'string') return p.text;
  const data = mediaOf(part)?.data;
  // A photo the body reader lifted out (server/lifted-strings.ts) already carries its digest.
  const digest = typeof data !== 'string' ? undefined : (standInDigest(data) ?? (data.length > 256 ? createHash('sha1').update(data).digest('base64') : undefined));
  return digest !== undefined ? `\u0001${String(p.type)}:${digest}\u0001` : JSON.stringify(part ?? null);
}

export function promptKey(text: string, chunkChars = CHUNK_CHARS): PromptKey {
  const n = Math.min(MAX_CHUNKS, Math.floor(text.length / chunkChars));
  const key = new Uint32Array(n);
  let h = 0x811c9dc5;
  for (let c = 0; c < n; c++) {
    const end = (c + 1) * chunkChars;
    for (let i = c * chunkChars; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    key[c] = h >>> 0;
  }
  return key;
}

/** Full chunks two prompts share from the start. */
export function commonChunks(a: PromptKey, b: PromptKey): number {
  // Running hashes: once two entries differ, every later one differs too (collisions aside).
  let lo = 0;
  let hi = Math.min(a.length, b.length);
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (a[mid - 1] === b[mid - 1]) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
