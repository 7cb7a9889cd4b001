// `slotwise bench --soak MINUTES`: N closed-loop clients with random prompt lengths, random output
// lengths and random aborts against a daemon for a long time, to catch what only shows over time
// (memory growth in the daemon or llama-server, throughput decay, leaked requests). Reports per
// interval and checks that the daemon's outcome counts equal what the clients saw.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RequestOutcome, Snapshot } from '../shared/protocol';
import { mulberry32 } from '../platform/prng';
import { fetchSnapshot } from './status-sampler';
import { percentile } from './stats';
import type { Progress } from './sweep';

export interface SoakOptions {
  url: string;
  token: string;
  model: string;
  minutes: number;
  clients: number;
  /** One report row per interval. Default 60 000 ms. */
  intervalMs: number;
  /** Context tokens per slot of the model: an aborted request asks for all but the prompt's room. */
  ctxPerSlot: number;
  seed: number;
  signal?: AbortSignal;
  progress?: Progress;
}

export type Outcomes = Record<RequestOutcome, number>;

export interface SoakInterval {
  /** 1-based. */
  index: number;
  endS: number;
  /** Requests that ended in this interval, by how they ended for the client. */
  requests: number;
  completed: number;
  aborted: number;
  rejected: number;
  errors: number;
  /** End-to-end latency of the completed requests, ms; null when none completed. */
  p50Ms: number | null;
  p99Ms: number | null;
  daemonRssMB: number;
  /** null: no llama-server process of the model at the sample (one was restarting). */
  llamaServerRssMB: number | null;
}

export interface SoakReport {
  kind: 'soak';
  startedAt: string;
  options: { model: string; minutes: number; clients: number; intervalMs: number; seed: number; ctxPerSlot: number };
  intervals: SoakInterval[];
  /** Every request as the clients saw it: sent = the sum of the outcomes. */
  client: Outcomes & { sent: number };
  /** The daemon's counts over the soak (end minus start, from /api/status). */
  daemon: Outcomes & { requests: number };
  /** The daemon counted every request exactly as the clients saw it. */
  outcomesMatch: boolean;
  /** llama-server restarts during the soak. */
  restarts: number;
  /** First error message seen by a client, if any. */
  firstError?: string;
}

const WORDS = 'the a lighthouse keeper found message bottle sea storm night light ship harbor wave rock island wind rain'.split(' ');
/**
 * An aborted request asks for as many tokens as its slot holds (less PROMPT_ROOM) and is cut within
 * its first 32 events, so the daemon is still streaming when the client leaves and counts it
 * cancelled. The tiny model is fast: with 256 tokens it had sent everything before the client,
 * reading its socket buffer, got to the abort (9 of 46 counted completed); with 2048, 6 of 632 on a
 * host with load average 12. The default tiny model gets 9216-token slots: seconds of generation.
 */
export const PROMPT_ROOM = 1024;
export const TINY_SOAK_CTX = 9216;
const ABORT_WITHIN_EVENTS = 32;
const ABORT_RATE = 0.1;

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const startedAt = new Date().toISOString();
  const first = await fetchSnapshot(opts.url, opts.token);
  const t0 = Date.now();
  const endAt = t0 + opts.minutes * 60_000;
  const client: Outcomes & { sent: number } = { sent: 0, completed: 0, cancelled: 0, rejected: 0, failed: 0 };
  let window: { outcome: RequestOutcome; ms: number }[] = [];
  let firstError: string | undefined;
  const intervals: SoakInterval[] = [];

  const closeInterval = async (): Promise<void> => {
    const done = window;
    window = [];
    const snap = await fetchSnapshot(opts.url, opts.token).catch(() => undefined);
    const latencies = done.filter((r) => r.outcome === 'completed').map((r) => r.ms).sort((a, b) => a - b);
    const pct = (p: number): number | null => (latencies.length ? Math.round(percentile(latencies, p)) : null);
    const count = (o: RequestOutcome): number => done.filter((r) => r.outcome === o).length;
    intervals.push({
      index: intervals.length + 1,
      endS: Math.round((Date.now() - t0) / 1000),
      requests: done.length,
      completed: count('completed'),
      aborted: count('cancelled'),
      rejected: count('rejected'),
      errors: count('failed'),
      p50Ms: pct(50),
      p99Ms: pct(99),
      daemonRssMB: rssMB(snap ? [snap.daemon.pid] : []),
      llamaServerRssMB: llamaServerRss(snap, opts.model),
    });
    const last = intervals.at(-1)!;
    const server = last.llamaServerRssMB === null ? 'not running' : `${last.llamaServerRssMB} MB`;
    opts.progress?.line(`soak ${last.index}: ${last.requests} requests, p50 ${last.p50Ms} ms, p99 ${last.p99Ms} ms, ${last.errors} errors, daemon ${last.daemonRssMB} MB, llama-server ${server}`);
  };

  const worker = async (k: number): Promise<void> => {
    const rand = mulberry32(opts.seed + k);
    while (Date.now() < endAt && !opts.signal?.aborted) {
      const abort = rand() < ABORT_RATE;
      const maxTokens = abort ? Math.max(64, opts.ctxPerSlot - PROMPT_ROOM) : 8 + Math.floor(rand() * 120);
      const abortAfter = abort ? 1 + Math.floor(rand() * ABORT_WITHIN_EVENTS) : undefined;
      const words = Array.from({ length: 1 + Math.floor(rand() * 200) }, () => WORDS[Math.floor(rand() * WORDS.length)]!).join(' ');
      client.sent++;
      const r = await oneRequest(opts, words, maxTokens, abortAfter);
      client[r.outcome]++;
      if (r.error) firstError ??= r.error;
      window.push(r);
    }
  };

  // The ticker closes the full intervals only, by their count and not by the clock: a timer may
  // fire a millisecond before Date.now() reaches the deadline, which closed an extra, empty row.
  const ticker = (async () => {
    for (let k = 1; t0 + k * opts.intervalMs < endAt; k++) {
      await sleep(Math.max(0, t0 + k * opts.intervalMs - Date.now()), undefined, { signal: opts.signal }).catch(() => undefined);
      if (opts.signal?.aborted) return;
      await closeInterval();
    }
  })();
  await Promise.all([...Array.from({ length: opts.clients }, (_, k) => worker(k)), ticker]);
  await closeInterval(); // the last (partial) interval, with the requests that ended after the deadline

  // Outcomes are recorded as each request ends on the daemon's side: wait for all of them.
  let last = await fetchSnapshot(opts.url, opts.token);
  const deadline = Date.now() + 15_000;
  while (received(last, opts.model) - received(first, opts.model) < client.sent && Date.now() < deadline) {
    await sleep(100);
    last = await fetchSnapshot(opts.url, opts.token);
  }
  const o0 = outcomes(first, opts.model);
  const o1 = outcomes(last, opts.model);
  const daemon = {
    requests: received(last, opts.model) - received(first, opts.model),
    completed: o1.completed - o0.completed,
    cancelled: o1.cancelled - o0.cancelled,
    rejected: o1.rejected - o0.rejected,
    failed: o1.failed - o0.failed,
  };
  const outcomesMatch =
    daemon.requests === client.sent && (['completed', 'cancelled', 'rejected', 'failed'] as const).every((k) => daemon[k] === client[k]);
  return {
    kind: 'soak',
    startedAt,
    options: { model: opts.model, minutes: opts.minutes, clients: opts.clients, intervalMs: opts.intervalMs, seed: opts.seed, ctxPerSlot: opts.ctxPerSlot },
    intervals,
    client,
    daemon,
    outcomesMatch,
    restarts: restarts(last, opts.model) - restarts(first, opts.model),
    ...(firstError ? { firstError } : {}),
  };
}

