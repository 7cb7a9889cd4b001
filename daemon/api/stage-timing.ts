// Where a proxied /v1 request spent its time inside the daemon, sent to the client as a standard
// `Server-Timing` header (the bench reads it; browsers' dev tools show it). Marks are
// `performance.now()` readings taken once per stage: no per-chunk work.
import { performance } from 'node:perf_hooks';

/** performance.now() at each stage a request has reached; later stages stay undefined. */
export interface StageMarks {
  /** The request reached its route (headers read). */
  received: number;
  /** Body read, parsed and validated. */
  parsed?: number;
  /** Admitted to the model's queue. */
  queued?: number;
  /** Given a slot (the last attempt's, after a retry). */
  leased?: number;
  /** llama-server's response headers arrived (connect, send and its own start included). */
  upstreamHeaders?: number;
  /** The first body chunk from llama-server; the client's headers and that chunk leave right after. */
  upstreamFirstByte?: number;
}

/** The stages in `Server-Timing` order: name, and the two marks it spans. */
export const STAGES = [
  ['parse', 'received', 'parsed'],
  ['admit', 'parsed', 'queued'],
  ['queue', 'queued', 'leased'],
  ['upstream', 'leased', 'upstreamHeaders'],
  ['first-byte', 'upstreamHeaders', 'upstreamFirstByte'],
] as const satisfies readonly (readonly [string, keyof StageMarks, keyof StageMarks])[];

export type StageName = (typeof STAGES)[number][0] | 'total';

export function mark(): number {
  return performance.now();
}

/** `parse;dur=0.081, admit;dur=0.012, …, total;dur=3.412`: each stage both of whose marks exist, and
 * `total` from `received` to the latest mark, in ms. */
export function serverTiming(m: StageMarks): string {
  const parts: string[] = [];
  let last = m.received;
  for (const [name, from, to] of STAGES) {
    const a = m[from];
    const b = m[to];
    if (a === undefined || b === undefined) continue;
    parts.push(`${name};dur=${(b - a).toFixed(3)}`);
    last = Math.max(last, b);
  }
  parts.push(`total;dur=${(last - m.received).toFixed(3)}`);
  return parts.join(', ');
}

/** Parses a `Server-Timing` value into name → ms (entries without `dur` are skipped). */
export function parseServerTiming(value: string | string[] | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of (Array.isArray(value) ? value.join(',') : (value ?? '')).split(',')) {
    const [name, ...params] = entry.trim().split(';');
    const dur = params.map((p) => /^\s*dur=([0-9.eE+-]+)\s*$/.exec(p)?.[1]).find((d) => d !== undefined);
    if (name && dur !== undefined && Number.isFinite(Number(dur))) out[name] = Number(dur);
  }
  return out;
}
