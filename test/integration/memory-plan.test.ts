// The memory plan against what the real llama-server allocates (its load log, read by the daemon into
// each instance's offload.buffers), and `slotwise plan` end to end. All on the CPU here.
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readGgufHeader } from '../../gguf/gguf';
import { modelFacts } from '../../daemon/memory/model-facts';
import { kvBytesPerCell, planMemory, type DevicePlan } from '../../daemon/memory/plan';
import { serverMemoryOptions } from '../../daemon/memory/server-args';
import type { PlanReport } from '../../cli/commands/render-plan';
import { cli } from '../helpers/cli';
import { startTestDaemon, tempDir, writeConfig, type TestDaemon } from '../helpers/daemon';
import type { Snapshot } from '../../shared/protocol';
import { tinyModelPath, type TestModelSize } from '../helpers/tiny';
import { ensureCachedTinyModel } from '../../gguf/tiny-model';
import { readModelHeader } from '../../gguf/split';
import { splitGguf } from '../helpers/split-gguf';
import { readFileSync, rmSync } from 'node:fs';

const MIB = 2 ** 20;

/** The snapshot once every named model's first replica is ready with its buffers (the load log can trail the ready state). */
function readyWithBuffers(d: TestDaemon, names: readonly string[]): Promise<Snapshot> {
  const loaded = (snap: Snapshot, name: string): boolean => {
    const i = snap.models.find((m) => m.name === name)?.instances[0];
    return i?.state === 'ready' && i.offload?.buffers !== undefined;
  };
  return d.waitFor((snap) => names.every((n) => loaded(snap, n)), 'every model ready with its buffers', 120_000);
}

/** MiB of llama-server's buffers of one kind (`model`, `kv`, …) for a model's first replica, all devices together. */
function bufferMiB(s: Snapshot, name: string, kind: string): number {
  const buffers = s.models.find((m) => m.name === name)!.instances[0]!.offload!.buffers;
  return Object.entries(buffers).filter(([k]) => k.startsWith(`${kind} `)).reduce((a, [, v]) => a + v, 0);
}

