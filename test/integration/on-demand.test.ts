// Models on demand against the real llama-server: the first request loads the model (once, however
// many arrive together), idle models unload, and under memoryBudgetMiB the least recently used idle
// model is evicted to make room. Every model runs on the CPU (gpuLayers 0), so the budget applies to
// host RAM, and the plan sizes the test computes are the daemon's.
import { chmodSync, copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readGgufHeader } from '../../gguf/gguf';
import { modelFacts } from '../../daemon/memory/model-facts';
import { formatMemory, mostSlotsThatFit, planMemory } from '../../daemon/memory/plan';
import type { ModelLoadStatus, Snapshot } from '../../shared/protocol';
import { FAST_SUPERVISOR, startTestDaemon, tempDir, waitUntil, type TestDaemon } from '../helpers/daemon';
import { tinyModelPath, type TestModelSize } from '../helpers/tiny';

const MIB = 2 ** 20;

/** The load-time plan (status planBytes: what llama-server's buffers are compared with, no prompt cache). */
async function planBytes(size: TestModelSize, slots: number, ctxPerSlot: number): Promise<number> {
  const facts = modelFacts(await readGgufHeader(await tinyModelPath(size)));
  return planMemory(facts, { slots, ctxPerSlot, gpuLayers: 0 }, { host: Number.MAX_SAFE_INTEGER, gpus: [] }).total;
}

/** What the loader's fit counts: the plan and the host prompt cache at its limit (promptCacheMiB "auto", the default). */
async function heldBytes(size: TestModelSize, slots: number, ctxPerSlot: number): Promise<number> {
  const facts = modelFacts(await readGgufHeader(await tinyModelPath(size)));
  return planMemory(facts, { slots, ctxPerSlot, gpuLayers: 0, promptCacheMiB: 'auto', hostBytes: totalmem() }, { host: Number.MAX_SAFE_INTEGER, gpus: [] }).total;
}

const model = (s: Snapshot, name: string) => s.models.find((m) => m.name === name)!;

async function complete(d: TestDaemon, name: string, maxTokens = 4, signal?: AbortSignal): Promise<Response> {
  return d.fetch('/v1/completions', { method: 'POST', signal, body: JSON.stringify({ model: name, prompt: 'Once upon a time', max_tokens: maxTokens }) });
}

/** A streaming completion: resolves `firstToken` at the first SSE data line, `done` at the end. */
function stream(d: TestDaemon, name: string, maxTokens: number, signal?: AbortSignal): { firstToken: Promise<number>; done: Promise<string> } {
  let onFirst!: (t: number) => void;
  const firstToken = new Promise<number>((r) => (onFirst = r));
  const done = (async () => {
    const res = await d.fetch('/v1/completions', { method: 'POST', signal, body: JSON.stringify({ model: name, prompt: 'In a village', max_tokens: maxTokens, stream: true }) });
    let text = '';
    const dec = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      text += dec.decode(chunk);
      if (text.includes('data: {')) onFirst(Date.now());
    }
    return text;
  })();
  return { firstToken, done };
}

async function metric(d: TestDaemon, line: RegExp): Promise<number> {
  const text = await (await d.fetch('/metrics')).text();
  const m = text.split('\n').find((l) => line.test(l));
  return m ? Number(m.split(' ').pop()) : 0;
}