async function oneRequest(opts: SoakOptions, prompt: string, maxTokens: number, abortAfter: number | undefined): Promise<{ outcome: RequestOutcome; ms: number; error?: string }> {
  const start = Date.now();
  const abort = new AbortController();
  const onStop = (): void => abort.abort();
  opts.signal?.addEventListener('abort', onStop, { once: true });
  try {
    const res = await fetch(`${opts.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${opts.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: opts.model, prompt, max_tokens: maxTokens, ignore_eos: true, stream: true }),
      signal: abort.signal,
    });
    if (res.status !== 200) {
      const text = await res.text();
      const code = /"code":"(SW_ERR_[A-Z_]+)"/.exec(text)?.[1];
      const rejected = code === 'SW_ERR_QUEUE_FULL' || code === 'SW_ERR_QUEUE_TIMEOUT' || code === 'SW_ERR_NO_INSTANCE';
      return { outcome: rejected ? 'rejected' : 'failed', ms: Date.now() - start, error: `HTTP ${res.status}: ${text.slice(0, 200)}` };
    }
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let events = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      const chunk = decoder.decode(value, { stream: true });
      // Events are counted per chunk and only the tail is kept: a long stream costs the client little.
      events += chunk.match(/(^|\n)data: /g)?.length ?? 0;
      text = (text + chunk).slice(-4096);
      if (abortAfter !== undefined && events >= abortAfter && !text.includes('data: [DONE]')) {
        abort.abort();
        await reader.cancel().catch(() => undefined); // aborted: the stream is gone, as intended
        return { outcome: 'cancelled', ms: Date.now() - start };
      }
    }
    if (text.includes('data: [DONE]')) return { outcome: 'completed', ms: Date.now() - start };
    return { outcome: 'failed', ms: Date.now() - start, error: `stream ended without [DONE]: ${text.slice(-200)}` };
  } catch (err) {
    if (abort.signal.aborted) return { outcome: 'cancelled', ms: Date.now() - start };
    return { outcome: 'failed', ms: Date.now() - start, error: (err as Error).message };
  } finally {
    opts.signal?.removeEventListener('abort', onStop);
  }
}

function model(s: Snapshot, name: string): Snapshot['models'][number] | undefined {
  return s.models.find((m) => m.name === name);
}
function received(s: Snapshot, name: string): number {
  return model(s, name)?.requests ?? 0;
}
function outcomes(s: Snapshot, name: string): Outcomes {
  return { completed: 0, cancelled: 0, rejected: 0, failed: 0, ...model(s, name)?.outcomes };
}
function restarts(s: Snapshot, name: string): number {
  return (model(s, name)?.instances ?? []).reduce((a, i) => a + i.restarts, 0);
}
function instancePids(s: Snapshot, name: string): number[] {
  return (model(s, name)?.instances ?? []).flatMap((i) => (i.pid === undefined ? [] : [i.pid]));
}
function llamaServerRss(s: Snapshot | undefined, name: string): number | null {
  const pids = s ? instancePids(s, name) : [];
  return pids.length ? rssMB(pids) : null;
}

/** Resident memory of processes on this host, MB (Linux /proc; 0 where unreadable). */
export function rssMB(pids: number[]): number {
  return Math.round(rssBytes(pids) / (1024 * 1024));
}

/** Resident memory of processes on this host, bytes (VmRSS of /proc/PID/status; 0 where unreadable). */
export function rssBytes(pids: number[]): number {
  let kB = 0;
  for (const pid of pids) {
    try {
      kB += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone (a restart) or not Linux: counted as 0
    }
  }
  return kB * 1024;
}