/** Tokens a 4-token completion of `model` generated: the model serves, not only loads. */
async function completionTokens(d: TestDaemon, model: string): Promise<number> {
  const res = await fetch(`${d.url}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ model, prompt: 'Hello', max_tokens: 4 }) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { usage: { completion_tokens: number } }).usage.completion_tokens;
}

describe('memory plan vs the real llama-server', () => {
  it('predicts weights, KV, compute and output buffers within 10 % for 2 models × 2 slot counts × 2 contexts, a q8_0 cache and no flash attention', async () => {
    const sizes: TestModelSize[] = ['tiny', 'slow'];
    const cases: { name: string; size: TestModelSize; slots: number; ctxPerSlot: number; args: string[] }[] = sizes.flatMap((size) =>
      [1, 4].flatMap((slots) => [512, 2048].map((ctxPerSlot) => ({ size, slots, ctxPerSlot, args: [], name: `${size}-s${slots}-c${ctxPerSlot}` }))),
    );
    // The slow model's heads are 64 wide: a whole number of q8_0 blocks, as a quantized cache needs.
    cases.push(
      { name: 'slow-q8', size: 'slow', slots: 3, ctxPerSlot: 700, args: ['-ctk', 'q8_0', '-ctv', 'q8_0'] },
      { name: 'slow-nofa', size: 'slow', slots: 2, ctxPerSlot: 1024, args: ['-fa', 'off'] },
    );
    const models = Object.fromEntries(cases.map((c) => [c.name, { size: c.size, slots: c.slots, ctxPerSlot: c.ctxPerSlot, args: c.args }]));
    const d = await startTestDaemon({ models });
    const s = await readyWithBuffers(d, cases.map((c) => c.name));

    const rows: string[] = [];
    let worst = 0;
    for (const c of cases) {
      const facts = modelFacts(await readGgufHeader(await tinyModelPath(c.size)));
      const server = serverMemoryOptions(c.args);
      const plan = planMemory(facts, { slots: c.slots, ctxPerSlot: c.ctxPerSlot, gpuLayers: 'auto', server }, { host: 64 * 2 ** 30, gpus: [] });
      const host = plan.devices[0]!;
      const buffers = s.models.find((m) => m.name === c.name)!.instances[0]!.offload!.buffers;
      const real = (kind: string): number => Object.entries(buffers).filter(([k]) => k.startsWith(`${kind} `)).reduce((a, [, v]) => a + v, 0);
      const parts: [keyof DevicePlan & string, string][] = [['weights', 'model'], ['kv', 'kv'], ['compute', 'compute'], ['output', 'output']];
      const cells = parts.map(([field, kind]) => {
        const planned = (host[field] as number) / MIB;
        const measured = real(kind);
        expect(measured, `${c.name}: llama-server printed no ${kind} buffer (${JSON.stringify(buffers)})`).toBeGreaterThan(0);
        const err = (planned - measured) / measured;
        worst = Math.max(worst, Math.abs(err));
        expect(Math.abs(err), `${c.name} ${field}: planned ${planned.toFixed(2)} MiB, llama-server ${measured} MiB`).toBeLessThanOrEqual(0.1);
        return `${field} ${planned.toFixed(2)}/${measured} (${(err * 100).toFixed(1)} %)`;
      });
      rows.push(`${c.name.padEnd(14)} ${cells.join('  ')}`);
    }
    // The measured errors, for the record (planned/measured MiB).
    console.log(`memory plan vs llama-server, worst error ${(worst * 100).toFixed(1)} %\n${rows.join('\n')}`);
  }, 180_000);
});

describe('memory plan of sliding-window layers vs the real llama-server', () => {
  it("sizes a Gemma 3's window layers at their window per sequence plus a ubatch (per slot, -kvu, --swa-full), exactly as llama-server allocates", async () => {
    // 12 layers, window 128: layers 5 and 11 attend over the whole context, the other 10 over 128 tokens.
    const path = await ensureCachedTinyModel({ dim: 64, layers: 12, slidingWindow: 128 });
    const facts = modelFacts(await readGgufHeader(path));
    expect(facts.architecture).toBe('gemma3');
    expect(facts.slidingWindow).toEqual({ window: 128, swa: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((il) => il % 6 !== 5) });
    const cases: { name: string; slots: number; ctxPerSlot: number; args: string[]; windowCells: number }[] = [
      // Per slot: min(1024, 128 + 512) padded to 256 = 768 cells of each window layer per slot.
      { name: 'per-slot', slots: 4, ctxPerSlot: 1024, args: [], windowCells: 4 * 768 },
      // One stream: min(4096, 128 × 4 + 512) = 1024 cells.
      { name: 'unified', slots: 4, ctxPerSlot: 1024, args: ['-kvu'], windowCells: 1024 },
      { name: 'swa-full', slots: 2, ctxPerSlot: 1024, args: ['--swa-full'], windowCells: 2 * 1024 },
    ];
    const models = Object.fromEntries(cases.map((c) => [c.name, { path, slots: c.slots, ctxPerSlot: c.ctxPerSlot, args: c.args }]));
    const d = await startTestDaemon({ models });
    const s = await readyWithBuffers(d, cases.map((c) => c.name));
    const cellBytes = 4 * 16 * 2 * 2; // 4 KV heads × 16 wide, K and V, f16
    for (const c of cases) {
      const plan = planMemory(facts, { slots: c.slots, ctxPerSlot: c.ctxPerSlot, gpuLayers: 'auto', server: serverMemoryOptions(c.args) }, { host: 64 * 2 ** 30, gpus: [] });
      const planned = plan.devices[0]!.kv;
      expect({ case: c.name, planned }).toEqual({ case: c.name, planned: (2 * c.slots * c.ctxPerSlot + 10 * c.windowCells) * cellBytes });
      // llama-server prints the full and the window cache apart; the daemon adds them up per device.
      const measured = bufferMiB(s, c.name, 'kv');
      expect({ case: c.name, mib: measured }).toEqual({ case: c.name, mib: planned / MIB });
    }
    // `slotwise plan` says so, and its KV figure is the same.
    const shown = await cli(['plan', path, '--slots', '4', '--ctx', '1024', '--gpu-layers', '0']);
    expect(shown.code).toBe(0);
    expect(shown.stdout.split('\n')[0]).toBe(`model  ${path}: gemma3, 12 layers (10 of them attend over a 128-token window and keep a smaller KV cache), training context 4096`);
    const report = JSON.parse((await cli(['plan', path, '--slots', '4', '--ctx', '1024', '--gpu-layers', '0', '--json'])).stdout) as PlanReport;
    expect(report.model.slidingWindow).toEqual({ window: 128, layers: 10 });
    expect(report.plan.devices[0]!.kv).toBe((2 * 4 * 1024 + 10 * 4 * 768) * cellBytes);
    // And the model generates: a window model is a model llama-server serves, not only one it allocates.
    expect(await completionTokens(d, 'per-slot')).toBe(4);
  }, 180_000);
});

describe('memory plan of recurrent layers vs the real llama-server', () => {
  it("counts a Qwen 3.5's recurrent layers at their state per slot and gives them no KV cache, as llama-server allocates", async () => {
    // 8 layers, attention in layers 3 and 7, gated delta nets in the other 6.
    const path = await ensureCachedTinyModel({ dim: 64, layers: 8, fullAttentionInterval: 4 });
    const facts = modelFacts(await readGgufHeader(path));
    expect(facts.architecture).toBe('qwen35');
    // Per sequence and layer: conv (4 − 1) × (64 + 2 × 2 × 16) and state 16 × 64 floats.
    expect(facts.recurrent).toEqual({ layers: [true, true, true, false, true, true, true, false], bytesPerSequence: 4 * (3 * 128 + 16 * 64) });
    const cases = [
      { name: 'four', slots: 4, ctxPerSlot: 1024, args: [] as string[] },
      { name: 'one-stream', slots: 3, ctxPerSlot: 512, args: ['-kvu'] },
    ];
    const d = await startTestDaemon({ models: Object.fromEntries(cases.map((c) => [c.name, { path, slots: c.slots, ctxPerSlot: c.ctxPerSlot, args: c.args }])) });
    const s = await readyWithBuffers(d, cases.map((c) => c.name));
    for (const c of cases) {
      const plan = planMemory(facts, { slots: c.slots, ctxPerSlot: c.ctxPerSlot, gpuLayers: 'auto', server: serverMemoryOptions(c.args) }, { host: 64 * 2 ** 30, gpus: [] });
      const kvCells = Math.ceil((c.slots * c.ctxPerSlot) / 256) * 256;
      // 2 attention layers × their cells × (64 K + 64 V) × 2 B, and 6 recurrent layers × a state per slot.
      expect({ case: c.name, planned: plan.devices[0]!.kv }).toEqual({ case: c.name, planned: 2 * kvCells * 256 + 6 * c.slots * facts.recurrent!.bytesPerSequence });
      // llama-server prints its KV buffer and its recurrent state (RS) buffer, each to 0.01 MiB; the daemon adds them up as kv.
      const measured = bufferMiB(s, c.name, 'kv');
      expect(Math.abs(measured - plan.devices[0]!.kv / MIB), `${c.name}: planned ${plan.devices[0]!.kv / MIB} MiB, llama-server ${measured} MiB`).toBeLessThanOrEqual(0.011);
    }
    const shown = await cli(['plan', path, '--slots', '4', '--ctx', '1024', '--gpu-layers', '0']);
    expect(shown.stdout.split('\n')[0]).toBe(`model  ${path}: qwen35, 8 layers (6 of them recurrent: a fixed state per slot, counted as KV), training context 4096`);
    expect(await completionTokens(d, 'four')).toBe(4);
  }, 180_000);
});

describe('context checkpoints vs the real llama-server', () => {
  it("bounds a window or recurrent model's checkpoints per slot and sizes each as llama-server makes them; a llama makes none", async () => {
    const window = await ensureCachedTinyModel({ dim: 64, layers: 12, slidingWindow: 128 });
    const hybrid = await ensureCachedTinyModel({ dim: 64, layers: 8, fullAttentionInterval: 4 });
    const draft = await tinyModelPath('tiny');
    const d = await startTestDaemon({ models: { window: { path: window, slots: 2, ctxPerSlot: 2048 }, hybrid: { path: hybrid, slots: 2, ctxPerSlot: 2048 }, llama: { slots: 1, ctxPerSlot: 512 }, drafted: { path: window, slots: 2, ctxPerSlot: 2048, draft } } });
    const s = await readyWithBuffers(d, ['window', 'hybrid', 'llama', 'drafted']);
    const cmdline = (name: string): string[] => readFileSync(`/proc/${s.models.find((m) => m.name === name)!.instances[0]!.pid!}/cmdline`, 'utf8').split('\0');
    // Tiny checkpoints: the bound is llama.cpp's own 32, passed all the same; a llama gets no flag.
    for (const name of ['window', 'hybrid']) expect(cmdline(name).join(' ')).toContain('--ctx-checkpoints 32');
    expect(cmdline('llama')).not.toContain('--ctx-checkpoints');

    const checkpointsIn = (name: string) => [...readFileSync(join(d.stateDir, 'logs', `${name}_1.log`), 'utf8').matchAll(/created context checkpoint \d+ of (\d+) \(.*n_tokens = (\d+), size = ([\d.]+) MiB\)/g)];
    for (const [name, path] of [['window', window], ['hybrid', hybrid], ['drafted', window]] as const) {
      // Two turns of one conversation: llama-server checkpoints each prompt as it reads it. Greedy, so the
      // drafted model (the window model drafting with the tiny llama) answers as the window model does.
      const messages = [{ role: 'user', content: 'tell me about the number one. '.repeat(40) }];
      for (let turn = 0; turn < 2; turn++) {
        const res = await d.fetch('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: name, messages, max_tokens: 8, temperature: 0 }) });
        expect(res.status).toBe(200);
        messages.push({ role: 'assistant', content: ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content }, { role: 'user', content: 'and two? '.repeat(30) });
      }
      const made = checkpointsIn(name);
      expect(made.length, `${name}: no checkpoint in its log`).toBeGreaterThan(0);
      if (name === 'drafted') {
        // Each checkpoint also holds the plain draft's cells for the tokens so far (llama_kv_cache ignores
        // PARTIAL_ONLY): the window model's same checkpoint plus n_tokens × the draft's bytes per cell.
        const draftCell = kvBytesPerCell(modelFacts(await readGgufHeader(draft)), serverMemoryOptions([])).reduce((a, b) => a + b, 0);
        const alone = checkpointsIn('window');
        expect(made.map((m) => m[2])).toEqual(alone.map((m) => m[2]));
        // llama_kv_cache::state_write also writes each cell's position and sequence ids (12 B), which the
        // plan leaves out: a few bytes against a real draft's tens of KiB a cell.
        made.forEach((m, i) => expect(Math.abs(Number(m[3]) - Number(alone[i]![3]) - (Number(m[2]) * (draftCell + 12)) / MIB), `checkpoint at ${m[2]} tokens`).toBeLessThanOrEqual(0.0015));
        expect(Number(made.at(-1)![3]) - Number(alone.at(-1)![3])).toBeGreaterThan(0.1); // the draft's part is real
        const plan = planMemory({ ...modelFacts(await readGgufHeader(path)), draft: modelFacts(await readGgufHeader(draft)) }, { slots: 2, ctxPerSlot: 2048, gpuLayers: 'auto', server: serverMemoryOptions([]), promptCacheMiB: 'auto', hostBytes: totalmem() }, { host: 64 * 2 ** 30, gpus: [] });
        const each = plan.devices[0]!.checkpoints! / 2 / 32 / MIB;
        // Planned at a full context, the most a checkpoint can hold: never below what llama-server made.
        expect(each).toBeGreaterThanOrEqual(Math.max(...made.map((m) => Number(m[3]))));
        console.log(`drafted: checkpoint planned ${each.toFixed(4)} MiB at a full context, llama-server ${made.map((m) => `${m[3]} (n_tokens ${m[2]})`).join(', ')}`);
        continue;
      }
      const facts = modelFacts(await readGgufHeader(path));
      const plan = planMemory(facts, { slots: 2, ctxPerSlot: 2048, gpuLayers: 'auto', server: serverMemoryOptions([]), promptCacheMiB: 'auto', hostBytes: totalmem() }, { host: 64 * 2 ** 30, gpus: [] });
      const each = plan.devices[0]!.checkpoints! / 2 / 32 / MIB;
      const largest = Math.max(...made.map((m) => Number(m[3])));
      console.log(`${name}: checkpoint planned ${each.toFixed(4)} MiB, llama-server ${largest} MiB (${made.length} made, of ${made[0]![1]})`);
      expect(made.every((m) => m[1] === '32')).toBe(true);
      // llama-server prints 3 decimals; a window checkpoint also carries a few bytes per cell of positions.
      expect(Math.abs(each - largest), `${name}: planned ${each} MiB a checkpoint, llama-server ${largest}`).toBeLessThanOrEqual(Math.max(0.0015, largest * 0.02));
      // The status plan keeps them apart from what llama-server allocates at load, with the prompt cache.
      const memory = s.models.find((m) => m.name === name)!.memory!;
      expect(memory.promptCacheBytes).toBe(plan.devices[0]!.promptCache! + plan.devices[0]!.checkpoints!);
    }
  }, 180_000);
});

describe('a model split over several GGUF files', () => {
  it('is planned from the tensors of every split, as llama-server loads it; a later split or a missing one is named', async () => {
    const dir = tempDir('split');
    const paths = await splitGguf(await tinyModelPath('tiny'), join(dir, 'tiny'), 3);
    expect(paths.map((p) => p.slice(dir.length + 1))).toEqual(['tiny-00001-of-00003.gguf', 'tiny-00002-of-00003.gguf', 'tiny-00003-of-00003.gguf']);
    const whole = modelFacts(await readGgufHeader(await tinyModelPath('tiny')));
    const facts = modelFacts(await readModelHeader(paths[0]!));
    // The first file alone holds a third of the tensors: planned from it, the weights would be far short.
    expect(modelFacts(await readGgufHeader(paths[0]!)).layerBytes.reduce((a, b) => a + b, 0)).toBeLessThan(whole.layerBytes.reduce((a, b) => a + b, 0) / 2);
    expect({ layerBytes: facts.layerBytes, inputBytes: facts.inputBytes, outputBytes: facts.outputBytes }).toEqual({ layerBytes: whole.layerBytes, inputBytes: whole.inputBytes, outputBytes: whole.outputBytes });

    const d = await startTestDaemon({ models: { split: { path: paths[0], slots: 2, ctxPerSlot: 512 } } });
    const s = await readyWithBuffers(d, ['split']);
    const plan = planMemory(facts, { slots: 2, ctxPerSlot: 512, gpuLayers: 'auto', server: serverMemoryOptions([]) }, { host: 64 * 2 ** 30, gpus: [] });
    const model = bufferMiB(s, 'split', 'model');
    expect(Math.abs(plan.devices[0]!.weights / MIB - model) / model, `planned ${plan.devices[0]!.weights / MIB} MiB of weights, llama-server ${model} MiB`).toBeLessThanOrEqual(0.1);
    // The daemon's own plan of it (status) is that plan, within what llama-server's buffers read.
    const memory = s.models[0]!.memory!;
    expect(memory.planBytes).toBe(plan.total - (plan.devices[0]!.promptCache ?? 0));
    expect(Math.abs(memory.planBytes - memory.actualBytes!) / memory.actualBytes!).toBeLessThanOrEqual(0.1);

    const second = await cli(['plan', paths[1]!, '--gpu-layers', '0']);
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(`slotwise: ${paths[1]} is split 2 of 3 of a model: give the first, ${paths[0]}\n`);
    rmSync(paths[2]!);
    const missing = await cli(['plan', paths[0]!, '--gpu-layers', '0']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`slotwise: split 3 of 3 of ${paths[0]}: model file not found: ${paths[2]}\n`);
  }, 180_000);
});

describe('slotwise plan', () => {
  it('prints the plan of a GGUF path as JSON and as a table, and of a configured model', async () => {
    const path = await tinyModelPath('tiny');
    // --gpu-layers 0: the numbers below are the host's even where a GPU is present.
    const json = await cli(['plan', path, '--slots', '4', '--ctx', '512', '--gpu-layers', '0', '--json']);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const r = JSON.parse(json.stdout) as PlanReport;
    expect(r.model).toMatchObject({ path, architecture: 'llama', layers: 2, contextLength: 4096 });
    expect(r.asked).toEqual({ slots: 4, ctxPerSlot: 512, gpuLayers: 0 });
    expect(r.free.host).toBeGreaterThan(0);
    // 4 slots × 512 cells × 2 layers × (64 K + 64 V) × 2 B (f16)
    const host = r.plan.devices.find((dev) => dev.device === 'host')!;
    expect(host.kv).toBe(4 * 512 * 2 * 128 * 2);
    // llama-server's host prompt cache ("auto": 4 contexts a slot, at least 32 MiB), counted in the host total.
    expect(host.promptCache).toBe(32 * MIB);
    expect(host.total).toBe(host.weights + host.kv + host.compute + host.output + 32 * MIB);
    expect(r.plan).toMatchObject({ slots: 4, ctxPerSlot: 512, cellsPerSlot: 512, kvPerSlot: 512 * 2 * 128 * 2, fits: true });
    expect(host.weights).toBeGreaterThan(16 * MIB);
    expect(r.table.map((row) => `${row.slots}×${row.ctxPerSlot}`)).toEqual([256, 512, 1024].flatMap((c) => [1, 2, 4, 8, 16].map((n) => `${n}×${c}`)));
    expect(r.recommendation).toMatchObject({ ctxPerSlot: 512, slots: expect.any(Number) });
    expect(r.recommendation.slots).toBeGreaterThanOrEqual(4);

    const table = await cli(['plan', path, '--slots', '4', '--ctx', '512', '--gpu-layers', '0']);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`model  ${path}: llama, 2 layers, training context 4096`);
    expect(lines).toContainEqual(expect.stringMatching(/^\s+slots\s+ctx\/slot\s+gpuLayers\s+device\s+weights\s+KV\s+compute\s+output\s+cache\s+total\s+free\s+fits$/));
    expect(lines.find((l) => l.startsWith('*'))).toMatch(/^\*\s+4\s+512\s+0\s+host RAM\s+16\.1 MiB\s+1\.0 MiB\s+2\.5 MiB\s+0\.5 MiB\s+32\.0 MiB\s+52\.1 MiB\s+[\d.]+ GiB\s+yes$/);
    const off = await cli(['plan', path, '--slots', '4', '--ctx', '512', '--gpu-layers', '0', '--prompt-cache', '0']);
    expect(off.code).toBe(0);
    expect(off.stdout.split('\n').find((l) => l.startsWith('*'))).toMatch(/\s0\.5 MiB\s+-\s+20\.1 MiB\s+[\d.]+ GiB\s+yes$/);
    expect(lines.at(-1)).toMatch(/^recommendation: slots \d+ at ctxPerSlot 512/);

    const dir = tempDir('plan');
    const config = writeConfig(dir, { models: { coder: { path, slots: 2, ctxPerSlot: 1024, gpuLayers: 0, args: ['-ctk', 'q8_0', '-ctv', 'q8_0'] } } });
    const named = await cli(['plan', 'coder', '--config', config, '--json']);
    expect(named.code).toBe(0);
    const n = JSON.parse(named.stdout) as PlanReport;
    expect(n.model.name).toBe('coder');
    expect(n.asked).toEqual({ slots: 2, ctxPerSlot: 1024, gpuLayers: 0 });
    // q8_0 from the model's args: a 64-element row is 2 blocks of 34 B → 2 slots × 1024 cells × 2 layers × 136 B
    expect(n.plan.devices[0]!.kv).toBe(2 * 1024 * 2 * 136);
  });

  it('exits 1 with one line when the asked plan does not fit, 2 on bad usage', async () => {
    const path = await tinyModelPath('tiny');
    const huge = await cli(['plan', path, '--slots', '256', '--ctx', '10000000']);
    expect(huge.code).toBe(1);
    expect(huge.stdout).toMatch(/^\*\s+256\s+10000000\s.*NO$/m);
    expect(huge.stderr).toMatch(/^slotwise: tiny-d64-l2-s1\.gguf with 256 slots × 10000000 tokens needs [\d.]+ GiB (of host RAM( with its [\d.]+ [GM]iB prompt cache)?|on GPU \d+), which has [\d.]+ [GM]iB free: lower slots[^\n]*\n$/);

    const usage = await cli(['plan']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^slotwise: usage: slotwise plan MODEL\|PATH/);
    const badFlag = await cli(['plan', path, '--gpu-layers', 'many']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toBe('slotwise: --gpu-layers must be an integer >= 0, all or auto, got "many"\n');
    const badCache = await cli(['plan', path, '--prompt-cache', 'lots']);
    expect(badCache.code).toBe(2);
    expect(badCache.stderr).toBe('slotwise: --prompt-cache must be an integer >= 0 (MiB) or auto, got "lots"\n');

    const config = writeConfig(tempDir('plan'), { models: { coder: { path } } });
    const missing = await cli(['plan', 'nosuch', '--config', config]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('slotwise: no model "nosuch" in the config (configured: coder) and no file of that name — give a configured model or a GGUF path\n');
    const notFile = await cli(['plan', join(tempDir('plan'), 'none.gguf')]);
    expect(notFile.code).toBe(1);
    expect(notFile.stderr).toMatch(/^slotwise: model file not found: .*none\.gguf\n$/);
  });
});