describe('models on demand', () => {
  it('loads an unloaded model on its first API request and its first WS job; reports cold vs warm first token and plan vs actual memory', async () => {
    const d = await startTestDaemon({
      models: {
        od: { load: 'on-demand', slots: 2, ctxPerSlot: 512, gpuLayers: 0 },
        job: { load: 'on-demand', slots: 1, ctxPerSlot: 512, gpuLayers: 0 },
      },
    });
    let s = await d.status();
    expect(model(s, 'od').load).toEqual({ state: 'unloaded', reason: 'never-loaded', since: expect.any(Number) });
    expect(d.childPids()).toEqual([]);

    const t0 = Date.now();
    const cold = stream(d, 'od', 8);
    await d.waitFor((x) => model(x, 'od').load?.state === 'loading', 'od loading', 10_000);
    const coldMs = (await cold.firstToken) - t0;
    expect(await cold.done).toContain('[DONE]');
    const t1 = Date.now();
    const warm = stream(d, 'od', 8);
    const warmMs = (await warm.firstToken) - t1;
    await warm.done;

    s = await d.waitFor((x) => model(x, 'od').memory?.actualBytes !== undefined, 'od memory actual');
    const od = model(s, 'od');
    expect(od.load).toEqual({ state: 'ready', since: expect.any(Number) });
    expect(od.lastUsedAt).toBeGreaterThanOrEqual(t1);
    const mem = od.memory!;
    expect(mem.planBytes).toBe(await planBytes('tiny', 2, 512));
    const planError = (mem.planBytes - mem.actualBytes!) / mem.actualBytes!;
    console.log(`[on-demand] cold first token ${coldMs} ms, warm ${warmMs} ms; plan ${formatMemory(mem.planBytes)} vs actual ${formatMemory(mem.actualBytes!)} (${(planError * 100).toFixed(1)} %)`);
    expect(Math.abs(planError)).toBeLessThan(0.1);
    expect(coldMs).toBeGreaterThan(warmMs);
    expect(await metric(d, /^slotwise_model_loads_total\{model="od"\}/)).toBe(1);
    expect(await metric(d, /^slotwise_model_load_seconds_count\{model="od"\}/)).toBe(1);
    expect(await metric(d, /^slotwise_model_memory_bytes\{model="od",kind="plan"\}/)).toBe(mem.planBytes);

    // A WS prompt job for the other unloaded model waits in its queue while the model loads.
    const ws = await d.client();
    const ended = new Map<string, string>();
    const queued: number[] = [];
    ws.on('job.end', (e: { jobId: string }) => ended.set(e.jobId, 'end'));
    ws.on('job.error', (e: { jobId: string; code: string }) => ended.set(e.jobId, e.code));
    ws.on('job.queued', (e: { position: number }) => queued.push(e.position));
    const { jobId } = (await ws.call('prompt.submit', { model: 'job', prompt: 'Hello', maxTokens: 4 })) as { jobId: string };
    await waitUntil(() => ended.has(jobId), 'job ended', 60_000);
    expect(ended.get(jobId)).toBe('end');
    expect(queued[0]).toBe(1);
    expect(model(await d.status(), 'job').load).toEqual({ state: 'ready', since: expect.any(Number) });
  });

  it('5 concurrent first requests load the model once (one llama-server, one load counted)', async () => {
    const d = await startTestDaemon({ models: { od: { load: 'on-demand', slots: 2, ctxPerSlot: 512, gpuLayers: 0 } } });
    const results = await Promise.all(Array.from({ length: 5 }, () => complete(d, 'od')));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(d.childPids()).toHaveLength(1);
    expect(await metric(d, /^slotwise_model_loads_total\{model="od"\}/)).toBe(1);
    expect(model(await d.status(), 'od').instances).toHaveLength(1);
  });

  it('unloads a model idle for idleUnloadMs, and loads it again on the next request; a WS status subscriber sees loading, ready and unloaded', async () => {
    const d = await startTestDaemon({ models: { od: { load: 'on-demand', idleUnloadMs: 1500, slots: 1, ctxPerSlot: 512, gpuLayers: 0 } } });
    // The subscription `slotwise status --watch` and the extension use: every pushed load status of od.
    const ws = await d.client();
    const pushed: ModelLoadStatus[] = [];
    ws.on('status', ({ snapshot }) => {
      const load = model(snapshot, 'od').load;
      if (load) pushed.push(load);
    });
    const first = (await ws.call('status.subscribe')) as Snapshot;
    pushed.unshift(model(first, 'od').load!);
    expect((await complete(d, 'od')).status).toBe(200);
    const pid = d.childPids()[0];
    expect(pid).toBeDefined();
    await d.waitFor((s) => model(s, 'od').load?.state === 'unloaded', 'idle unload', 15_000);
    await waitUntil(() => pushed.at(-1)?.state === 'unloaded', 'unloaded pushed', 5000);
    // Each state is pushed (no timing asserted here: the bench measures the delay), in order, once each.
    const states = pushed.map((l) => l.state).filter((st, i, all) => st !== all[i - 1]);
    expect(states).toEqual(['unloaded', 'loading', 'ready', 'unloaded']);
    const loading = pushed.filter((l) => l.state === 'loading');
    expect(loading[0]!.since).toBeLessThanOrEqual(pushed.find((l) => l.state === 'ready')!.since!);
    const progress = loading.flatMap((l) => (l.progress === undefined ? [] : [l.progress]));
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThanOrEqual(progress[i - 1]!);
    expect(loading.every((l) => l.phase !== undefined)).toBe(true);
    expect(pushed.at(-1)).toMatchObject({ state: 'unloaded', reason: 'idle' });
    expect(model(await d.status(), 'od').load).toEqual({ state: 'unloaded', reason: 'idle', since: expect.any(Number) });
    await waitUntil(() => d.childPids().length === 0, 'llama-server gone');
    expect(await metric(d, /^slotwise_model_unloads_total\{model="od",reason="idle"\}/)).toBe(1);
    expect((await complete(d, 'od')).status).toBe(200);
    expect(await metric(d, /^slotwise_model_loads_total\{model="od"\}/)).toBe(2);
  });

  it('`slotwise down` of a loaded on-demand model reads unloaded, reason stopped', async () => {
    const d = await startTestDaemon({ models: { od: { load: 'on-demand', slots: 1, ctxPerSlot: 512, gpuLayers: 0 } } });
    expect((await complete(d, 'od')).status).toBe(200);
    const ws = await d.client();
    await ws.call('models.stop', { model: 'od' });
    await d.waitFor((s) => model(s, 'od').load?.state === 'unloaded', 'stopped');
    expect(model(await d.status(), 'od').load).toEqual({ state: 'unloaded', reason: 'stopped', since: expect.any(Number) });
    expect(await metric(d, /^slotwise_model_unloads_total\{model="od",reason="stopped"\}/)).toBe(1);
  });

  it('under memoryBudgetMiB evicts the least recently used idle model to load another', async () => {
    const one = await heldBytes('tiny', 1, 512);
    const budgetMiB = Math.floor((2.5 * one) / MIB); // two fit, three do not (each with its prompt cache)
    const spec = { load: 'on-demand', slots: 1, ctxPerSlot: 512, gpuLayers: 0 };
    const d = await startTestDaemon({ models: { a: spec, b: spec, c: spec }, config: { memoryBudgetMiB: budgetMiB } });
    expect((await complete(d, 'a')).status).toBe(200);
    expect((await complete(d, 'b')).status).toBe(200);
    expect((await complete(d, 'a')).status).toBe(200); // a is now used more recently than b
    expect((await complete(d, 'c')).status).toBe(200);
    const s = await d.waitFor((x) => model(x, 'b').load?.state === 'unloaded', 'b evicted');
    expect(model(s, 'b').load).toEqual({ state: 'unloaded', reason: 'evicted', since: expect.any(Number) });
    expect(model(s, 'a').load?.state).toBe('ready');
    expect(model(s, 'c').load?.state).toBe('ready');
    expect(await metric(d, /^slotwise_model_unloads_total\{model="b",reason="evicted"\}/)).toBe(1);

    // `slotwise up b` goes through the same check: a (used before c) is now the least recently used.
    const ws = await d.client();
    await ws.call('models.start', { model: 'b' });
    const after = await d.waitFor((x) => model(x, 'b').load?.state === 'ready', 'b up again');
    expect(model(after, 'a').load).toEqual({ state: 'unloaded', reason: 'evicted', since: expect.any(Number) });
    expect(model(after, 'c').load?.state).toBe('ready');
  });

  it('never evicts a pinned model or one with a request in flight: the load waits until a model goes idle', async () => {
    const one = await heldBytes('long', 1, 4096);
    const budgetMiB = Math.floor((2.5 * one) / MIB);
    const spec = { size: 'long' as const, load: 'on-demand', slots: 1, ctxPerSlot: 4096, gpuLayers: 0 };
    const d = await startTestDaemon({ models: { a: { ...spec, pinned: true }, b: spec, c: spec }, config: { memoryBudgetMiB: budgetMiB } });
    expect((await complete(d, 'a')).status).toBe(200); // a: least recently used, but pinned
    const busy = new AbortController();
    const long = stream(d, 'b', 4000, busy.signal);
    await long.firstToken; // b has a request in flight
    const cReq = complete(d, 'c');
    await d.waitFor((x) => model(x, 'c').load?.state === 'loading' && model(x, 'c').queue.waiting === 1, 'c waiting for room', 10_000);
    await new Promise((r) => setTimeout(r, 1500));
    let s = await d.status();
    expect(model(s, 'a').load?.state).toBe('ready');
    expect(model(s, 'b').load?.state).toBe('ready');
    expect(model(s, 'c').instances).toHaveLength(0); // not started: no room yet
    busy.abort();
    await long.done.catch(() => undefined);
    expect((await cReq).status).toBe(200);
    s = await d.status();
    expect(model(s, 'b').load).toEqual({ state: 'unloaded', reason: 'evicted', since: expect.any(Number) });
    expect(model(s, 'a').load?.state).toBe('ready');
  });

  it('fails at once with SW_ERR_NOT_ENOUGH_MEMORY when the plan exceeds the budget, naming the prompt cache in it', async () => {
    const need = await heldBytes('tiny', 4, 2048); // with its 32 MiB prompt cache
    const budgetMiB = Math.floor((await planBytes('tiny', 4, 2048)) / MIB / 2); // short even without the cache
    const d = await startTestDaemon({ models: { big: { load: 'on-demand', slots: 4, ctxPerSlot: 2048, gpuLayers: 0 } }, config: { memoryBudgetMiB: budgetMiB } });
    const t0 = Date.now();
    const res = await complete(d, 'big');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('SW_ERR_NOT_ENOUGH_MEMORY');
    expect(body.error.message).toBe(`model "big" needs ${formatMemory(need)} of host RAM with its 32.0 MiB prompt cache, which has ${formatMemory(budgetMiB * MIB)} free: lower slots or ctxPerSlot, and promptCacheMiB`);
    expect(d.childPids()).toEqual([]);
  });

  it('counts the prompt cache in the budget: a model that fits only without it is refused with the fix; with promptCacheMiB 0 it loads', async () => {
    const plan = await planBytes('tiny', 1, 512);
    const need = await heldBytes('tiny', 1, 512);
    expect(need - plan).toBe(32 * MIB);
    const budgetMiB = Math.ceil(plan / MIB) + 4; // the buffers fit, the buffers and the 32 MiB cache do not
    const spec = { load: 'on-demand', slots: 1, ctxPerSlot: 512, gpuLayers: 0 };
    const d = await startTestDaemon({ models: { cached: spec, off: { ...spec, promptCacheMiB: 0 } }, config: { memoryBudgetMiB: budgetMiB } });
    const res = await complete(d, 'cached');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'SW_ERR_NOT_ENOUGH_MEMORY',
      message: `model "cached" needs ${formatMemory(need)} of host RAM with its 32.0 MiB prompt cache, which has ${formatMemory(budgetMiB * MIB)} free: lower promptCacheMiB (0 turns the cache off)`,
    });
    expect(d.childPids()).toEqual([]);
    expect((await complete(d, 'off')).status).toBe(200);
    const s = await d.waitFor((x) => model(x, 'off').memory?.actualBytes !== undefined, 'off loaded');
    expect(model(s, 'off').memory!.promptCacheBytes).toBeUndefined();
    expect(model(s, 'cached').memory).toMatchObject({ planBytes: plan, promptCacheBytes: 32 * MIB });
  });

  it('"always" models are memory-checked before launch: one that never fits and one that does not fit next to the others stay unloaded with the error; the rest start', async () => {
    const need = await heldBytes('tiny', 8, 4096); // with its 64 MiB prompt cache
    const one = await heldBytes('tiny', 1, 512);
    const budgetMiB = Math.floor((1.5 * one) / MIB); // one small model fits, two do not; big never does
    expect(need).toBeGreaterThan(budgetMiB * MIB);
    expect(await planBytes('tiny', 8, 4096)).toBeLessThanOrEqual(budgetMiB * MIB); // but for its cache
    const small = { slots: 1, ctxPerSlot: 512, gpuLayers: 0 };
    const d = await startTestDaemon({
      models: { a: small, big: { slots: 8, ctxPerSlot: 4096, gpuLayers: 0 }, b: small },
      config: { memoryBudgetMiB: budgetMiB },
    });
    const s = await d.waitFor((x) => model(x, 'a').load?.state === 'ready' && model(x, 'b').load?.state === 'unloaded', 'a ready, b not started', 30_000);
    const neverFits = `model "big" needs ${formatMemory(need)} of host RAM with its 64.0 MiB prompt cache, which has ${formatMemory(budgetMiB * MIB)} free: lower promptCacheMiB (0 turns the cache off)`;
    expect(model(s, 'big').load).toEqual({ state: 'unloaded', reason: 'no-memory', since: expect.any(Number), error: { code: 'SW_ERR_NOT_ENOUGH_MEMORY', message: neverFits } });
    expect(model(s, 'b').load).toMatchObject({ state: 'unloaded', reason: 'no-memory', error: { code: 'SW_ERR_NOT_ENOUGH_MEMORY' } });
    expect(model(s, 'b').load!.error!.message).toMatch(/^model "b" needs [\d.]+ MiB of host RAM with its 32\.0 MiB prompt cache, which has [\d.]+ MiB free/);
    expect(model(s, 'big').instances).toHaveLength(0);
    expect(d.childPids()).toHaveLength(1); // only a's llama-server was launched
    expect(readFileSync(join(d.stateDir, 'logs', 'daemon.log'), 'utf8')).toContain(`not started: ${neverFits}`);

    const res = await complete(d, 'big');
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'SW_ERR_NOT_ENOUGH_MEMORY', message: neverFits });
    expect((await complete(d, 'a')).status).toBe(200);
  });

  it('a request cancelled while its model loads stops the load when nobody else waits; the load goes on when another waits', async () => {
    const d = await startTestDaemon({ models: { od: { size: 'long', load: 'on-demand', slots: 1, ctxPerSlot: 512, gpuLayers: 0 } } });
    const ctrl = new AbortController();
    const req = complete(d, 'od', 4, ctrl.signal).catch((e: Error) => e);
    await d.waitFor((s) => model(s, 'od').load?.state === 'loading', 'loading', 10_000);
    ctrl.abort();
    await req;
    await d.waitFor((s) => model(s, 'od').load?.state === 'unloaded' && model(s, 'od').queue.waiting === 0, 'load stopped', 15_000);
    await waitUntil(() => d.childPids().length === 0, 'no llama-server left', 15_000);
    expect(model(await d.status(), 'od').load).toEqual({ state: 'unloaded', reason: 'never-loaded', since: expect.any(Number) });
    expect(await metric(d, /^slotwise_model_loads_total\{model="od"\}/)).toBe(0);

    const c2 = new AbortController();
    const cancelled = complete(d, 'od', 4, c2.signal).catch((e: Error) => e);
    const kept = complete(d, 'od', 4);
    await d.waitFor((s) => model(s, 'od').queue.waiting === 2, 'two waiting', 10_000);
    c2.abort();
    await cancelled;
    expect((await kept).status).toBe(200);
    expect(model(await d.status(), 'od').load?.state).toBe('ready');
  });

  it('keeps the plan-vs-actual calibration across a daemon restart: the second plan equals the first actual', async () => {
    const path = await tinyModelPath('slow'); // the same file path both times: it is part of the key
    const spec = { path, load: 'on-demand', slots: 2, ctxPerSlot: 1024, gpuLayers: 0 };
    const first = await startTestDaemon({ models: { m: spec } });
    expect((await complete(first, 'm')).status).toBe(200);
    const s1 = await first.waitFor((x) => model(x, 'm').memory?.actualBytes !== undefined, 'actual memory');
    const file = join(first.stateDir, 'calibration.json');
    await waitUntil(() => { try { return readFileSync(file, 'utf8').includes(path); } catch { return false; } }, 'calibration.json written');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const actual = model(s1, 'm').memory!.actualBytes!;
    const estimate = model(s1, 'm').memory!.planBytes;
    await first.stop();

    const second = await startTestDaemon({ models: { m: spec }, stateDir: first.stateDir });
    const s2 = await second.waitFor((x) => model(x, 'm').memory !== undefined, 'plan in status');
    console.log(`[on-demand] calibration: estimate ${estimate} B, actual ${actual} B, plan after restart ${model(s2, 'm').memory!.planBytes} B`);
    expect(model(s2, 'm').memory!.planBytes).toBe(actual);
    expect(model(s2, 'm').load).toEqual({ state: 'unloaded', reason: 'never-loaded', since: expect.any(Number) });
  });

  it('slots "auto" picks the most slots whose plan fits the budget at ctxPerSlot (up to maxSlots)', async () => {
    const facts = modelFacts(await readGgufHeader(await tinyModelPath('tiny')));
    const budgetMiB = Math.floor((await heldBytes('tiny', 3, 4096)) / MIB) + 1; // 3 slots (with their prompt cache) fit, 4 do not
    const expected = mostSlotsThatFit(facts, { ctxPerSlot: 4096, gpuLayers: 0, promptCacheMiB: 'auto', hostBytes: totalmem() }, { host: budgetMiB * MIB, gpus: [] }, 8);
    expect(expected).toBe(3);
    const d = await startTestDaemon({ models: { m: { load: 'on-demand', slots: 'auto', maxSlots: 8, ctxPerSlot: 4096, gpuLayers: 0 } }, config: { memoryBudgetMiB: budgetMiB } });
    expect((await complete(d, 'm')).status).toBe(200);
    const s = await d.waitFor((x) => model(x, 'm').instances[0]?.slots.length === 3, 'llama-server reports 3 slots');
    expect(model(s, 'm').slotsPerInstance).toBe(3);
    expect(model(s, 'm').memory!.planBytes).toBe(await planBytes('tiny', 3, 4096));
  });

  it('names the GPU in the never-fits error when the plan exceeds its memory (stand-in nvidia-smi)', async () => {
    // This host has no GPU, so a stand-in nvidia-smi (test/fixtures/gpu/fake-nvidia-smi.sh) reports one
    // with 192 MiB free; the model is never started, so llama-server never needs the GPU.
    const fix = resolve(__dirname, '../fixtures/gpu');
    const bin = tempDir('gpu');
    copyFileSync(join(fix, 'fake-nvidia-smi.sh'), join(bin, 'nvidia-smi'));
    chmodSync(join(bin, 'nvidia-smi'), 0o755);
    writeFileSync(join(bin, 'gpu.csv'), '0, NVIDIA GeForce RTX 4060, 3, 8000, 8192, 40, 20.00\n');
    const env = { PATH: `${bin}:${process.env.PATH}`, FAKE_LIST: join(fix, 'nvidia-smi-L.txt'), FAKE_GPU: join(bin, 'gpu.csv'), FAKE_APPS: join(fix, 'compute-apps.csv') };
    const facts = modelFacts(await readGgufHeader(await tinyModelPath('slow')));
    const free = { host: Number.MAX_SAFE_INTEGER, gpus: [{ index: 0, free: 192 * MIB }] };
    const gpu = planMemory(facts, { slots: 4, ctxPerSlot: 16384, gpuLayers: 'all' }, free).devices.find((x) => x.device === 'gpu0')!;
    expect(gpu.total).toBeGreaterThan(192 * MIB);
    const d = await startTestDaemon({ models: { big: { size: 'slow', load: 'on-demand', slots: 4, ctxPerSlot: 16384, gpuLayers: 'all' } }, env });
    const res = await complete(d, 'big');
    expect(res.status).toBe(503);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error).toEqual({
      code: 'SW_ERR_NOT_ENOUGH_MEMORY',
      type: 'server_error',
      message: `model "big" needs ${formatMemory(gpu.total)} on GPU 0, which has 192.0 MiB free: lower slots, ctxPerSlot or gpuLayers`,
    });
    expect(d.childPids()).toEqual([]);
  });
});

