// The client side of a benchmark: a concurrency sweep against a running daemon (and, with `direct`,
// against its llama-server ports in the same run), sampling /api/status during every level.
// Talks HTTP only, so it runs the same in the daemon's process or in a separate one.
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { SlotwiseError } from '../shared/errors';
import type { ModelStatus, Snapshot } from '../shared/protocol';
import { buildLevel, compareLevels, levelRequests } from './aggregate';
import { mixSequence, runLevel, type LevelRun } from './load';
import { cpuPerRequest } from './process-cpu';
import { StatusSampler } from './status-sampler';
import { streamCompletion } from './stream-request';
import type { BenchTarget, LevelResult, SweepOptions, SweepResult } from './types';

/** Progress for people: whole lines, and an in-place counter a terminal may redraw. */
export interface Progress {
  line(text: string): void;
  update(text: string): void;
}

export interface SweepRun extends SweepOptions {
  url: string;
  token: string;
  signal?: AbortSignal;
  progress?: Progress;
  /** Instance id → its llama-server's API key, for `direct` (only a daemon this process hosts can hand them over). */
  directKeys?: Record<string, string>;
  /** How long to wait for a ready instance of the model. Default 120 s. */
  readyTimeoutMs?: number;
  /** The bare proxy's process, for its CPU per request (LevelResult.cpuUsPerRequest). */
  floorPid?: number;
}

/** The burst through each target before the first level; a few seconds at most on the tiny model. */
const WARM_UP = { requests: 32, concurrency: 4, maxTokens: 8 } as const;

/**
 * Then, through a JavaScript hop (the daemon, the bare proxy), short requests until V8 has compiled its
 * per-request path, or for `maxMs` on a slow upstream. A function that runs once per request is
 * optimized only after thousands of runs: on the 2-core VM, the daemon's CPU per request was 1.3–1.4 ms
 * after 64 requests, 0.90 after 1,000 and 0.57 after 3,000 (the bare proxy's 0.19–0.26), per
 * `bench/hop-cost.mjs --warmup N`. A daemon serves for hours: the sweep compares steady states.
 */
export const HOP_WARM_UP = { requests: 3000, concurrency: 8, maxTokens: 2, maxMs: 15_000 } as const;

/** `requests` short requests through `target`, HOP_WARM_UP.concurrency at a time, or as many as HOP_WARM_UP.maxMs allows. */
async function warmHop(one: Parameters<typeof streamCompletion>[0], target: BenchTarget, requests: number, opts: Pick<SweepRun, 'progress' | 'signal'>): Promise<void> {
  const until = performance.now() + HOP_WARM_UP.maxMs;
  let sent = 0;
  await Promise.all(Array.from({ length: HOP_WARM_UP.concurrency }, async () => {
    while (sent < requests && performance.now() < until) {
      opts.signal?.throwIfAborted();
      if (sent++ % 250 === 0) opts.progress?.update(`warm-up: ${sent - 1} short requests through ${target}, so its code runs compiled as in a daemon that has served a while`);
      await streamCompletion({ ...one, maxTokens: HOP_WARM_UP.maxTokens });
    }
  }));
}

