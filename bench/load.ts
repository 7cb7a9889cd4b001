// The load generator: a closed loop of `concurrency` workers sending `requests` streamed
// completions in total. Request i's length comes from the mix, so every run sends the same sequence.
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { streamCompletion } from './stream-request';
import type { BenchTarget, MixEntry, RequestSample } from './types';
import { mulberry32 } from '../platform/prng';

export interface LevelPlan {
  target: BenchTarget;
  /** Base URLs to send to, taken in turn (direct mode spreads over every instance like the daemon would). */
  baseUrls: string[];
  token?: string;
  /** A token per base URL (direct: each llama-server has its own key), else `token` for all. */
  tokens?: (string | undefined)[];
  model: string;
  prompt: string;
  concurrency: number;
  requests: number;
  /** max_tokens of request i. */
  maxTokens: (i: number) => number;
  dispatcher: Dispatcher;
  signal?: AbortSignal;
  /** Called after each finished request with the number done so far. */
  onProgress?: (done: number) => void;
}

export interface LevelRun {
  samples: RequestSample[];
  /** performance.now() at the level's start (sample times are relative to it). */
  t0: number;
  wallMs: number;
}

export async function runLevel(plan: LevelPlan): Promise<LevelRun> {
  const t0 = performance.now();
  const samples: RequestSample[] = new Array<RequestSample>(plan.requests);
  let next = 0;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (next < plan.requests && !plan.signal?.aborted) {
      const i = next++;
      samples[i] = await streamCompletion({
        target: plan.target,
        baseUrl: plan.baseUrls[i % plan.baseUrls.length]!,
        token: plan.tokens?.[i % plan.baseUrls.length] ?? plan.token,
        model: plan.model,
        prompt: plan.prompt,
        maxTokens: plan.maxTokens(i),
        dispatcher: plan.dispatcher,
        signal: plan.signal,
        t0,
      });
      plan.onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(plan.concurrency, plan.requests) }, worker));
  plan.signal?.throwIfAborted();
  return { samples, t0, wallMs: performance.now() - t0 };
}

/**
 * max_tokens of request i for a weighted mix: a seeded shuffle of the weights, so the long requests
 * are spread the same way in every run (and not on a stride that round-robin would always align with).
 */
export function mixSequence(mix: readonly MixEntry[], requests: number, seed = 1): number[] {
  if (mix.length === 1) return new Array<number>(requests).fill(mix[0]!.maxTokens);
  const total = mix.reduce((a, m) => a + m.weight, 0);
  // Exact shares (largest remainder), then a deterministic shuffle.
  const counts = mix.map((m) => Math.floor((m.weight / total) * requests));
  const order = mix.map((m, i) => ({ i, rem: (m.weight / total) * requests - counts[i]! })).sort((a, b) => b.rem - a.rem);
  for (let k = 0; counts.reduce((a, b) => a + b, 0) < requests; k++) counts[order[k % order.length]!.i]!++;
  const seq = mix.flatMap((m, i) => new Array<number>(counts[i]!).fill(m.maxTokens));
  const random = mulberry32(seed);
  for (let i = seq.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [seq[i], seq[j]] = [seq[j]!, seq[i]!];
  }
  return seq;
}

/** Parses `16:3,256:1` (max_tokens:weight; weight defaults to 1) or a single `64`. */
export function parseMix(text: string): MixEntry[] | undefined {
  const parts = text.split(',').map((p) => p.trim());
  const out: MixEntry[] = [];
  for (const part of parts) {
    const m = /^(\d+)(?::(\d+))?$/.exec(part);
    if (!m) return undefined;
    const maxTokens = Number(m[1]);
    const weight = m[2] === undefined ? 1 : Number(m[2]);
    if (maxTokens < 1 || weight < 1) return undefined;
    out.push({ maxTokens, weight });
  }
  return out.length ? out : undefined;
}