describe('models on demand: a load that cannot go on, and what may make room', () => {
  const tinySpec = { load: 'on-demand', slots: 1, ctxPerSlot: 256, gpuLayers: 0 };
  /** A budget that holds one tiny model (with its prompt cache) and not two. */
  const oneTiny = async (): Promise<number> => Math.floor((1.5 * (await heldBytes('tiny', 1, 256))) / MIB);
  const errorOf = async (res: Response): Promise<{ code: string; message: string }> => ((await res.json()) as { error: { code: string; message: string } }).error;

  it('a llama-server that exits at launch fails the requests waiting for it with its reason, not the queue timeout; the next request loads afresh', async () => {
    const d = await startTestDaemon({
      models: { bad: { ...tinySpec, args: ['--no-such-flag'] } },
      config: { supervisor: { ...FAST_SUPERVISOR, backoffInitialMs: 100, backoffMaxMs: 200 }, queue: { timeoutMs: 120_000 } },
    });
    const answers = await Promise.all([1, 2, 3].map(() => complete(d, 'bad')));
    for (const res of answers) {
      expect(res.status).toBe(503);
      expect(await errorOf(res)).toMatchObject({ code: 'SW_ERR_INSTANCE_FAILED', message: expect.stringContaining('invalid argument: --no-such-flag') });
    }
    const s = await d.waitFor((x) => model(x, 'bad').load?.state === 'unloaded' && model(x, 'bad').queue.waiting === 0, 'load stopped');
    expect(model(s, 'bad').load).toMatchObject({ reason: 'failed', error: { code: 'SW_ERR_INSTANCE_FAILED', message: expect.stringContaining('--no-such-flag') } });
    const log = readFileSync(join(d.stateDir, 'logs', 'daemon.log'), 'utf8');
    expect(log).toContain('load failed (');
    expect(log).not.toContain('every request waiting for it was cancelled');

    // A fresh load, with a fresh crash budget (FAST_SUPERVISOR.maxCrashes each), fails the same way.
    const again = await complete(d, 'bad');
    expect(again.status).toBe(503);
    expect((await errorOf(again)).code).toBe('SW_ERR_INSTANCE_FAILED');
    const exits = readFileSync(join(d.stateDir, 'logs', 'bad_1.log'), 'utf8').match(/exited with code 1/g) ?? [];
    expect(exits).toHaveLength(2 * FAST_SUPERVISOR.maxCrashes);
  });

  it('`slotwise down` of a model with requests queued fails them at once with SW_ERR_NO_INSTANCE, instead of leaving them to the queue timeout', async () => {
    const d = await startTestDaemon({ models: { a: { ...tinySpec, size: 'long', ctxPerSlot: 4096 } }, config: { queue: { timeoutMs: 120_000 } } });
    const busy = stream(d, 'a', 4000);
    await busy.firstToken; // the one slot is taken
    const queued = [complete(d, 'a'), complete(d, 'a')];
    await d.waitFor((s) => model(s, 'a').queue.waiting === 2, 'two queued');
    await (await d.client()).call('models.stop', { model: 'a' });
    for (const res of await Promise.all(queued)) {
      expect(res.status).toBe(503);
      expect(await errorOf(res)).toEqual({ code: 'SW_ERR_NO_INSTANCE', type: 'server_error', message: 'model "a" was stopped while the request waited — start it with `slotwise up a` or send the request again' });
    }
    await busy.done.catch(() => undefined);
    expect(model(await d.status(), 'a').queue.waiting).toBe(0);
  });

  it('a load longer than queue.timeoutMs still ends: the timeout is for a slot to free up, not for the load', async () => {
    const d = await startTestDaemon({ models: { a: { ...tinySpec, size: 'long', ctxPerSlot: 4096 } }, config: { queue: { timeoutMs: 30 } } });
    expect((await complete(d, 'a')).status).toBe(200); // each timeout used to stop the load: it never finished
    const stop = new AbortController();
    const busy = stream(d, 'a', 4000, stop.signal);
    await busy.firstToken;
    const waits = await complete(d, 'a'); // loaded now: waiting for the busy slot times out as before
    expect(waits.status).toBe(504);
    expect((await errorOf(waits)).code).toBe('SW_ERR_QUEUE_TIMEOUT');
    stop.abort();
    await busy.done.catch(() => undefined);
  });

  it('an on-demand load never unloads an "always" model: with nothing it may unload it fails at once, and status keeps why', async () => {
    const d = await startTestDaemon({ models: { al: { ...tinySpec, load: 'always' }, od: tinySpec }, config: { memoryBudgetMiB: await oneTiny(), queue: { timeoutMs: 120_000 } } });
    await d.waitFor((s) => model(s, 'al').load?.state === 'ready', 'al ready');
    const res = await complete(d, 'od');
    expect(res.status).toBe(503);
    expect(await errorOf(res)).toMatchObject({ code: 'SW_ERR_NOT_ENOUGH_MEMORY', message: expect.stringMatching(/^model "od" needs .* free: .*; held by "al" \("always"\): `slotwise down al` frees its share$/) });
    const s = await d.status();
    expect(model(s, 'al').load?.state).toBe('ready');
    expect(model(s, 'od').load).toMatchObject({ state: 'unloaded', reason: 'no-memory', error: { code: 'SW_ERR_NOT_ENOUGH_MEMORY' } });
    expect((await complete(d, 'al')).status).toBe(200);
  });

  it('`slotwise restart` of a model that is down gets the memory check of `up`, and all its replicas are planned, not one', async () => {
    const d = await startTestDaemon({ models: { a: tinySpec, b: tinySpec, two: { ...tinySpec, replicas: 2 } }, config: { memoryBudgetMiB: await oneTiny() } });
    expect((await complete(d, 'a')).status).toBe(200);
    await (await d.client()).call('models.restart', { model: 'b' });
    const s = await d.waitFor((x) => model(x, 'b').load?.state === 'ready', 'b ready');
    expect(model(s, 'a').load).toMatchObject({ state: 'unloaded', reason: 'evicted' }); // made room, as `up b` would
    const two = await complete(d, 'two');
    expect(two.status).toBe(503);
    expect(await errorOf(two)).toMatchObject({ code: 'SW_ERR_NOT_ENOUGH_MEMORY', message: expect.stringMatching(/^model "two" \(2 replicas\) needs /) });
    expect(model(await d.status(), 'two').instances).toHaveLength(0);
  });

  it('a model started by `slotwise up` is not unloaded for another while it loads; loads and unloads stay paired across a restart and a down', async () => {
    const d = await startTestDaemon({ models: { a: { ...tinySpec, size: 'long', ctxPerSlot: 4096 }, b: tinySpec }, config: { memoryBudgetMiB: Math.floor((1.2 * (await heldBytes('long', 1, 4096))) / MIB) } });
    const ws = await d.client();
    await ws.call('models.start', { model: 'a' });
    expect((await complete(d, 'b')).status).toBe(200); // waits for a to finish loading, then unloads it (idle)
    expect(await metric(d, /^slotwise_model_loads_total\{model="a"\}/)).toBe(1); // a reached ready first
    expect(await metric(d, /^slotwise_model_unloads_total\{model="a",reason="evicted"\}/)).toBe(1);

    await ws.call('models.restart', { model: 'b' });
    await d.waitFor((s) => model(s, 'b').load?.state === 'ready' && model(s, 'b').instances[0]!.restarts === 0, 'b back');
    expect(await metric(d, /^slotwise_model_loads_total\{model="b"\}/)).toBe(1); // a restart is no new load
    await ws.call('models.stop', { model: 'b' });
    await d.waitFor((s) => model(s, 'b').load?.state === 'unloaded', 'b down');
    expect(await metric(d, /^slotwise_model_unloads_total\{model="b",reason="stopped"\}/)).toBe(1);
  });
});
