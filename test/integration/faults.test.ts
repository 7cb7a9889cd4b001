// Failure cases a real llama-server cannot produce on demand, injected with the stand-in upstream
// (test/fixtures/fake-llama-server.mjs, supervised by the daemon exactly like llama-server):
// dying at a chosen moment of a request, ignoring SIGTERM, a /health that never answers, and a
// stream that stalls without closing. Everything else about llama-server is tested against the
// real binary; each test below says why it needs the stand-in.
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { InstanceStatus, Snapshot } from '../../shared/protocol';
import { FAST_SUPERVISOR, isAlive, llamaServersWith, startTestDaemon, tempDir, waitUntil, type ModelSpec, type TestDaemon } from '../helpers/daemon';

const STAND_IN = resolve(__dirname, '../fixtures/fake-llama-server.mjs');

/** A daemon whose model "fake" runs the stand-in with the given spec (args carry the fault flags). */
function fakeDaemon(spec: ModelSpec, supervisor: Record<string, number> = {}, config: Record<string, unknown> = {}): Promise<TestDaemon> {
  return startTestDaemon({
    models: { fake: { slots: 1, ctxPerSlot: 128, ...spec } },
    config: { llamaServer: STAND_IN, supervisor: { ...FAST_SUPERVISOR, ...supervisor }, ...config },
  });
}

/** A dir the stand-ins of one test share to count their deaths (replicas and restarts alike). */
function sharedDir(): string {
  const dir = tempDir('faults');
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const instances = (s: Snapshot): InstanceStatus[] => s.models[0]!.instances;
const allReady = (n: number) => (s: Snapshot): boolean => instances(s).length === n && instances(s).every((i) => i.state === 'ready' && i.slots.length > 0);

function complete(d: TestDaemon, stream: boolean, init: RequestInit = {}): Promise<Response> {
  return d.fetch('/v1/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'fake', prompt: 'hello there', max_tokens: 5, stream }),
    ...init,
  });
}

/** Reads a whole completion and checks it is the full, well-formed answer of 5 tokens. */
async function expectFullAnswer(res: Response, stream: boolean): Promise<void> {
  expect(res.status).toBe(200);
  if (stream) {
    const events = (await res.text()).split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.replace(/^data: /, '')) as { choices: { text: string }[]; usage?: { completion_tokens: number } });
    expect(chunks.filter((c) => c.choices[0]!.text !== '')).toHaveLength(5);
    expect(chunks.at(-1)!.usage?.completion_tokens).toBe(5);
  } else {
    expect(await res.json()).toMatchObject({ object: 'text_completion', choices: [{ finish_reason: 'length' }], usage: { completion_tokens: 5 } });
  }
}

const dieArgs = (n: number, dir: string): string[] => ['--fake-die-before-first-byte', String(n), '--fake-shared-dir', dir, '--fake-token-ms', '2'];

