// Runtime hardening against the real llama-server: a frozen process (SIGSTOP) is detected, its
// requests end or are retried and it restarts; a short pause is not a stall; the children take
// requests from their daemon only; the prompt cache is bounded.
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../shared/protocol';
import { FAST_SUPERVISOR, instanceAuth, instanceKey, startTestDaemon, waitUntil, type TestDaemon } from '../helpers/daemon';
import { tinyModelPath } from '../helpers/tiny';
import { readGgufHeader } from '../../gguf/gguf';
import { modelFacts } from '../../daemon/memory/model-facts';
import { kvBytesPerToken } from '../../daemon/memory/plan';
import { DEFAULT_SERVER_MEMORY_OPTIONS } from '../../daemon/memory/server-args';

const readyWith = (slots: number) => (s: Snapshot) => s.models[0]!.instances[0]?.state === 'ready' && s.models[0]!.instances[0]!.slots.length === slots;

/** A stream through the daemon, read to its end; `events` counts `data:` events as they arrive. */
function stream(d: TestDaemon, maxTokens: number): { events: () => number; done: Promise<{ status: number; text: string }> } {
  let text = '';
  const done = (async () => {
    const res = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'x', max_tokens: maxTokens, ignore_eos: true, stream: true }) });
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      text += decoder.decode(value, { stream: true });
    }
    return { status: res.status, text };
  })();
  return { events: () => text.match(/^data: /gm)?.length ?? 0, done };
}

function lastEvent(text: string): { error?: { code: string; message: string } } {
  const events = text.split('\n\n').filter(Boolean);
  return JSON.parse(events.at(-1)!.replace(/^data: /, '')) as { error?: { code: string; message: string } };
}