export async function runSweep(opts: SweepRun): Promise<SweepResult> {
  // One agent for the whole sweep: keep-alive connections are reused from level to level, so no
  // level pays connection setup the others do not.
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000 });
  const sampler = new StatusSampler({ url: opts.url, token: opts.token, model: opts.model, dispatcher });
  try {
    const model = await waitReady(sampler, opts.model, opts.readyTimeoutMs ?? 120_000, opts.signal);
    const ready = model.instances.filter((i) => i.state === 'ready' && i.port !== undefined);
    // The daemon's CPU per request is its process's only when this client runs elsewhere.
    const daemonPid = (await sampler.snapshot()).daemon.pid;
    const hopPid = { daemon: daemonPid === process.pid ? undefined : daemonPid, floor: opts.floorPid, direct: undefined };
    const directUrls = ready.map((i) => `http://127.0.0.1:${i.port}`);
    const base = { model: opts.model, prompt: opts.prompt, dispatcher, signal: opts.signal };
    const targets: Partial<Record<BenchTarget, { baseUrls: string[]; token?: string; tokens?: (string | undefined)[] }>> = {
      daemon: { baseUrls: [opts.url], token: opts.token },
      direct: { baseUrls: directUrls, tokens: ready.map((i) => opts.directKeys?.[i.id]) },
      // The bare proxy forwards the client's Authorization: the key of the llama-server behind it.
      ...(opts.direct && opts.floor ? { floor: { baseUrls: [opts.floor], tokens: [opts.directKeys?.[ready[0]!.id]] } } : {}),
    };
    const names = (Object.keys(targets) as BenchTarget[]).filter((t) => t === 'daemon' || opts.direct);

    // Warm-up (not recorded): connections, llama-server's first-request costs, and a clear error
    // now if a target does not answer completions at all. Then a short burst through each, so the
    // first level does not measure a JavaScript hop (the daemon, the bare proxy) before its hot path
    // is compiled: a daemon serves for hours, and the sweep compares steady states.
    for (const target of names) {
      const t = targets[target]!;
      const one = { ...base, ...t, token: t.tokens?.[0] ?? t.token, baseUrl: t.baseUrls[0]!, target, maxTokens: WARM_UP.maxTokens, t0: 0 };
      const s = await streamCompletion(one);
      if (!s.ok) {
        const where = target === 'daemon' ? `${opts.url}/v1/completions` : target === 'floor' ? `the bare proxy ${opts.floor}/v1/completions` : `llama-server ${directUrls[0]}/v1/completions`;
        const fix = target === 'direct' && !t.tokens?.[0] ? ' — the daemon gave no key for it (GET /api/instance-keys): is it the daemon that runs this llama-server?' : '';
        throw new SlotwiseError('SW_ERR_UPSTREAM', `bench: warm-up request to ${where} failed: ${s.error}${fix}`);
      }
      opts.progress?.update(`warm-up: ${WARM_UP.requests} requests through ${target}`);
      await Promise.all(Array.from({ length: WARM_UP.concurrency }, async () => {
        for (let i = 0; i < WARM_UP.requests / WARM_UP.concurrency; i++) await streamCompletion(one);
      }));
      if (target !== 'direct') await warmHop(one, target, opts.warmUp ?? HOP_WARM_UP.requests, opts);
    }

    const levels: LevelResult[] = [];
    const n = opts.concurrency.length;
    for (const [k, c] of opts.concurrency.entries()) {
      // Rotate which target goes first so drift (thermal, caches, other load) hits each alike.
      const order: BenchTarget[] = names.map((_, i) => names[(i + k) % names.length]!);
      const requests = levelRequests(opts, c);
      const lengths = mixSequence(opts.mix, requests);
      for (const target of order) {
        const label = `level ${k + 1}/${n} c=${c} ${target}`;
        opts.progress?.update(`${label}: 0/${requests}`);
        // Start each level on idle slots as the daemon sees them: right after a direct level its last
        // /slots poll still shows the direct clients' slots busy (foreign), and it would rightly hold
        // the first daemon requests back until the next poll.
        await waitIdle(sampler, opts.model, 3000, opts.signal);
        sampler.start();
        const cpu = cpuPerRequest(hopPid[target]);
        let run: LevelRun;
        try {
          run = await runLevel({
            ...base,
            ...targets[target]!,
            target,
            concurrency: c,
            requests,
            maxTokens: (i) => lengths[i]!,
            onProgress: (done) => opts.progress?.update(`${label}: ${done}/${requests}`),
          });
        } catch (err) {
          await sampler.stop();
          throw err;
        }
        const cpuUs = cpu(run.samples.length); // before the sampler's last poll of the daemon
        const level = buildLevel(target, c, run, await sampler.stop(), cpuUs);
        levels.push(level);
        opts.progress?.line(describeLevel(label, level));
      }
    }
    return {
      options: { model: opts.model, concurrency: opts.concurrency, requests: opts.requests, ...(opts.perClient ? { perClient: opts.perClient } : {}), ...(opts.warmUp !== undefined ? { warmUp: opts.warmUp } : {}), mix: opts.mix, direct: opts.direct, prompt: opts.prompt, ...(opts.floor ? { floor: opts.floor } : {}) },
      levels,
      comparisons: compareLevels(levels),
      layout: { instances: ready.length, slotsPerInstance: model.slotsPerInstance },
    };
  } finally {
    await dispatcher.close();
  }
}

function describeLevel(label: string, l: LevelResult): string {
  const ok = `${l.requests - l.failed}/${l.requests} ok`;
  const ttft = Number.isFinite(l.ttftMs.p50) ? `TTFT p50 ${l.ttftMs.p50.toFixed(1)} ms` : 'no TTFT';
  const failed = l.failed ? ` — ${l.errors[0]}` : '';
  return `${label}: ${ok}, ${Math.round(l.tokensPerSecond)} tok/s, ${ttft}, slots ${Math.round(l.utilization.slotPct)}% busy${failed}`;
}

/** Polls /api/status until no slot of the model reads busy and nothing waits (gives up after timeoutMs). */
async function waitIdle(sampler: StatusSampler, name: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    const model = (await sampler.snapshot()).models.find((m) => m.name === name);
    if (!model || (model.queue.waiting === 0 && model.instances.every((i) => i.slots.every((s) => !s.busy)))) return;
    await sleep(50, undefined, { signal });
  }
}

/** Polls /api/status until the model has a ready instance; names the model's state when it gives up. */
async function waitReady(sampler: StatusSampler, name: string, timeoutMs: number, signal?: AbortSignal): Promise<ModelStatus> {
  const deadline = Date.now() + timeoutMs;
  let snap: Snapshot | undefined;
  for (;;) {
    signal?.throwIfAborted();
    snap = await sampler.snapshot();
    const model = snap.models.find((m) => m.name === name);
    if (!model) {
      const known = snap.models.map((m) => m.name).join(', ') || 'none';
      throw new SlotwiseError('SW_ERR_MODEL_NOT_FOUND', `bench: the daemon has no model "${name}" — configured: ${known}`);
    }
    const failed = model.instances.find((i) => i.state === 'failed');
    if (failed) throw new SlotwiseError('SW_ERR_INSTANCE_FAILED', `bench: [${failed.id}] failed: ${failed.lastError ?? 'unknown reason'}`);
    // Every wanted instance ready, so the sweep does not start on a half-loaded model.
    const ready = model.instances.filter((i) => i.state === 'ready');
    if (ready.length > 0 && ready.length >= model.replicas) return model;
    if (Date.now() > deadline) {
      const states = model.instances.map((i) => `${i.id} ${i.state}`).join(', ') || 'no instance (is it down? `slotwise up`)';
      throw new SlotwiseError('SW_ERR_HEALTH_TIMEOUT', `bench: model "${name}" not ready after ${Math.round(timeoutMs / 1000)} s: ${states}`);
    }
    await sleep(200, undefined, { signal });
  }
}