describe('instance dies before the first byte (stand-in: a real llama-server cannot be made to exit between reading a request and answering it)', () => {
  for (const stream of [true, false]) {
    const kind = stream ? 'stream' : 'non-stream';

    it(`${kind}: retried once on the other ready replica, the client gets a normal 200`, async () => {
      const dir = sharedDir();
      const d = await fakeDaemon({ replicas: 2, args: dieArgs(1, dir) });
      await d.waitFor(allReady(2), 'both replicas ready');

      const res = await complete(d, stream);
      const servedBy = res.headers.get('x-slotwise-instance');
      await expectFullAnswer(res, stream);
      expect(existsSync(join(dir, 'die-1'))).toBe(true); // the fault did fire: one instance died with the request

      // The instance that died is restarted by the supervisor; the one that answered never was.
      const s = await d.waitFor((x) => allReady(2)(x) && instances(x).some((i) => i.restarts === 1), 'the dead replica restarted', 30_000);
      const died = instances(s).find((i) => i.restarts === 1)!;
      const survivor = instances(s).find((i) => i.restarts === 0)!;
      expect(survivor).toBeDefined();
      expect(servedBy).toBe(survivor.id);
      expect(died.id).not.toBe(servedBy);
      // The daemon may see the socket error first (then it logs "a request lost its connection" and holds
      // the instance back) or the exit first (then the instance is already out of routing): either way the
      // retry went to the survivor, which servedBy shows.
      expect(d.output()).toContain(`[${died.id}] ready → crashed`);
      // Exactly one outcome, and it is a success.
      expect(s.models[0]).toMatchObject({ requests: 1, outcomes: { completed: 1, failed: 0, cancelled: 0, rejected: 0 } });
    });

    it(`${kind}: with one replica, retried on the restarted instance and succeeds`, async () => {
      const dir = sharedDir();
      const d = await fakeDaemon({ replicas: 1, args: dieArgs(1, dir) });
      const before = await d.waitFor(allReady(1), 'ready');
      const firstPid = instances(before)[0]!.pid!;

      const res = await complete(d, stream);
      await expectFullAnswer(res, stream);
      expect(res.headers.get('x-slotwise-instance')).toBe('fake#1');
      expect(existsSync(join(dir, 'die-1'))).toBe(true);

      // The answer came from a new process: the first one died with the request and was restarted.
      const s = await d.status();
      expect(instances(s)[0]).toMatchObject({ state: 'ready', restarts: 1 });
      expect(instances(s)[0]!.pid).not.toBe(firstPid);
      expect(isAlive(firstPid)).toBe(false);
      // The retry was held back until the exit was seen (socket error first: "a request lost its connection";
      // exit first: the instance left `ready`), instead of resending to the dead process: the answer's pid proves it.
      expect(d.output()).toContain('[fake#1] ready → crashed');
      // When the socket error came first, the hold ended because the exit was seen, not because /health answered.
      if (d.output().includes('[fake#1] a request lost its connection')) {
        expect(d.output()).toMatch(/\[fake#1\] lost connection settled: state (crashed|backoff)/);
      }
      expect(s.models[0]).toMatchObject({ requests: 1, outcomes: { completed: 1, failed: 0, cancelled: 0, rejected: 0 } });
    });
  }

  it('a WebSocket prompt job is retried the same way: the job ends with the full text, no error event', async () => {
    const dir = sharedDir();
    const d = await fakeDaemon({ replicas: 2, args: dieArgs(1, dir) });
    await d.waitFor(allReady(2), 'both replicas ready');
    const ws = await d.client();
    const deltas: string[] = [];
    const errors: unknown[] = [];
    let end: { finishReason: string; usage: { completionTokens: number } } | undefined;
    ws.on('job.delta', (e) => deltas.push(e.text));
    ws.on('job.error', (e) => errors.push(e));
    ws.on('job.end', (e) => (end = e as typeof end));
    const { jobId } = await ws.call('prompt.submit', { model: 'fake', prompt: 'hello there', maxTokens: 5 });
    await waitUntil(() => end !== undefined || errors.length > 0, `job ${jobId} ended`, 30_000);
    expect(errors).toEqual([]);
    expect(existsSync(join(dir, 'die-1'))).toBe(true); // the fault fired
    expect(end).toMatchObject({ finishReason: 'length', usage: { completionTokens: 5 } });
    expect(deltas.join('').length).toBeGreaterThan(0);
    const s = await d.waitFor((x) => x.models[0]!.outcomes!.completed === 1, 'outcome counted');
    expect(s.models[0]).toMatchObject({ requests: 1, outcomes: { completed: 1, failed: 0, cancelled: 0, rejected: 0 } });
  });

  it('the retry goes back in at the head of the queue, before a request that arrived later', async () => {
    const dir = sharedDir();
    // One slot; the request's process dies 3 s after reading it, long enough to queue a second one behind it.
    const d = await fakeDaemon({ replicas: 1, args: [...dieArgs(1, dir), '--fake-die-delay-ms', '3000'] });
    await d.waitFor(allReady(1), 'ready');

    const first = complete(d, false);
    await waitUntil(() => existsSync(join(dir, 'die-1')), 'the first request reached the stand-in (it will die)', 10_000);
    const second = complete(d, false);
    // (Or already served, should this machine be so slow that the 3 s passed: then the order holds trivially.)
    await d.waitFor((x) => x.models[0]!.queue.waiting >= 1 || (x.models[0]!.outcomes?.completed ?? 0) > 0, 'the second request queued behind it', 10_000);

    const [a, b] = await Promise.all([first, second]);
    expect([a.status, b.status]).toEqual([200, 200]);
    // The restarted process numbers its tasks from 0: the retried request was its first.
    expect(((await a.json()) as { id: string }).id).toBe('chatcmpl-fake0');
    expect(((await b.json()) as { id: string }).id).toBe('chatcmpl-fake1');
    const s = await d.status();
    expect(instances(s)[0]!.restarts).toBe(1);
    expect(s.models[0]).toMatchObject({ requests: 2, outcomes: { completed: 2, failed: 0, cancelled: 0, rejected: 0 } });
  });

  for (const stream of [true, false]) {
    it(`${stream ? 'stream' : 'non-stream'}: when the retry dies too, the client gets one 502 in OpenAI error shape and one failed outcome`, async () => {
      const dir = sharedDir();
      const d = await fakeDaemon({ replicas: 2, args: dieArgs(2, dir) });
      await d.waitFor(allReady(2), 'both replicas ready');

      const res = await complete(d, stream);
      expect(res.status).toBe(502);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      const body = (await res.json()) as { error: { code: string; type: string; message: string } };
      expect(body).toEqual({ error: { code: 'SW_ERR_INSTANCE_EXITED', type: 'server_error', message: expect.stringMatching(/^\[fake#[12]\] llama-server went away before the response started: /) } });
      // Two attempts — the first and the one retry — each killed one process; no third attempt.
      expect(existsSync(join(dir, 'die-2'))).toBe(true);
      const s = await d.waitFor((x) => allReady(2)(x) && instances(x).every((i) => i.restarts === 1), 'both replicas restarted once', 30_000);
      expect(s.models[0]).toMatchObject({ requests: 1, outcomes: { completed: 0, failed: 1, cancelled: 0, rejected: 0 } });

      // The daemon is fine afterwards: the next request is served (the stand-ins' death budget is spent).
      await expectFullAnswer(await complete(d, stream), stream);
      const after = await d.status();
      expect(after.models[0]).toMatchObject({ requests: 2, outcomes: { completed: 1, failed: 1, cancelled: 0, rejected: 0 } });
    });
  }
});

describe('llama-server that ignores SIGTERM (stand-in: a real llama-server always honours SIGTERM)', () => {
  const GRACE_MS = 1000;

  it('models.stop SIGKILLs it after supervisor.stopGraceMs; it ends stopped and its pid is gone', async () => {
    const d = await fakeDaemon({ args: ['--fake-ignore-sigterm'] }, { stopGraceMs: GRACE_MS });
    const s = await d.waitFor(allReady(1), 'ready');
    const pid = instances(s)[0]!.pid!;
    const client = await d.client();

    const t0 = Date.now();
    const stopped = await client.call('models.stop', { model: 'fake' });
    const took = Date.now() - t0;
    // SIGTERM alone would have ended the stop in milliseconds; the stop waited for the grace
    // (less a few ms: the daemon's timer and this clock round differently).
    expect(took).toBeGreaterThanOrEqual(GRACE_MS - 50);
    expect(stopped.instances.map((i) => i.state)).toEqual(['stopped']);
    expect(isAlive(pid)).toBe(false);
    await waitUntil(() => d.childPids().length === 0, 'the pid record removed', 10_000);
    expect(d.output()).toContain(`did not exit within ${GRACE_MS} ms of SIGTERM; sending SIGKILL`);
    const { lines } = await client.call('logs.tail', { model: 'fake', lines: 20 });
    expect(lines).toContain('fake: SIGTERM ignored (--fake-ignore-sigterm)');
    expect(lines).toContain(`--- slotwise: process ${pid} killed by SIGKILL`);
    expect((await d.status()).models[0]!.instances[0]).toMatchObject({ state: 'stopped' });
  });

  it('daemon shutdown (SIGTERM to the daemon) SIGKILLs it after the grace and exits 0 with no child left', async () => {
    const d = await fakeDaemon({ replicas: 2, args: ['--fake-ignore-sigterm'] }, { stopGraceMs: GRACE_MS });
    const s = await d.waitFor(allReady(2), 'both replicas ready');
    const pids = instances(s).map((i) => i.pid!);

    const t0 = Date.now();
    const exited = new Promise<number | null>((done) => d.proc.once('exit', (code) => done(code)));
    d.proc.kill('SIGTERM');
    const code = await exited;
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(GRACE_MS - 50);
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(llamaServersWith(d.dir)).toEqual([]);
    expect(d.output().match(/did not exit within 1000 ms of SIGTERM; sending SIGKILL/g)).toHaveLength(2);
  });
});

describe('/health that never turns ok (stand-in: a real llama-server cannot be made to hang its /health or stay loading forever)', () => {
  const cases: [string, string[]][] = [
    ['never answers', ['--fake-hang-health']],
    ['answers 503 "Loading model" forever', ['--fake-load-ms', '1000000000']],
  ];
  for (const [what, args] of cases) {
    it(`${what}: killed at supervisor.healthTimeoutMs, restarted, then failed with the reason; the daemon stays up`, async () => {
      const d = await fakeDaemon({ args }, { healthTimeoutMs: 1000, maxCrashes: 2, backoffInitialMs: 200, backoffMaxMs: 200 });
      const client = await d.client();
      const seen = new Set<string>();
      client.on('status', ({ snapshot }) => {
        for (const i of snapshot.models[0]?.instances ?? []) seen.add(i.state);
      });
      await client.call('status.subscribe');

      const s = await d.waitFor((x) => instances(x)[0]?.state === 'failed', 'the instance failed', 60_000);
      const inst = instances(s)[0]!;
      expect(inst.lastError).toMatch(/^crashed 2 times in 10 min; last: killed by SIGKILL: health check timed out after 1 s$/);
      expect(inst.restarts).toBe(1);
      expect(inst.pid).toBeUndefined();
      expect(seen.has('ready')).toBe(false);
      expect(d.output()).toContain('[fake#1] health check timed out after 1 s');
      await waitUntil(() => d.childPids().length === 0 && llamaServersWith(d.dir).length === 0, 'no stand-in process left', 10_000);

      // The daemon itself is unaffected and says why the model cannot serve.
      const health = await fetch(`${d.url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok' });
      const res = await complete(d, false);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: { code: 'SW_ERR_INSTANCE_FAILED', message: expect.stringContaining('health check timed out after 1 s') } });
    });
  }
});

describe('stream that stalls without closing (stand-in: a real llama-server cannot be made to stop sending mid-stream and keep the connection open)', () => {
  it("the client's abort cancels the upstream request: the slot frees and the next request is served", async () => {
    const d = await fakeDaemon({ args: ['--fake-stall-after', '3', '--fake-token-ms', '2'] }, {}, { queue: { timeoutMs: 20_000 } });
    const s = await d.waitFor(allReady(1), 'ready');
    const port = instances(s)[0]!.port!;
    const slotBusy = async (): Promise<boolean> => ((await (await fetch(`http://127.0.0.1:${port}/slots`)).json()) as { is_processing: boolean }[])[0]!.is_processing;

    const abort = new AbortController();
    const res = await complete(d, true, { body: JSON.stringify({ model: 'fake', prompt: 'x', max_tokens: 100, stream: true }), signal: abort.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    while ((text.match(/^data: /gm)?.length ?? 0) < 3) {
      const { value, done } = await reader.read();
      expect(done).toBe(false); // a stalled stream stays open
      text += decoder.decode(value, { stream: true });
    }
    expect(text).not.toContain('[DONE]');
    expect(await slotBusy()).toBe(true); // the stalled request holds the only slot
    await d.waitFor((x) => instances(x)[0]!.slots[0]!.busy, 'the daemon sees the slot busy', 10_000);

    abort.abort();
    await waitUntil(async () => !(await slotBusy()), 'the stand-in slot freed after the client left', 10_000);
    const after = await d.waitFor((x) => x.models[0]!.outcomes?.cancelled === 1, 'the cancelled outcome', 10_000);
    expect(after.models[0]!.outcomes).toMatchObject({ completed: 0, failed: 0, cancelled: 1, rejected: 0 });

    // The daemon released its lease too: with one slot, the next request would otherwise queue until timeout.
    // (2 tokens: the stand-in stalls every stream at its 3rd, and the daemon streams a non-streamed request upstream too.)
    const next = await complete(d, false, { body: JSON.stringify({ model: 'fake', prompt: 'hello there', max_tokens: 2 }) });
    expect(next.status).toBe(200);
    expect(await next.json()).toMatchObject({ usage: { completion_tokens: 2 } });
    expect((await d.status()).models[0]!.outcomes).toMatchObject({ completed: 1, cancelled: 1, failed: 0 });
  });
});

describe('load log that trails /health (stand-in: llama-server writes its log from a thread of its own, which cannot be made to trail on demand)', () => {
  it('turns ready only with the whole load log read: the KV and compute buffers are in its first ready status', async () => {
    const d = await fakeDaemon({ args: ['--fake-late-load-log-ms', '200'] });
    const s = await d.waitFor((snap) => instances(snap)[0]?.state === 'ready', 'the stand-in ready', 10_000);
    expect(instances(s)[0]!.offload?.buffers).toEqual({ 'model CPU_Mapped': 10, 'kv CPU': 32, 'compute CPU': 12 });
  });
});