describe('stall watchdog (real llama-server, SIGSTOP)', () => {
  it('a frozen instance goes stalled: started streams end with SW_ERR_INSTANCE_STALLED, an unstarted request is retried, the instance restarts', async () => {
    const d = await startTestDaemon({
      models: { tiny: { slots: 4, ctxPerSlot: 8192, size: 'long' } },
      config: { supervisor: { ...FAST_SUPERVISOR, backoffInitialMs: 300, stallTimeoutMs: 1500 } },
    });
    const s = await d.waitFor(readyWith(4), 'ready');
    const pid = s.models[0]!.instances[0]!.pid!;

    // A non-streaming request sends the client nothing until llama-server answers at the end: when
    // its instance stalls it has not started, so it is retried on the restarted process and succeeds.
    const plain = d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'y', max_tokens: 400, ignore_eos: true }) });
    void plain.catch(() => undefined); // awaited below; a failed assertion before that must not leave it unhandled
    const a = stream(d, 5000);
    const b = stream(d, 5000);
    // A WebSocket prompt job that has sent deltas ends like a started stream.
    const ws = await d.client();
    let deltas = 0;
    const jobErrors: { code: string; message: string }[] = [];
    ws.on('job.delta', () => deltas++);
    ws.on('job.error', (e) => jobErrors.push(e));
    await ws.call('prompt.submit', { model: 'tiny', prompt: 'w', maxTokens: 5000 });
    await waitUntil(() => a.events() >= 5 && b.events() >= 5 && deltas >= 5, 'both streams and the job under way', 20_000);
    const inFlight = (await d.status()).models[0]!.instances[0]!.inFlight;
    expect(inFlight).toBe(4);
    process.kill(pid, 'SIGSTOP');
    const stoppedAt = Date.now();

    const [ra, rb] = await Promise.all([a.done, b.done]);
    const detectedMs = Date.now() - stoppedAt;
    for (const r of [ra, rb]) {
      expect(r.status).toBe(200); // started before the stall
      expect(r.text).not.toContain('[DONE]');
      const err = lastEvent(r.text).error;
      expect(err?.code).toBe('SW_ERR_INSTANCE_STALLED');
      // Either sign may trip first (both watch the same 1.5 s); the reason names the stranded requests.
      expect(err?.message).toMatch(/^\[tiny#1\] llama-server stalled \(4 request\(s\) in flight made no progress for \d+ ms(, \/health did not answer for \d+ ms)?\) — it was killed and restarts/);
    }
    // Not before the timeout (less one /health probe interval: the last answer came up to 375 ms before the stop).
    expect(detectedMs).toBeGreaterThanOrEqual(1100);
    expect(detectedMs).toBeLessThan(10_000);

    await waitUntil(() => jobErrors.length > 0, 'the job ended', 5000);
    expect(jobErrors).toHaveLength(1);
    expect(jobErrors[0]).toMatchObject({ code: 'SW_ERR_INSTANCE_STALLED', message: expect.stringMatching(/^\[tiny#1\] llama-server stalled \(4 request/) });

    const res = await plain;
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    expect(body.usage.completion_tokens).toBe(400);

    const after = await d.waitFor((x) => readyWith(4)(x) && x.models[0]!.instances[0]!.restarts === 1, 'restarted');
    const inst = after.models[0]!.instances[0]!;
    expect(inst.pid).not.toBe(pid);
    expect(inst.lastError).toMatch(/killed by SIGKILL: stalled: 4 request\(s\) in flight made no progress for \d+ ms/);
    expect(d.output()).toMatch(/ready → stalled/);
    expect(d.output()).toMatch(/stalled → crashed/);
    // Every request has exactly one outcome, nothing is left in flight, no slot is held.
    const end = await d.waitFor((x) => x.models[0]!.requests === 4 && (x.models[0]!.instances[0]!.inFlight ?? 0) === 0, 'books settled');
    expect(end.models[0]!.outcomes).toEqual({ completed: 1, cancelled: 0, rejected: 0, failed: 3 });
    expect(end.models[0]!.queue.waiting).toBe(0);
    await waitUntil(async () => (await d.status()).models[0]!.instances[0]!.slots.every((x) => !x.busy), 'slots idle', 5000);
    const metrics = await (await d.fetch('/metrics')).text();
    expect(metrics).toMatch(/slotwise_requests_total\{model="tiny",outcome="failed"\} 3\b/);
    expect(metrics).toMatch(/slotwise_requests_total\{model="tiny",outcome="completed"\} 1\b/);
    // And it serves again.
    const again = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'z', max_tokens: 4 }) });
    expect(again.status).toBe(200);
  });

  it('a pause shorter than stallTimeoutMs is not a stall; an idle instance whose /health goes silent is', async () => {
    const d = await startTestDaemon({
      models: { tiny: { slots: 2, ctxPerSlot: 4096, size: 'slow' } },
      config: { supervisor: { ...FAST_SUPERVISOR, backoffInitialMs: 300, stallTimeoutMs: 2500 } },
    });
    const s = await d.waitFor(readyWith(2), 'ready');
    const pid = s.models[0]!.instances[0]!.pid!;
    const a = stream(d, 300);
    await waitUntil(() => a.events() >= 5, 'stream under way', 20_000);
    process.kill(pid, 'SIGSTOP');
    await sleep(800);
    process.kill(pid, 'SIGCONT');
    const r = await a.done;
    expect(r.text).toContain('data: [DONE]');
    const end = await d.waitFor((x) => x.models[0]!.requests === 1, 'outcome counted');
    expect(end.models[0]!.outcomes).toMatchObject({ completed: 1, failed: 0 });
    const inst = end.models[0]!.instances[0]!;
    expect(inst).toMatchObject({ state: 'ready', pid, restarts: 0 });
    expect(d.output()).not.toContain('stalled');

    // Nothing in flight: only the /health probe can tell, and it does.
    process.kill(pid, 'SIGSTOP');
    const back = await d.waitFor((x) => readyWith(2)(x) && x.models[0]!.instances[0]!.restarts === 1, 'restarted after an idle stall', 30_000);
    expect(back.models[0]!.instances[0]!.pid).not.toBe(pid);
    expect(back.models[0]!.instances[0]!.lastError).toMatch(/stalled: \/health did not answer for \d+ ms/);
    expect(back.models[0]!.requests).toBe(1);
  });
});

describe('llama-server children answer their daemon only (real llama-server)', () => {
  it('a direct request without the key gets 401; the key is in the environment, never the command line', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 2, ctxPerSlot: 512 } } });
    const s = await d.waitFor(readyWith(2), 'ready');
    const { pid, port } = s.models[0]!.instances[0]!;
    const base = `http://127.0.0.1:${port!}`;
    const body = JSON.stringify({ prompt: 'hi', max_tokens: 2 });

    for (const path of ['/v1/completions', '/completion']) {
      const res = await fetch(`${base}${path}`, { method: 'POST', body, headers: { origin: 'http://evil.example' } });
      expect(res.status, path).toBe(401);
    }
    expect((await fetch(`${base}/slots`)).status).toBe(401);
    expect((await fetch(`${base}/metrics`)).status).toBe(401);
    expect((await fetch(`${base}/v1/completions`, { method: 'POST', body, headers: { authorization: `Bearer ${d.token}` } })).status).toBe(401); // the daemon's token is not the key

    const key = instanceKey(pid!);
    expect(key.length).toBeGreaterThanOrEqual(32);
    expect(readFileSync(`/proc/${pid!}/cmdline`, 'utf8')).not.toContain(key);
    // GPUs numbered by PCI bus, as nvidia-smi numbers them: llama-server's CUDA0 is status's GPU 0.
    expect(childEnv(pid!, 'CUDA_DEVICE_ORDER')).toBe('PCI_BUS_ID');
    expect((await fetch(`${base}/v1/completions`, { method: 'POST', body, headers: instanceAuth(pid!) })).status).toBe(200);

    // The daemon itself still works: requests, and the scrapes behind busy slots in status.
    const res = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'hi', max_tokens: 4 }) });
    expect(res.status).toBe(200);
    // A 401 as a status, not the digits of a timestamp's milliseconds or a port (".401Z" failed CI once).
    expect(d.output()).not.toMatch(/scrape failed|\b(?:answered|HTTP|status) 401\b|\b401 Unauthorized/i);
  });

  it('the prompt cache is bounded by promptCacheMiB (--cache-ram on the command line)', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 512, promptCacheMiB: 64 } } });
    const s = await d.waitFor(readyWith(1), 'ready');
    const argv = readFileSync(`/proc/${s.models[0]!.instances[0]!.pid!}/cmdline`, 'utf8').split('\0');
    expect(argv[argv.indexOf('--cache-ram') + 1]).toBe('64');
  });

  it('"auto" (the default) sizes the prompt cache from the model: 4 contexts per slot of its KV bytes per token', async () => {
    const facts = modelFacts(await readGgufHeader(await tinyModelPath('slow')));
    const perToken = kvBytesPerToken(facts, DEFAULT_SERVER_MEMORY_OPTIONS);
    const want = Math.ceil((perToken * 4 * 4 * 4096) / 2 ** 20);
    expect(want).toBeGreaterThan(32); // more than the old fixed 32 MiB
    const d = await startTestDaemon({ models: { tiny: { size: 'slow', slots: 4, ctxPerSlot: 4096 } } });
    const s = await d.waitFor(readyWith(4), 'ready');
    const argv = readFileSync(`/proc/${s.models[0]!.instances[0]!.pid!}/cmdline`, 'utf8').split('\0');
    expect(argv[argv.indexOf('--cache-ram') + 1]).toBe(String(want));
  });
});

describe('llama-server environment', () => {
  it("keeps a CUDA_DEVICE_ORDER the user set for the daemon", async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 512 } }, env: { CUDA_DEVICE_ORDER: 'FASTEST_FIRST' } });
    const s = await d.waitFor((snap) => snap.models[0]?.instances[0]?.state === 'ready', 'ready');
    expect(childEnv(s.models[0]!.instances[0]!.pid!, 'CUDA_DEVICE_ORDER')).toBe('FASTEST_FIRST');
  });
});

/** One variable of a running process's environment. */
function childEnv(pid: number, name: string): string | undefined {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((e) => e.startsWith(`${name}=`))?.slice(name.length + 1);
}
