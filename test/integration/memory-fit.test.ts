// "What would still fit" in status, against the real daemon and llama-server: every model that is down
// carries its plan and `memory.fitsNow` under memoryBudgetMiB, and the answer changes once another
// model is loaded beside it. Every model runs on the CPU (gpuLayers 0), so the budget applies to host RAM.
import { totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { readGgufHeader } from '../../gguf/gguf';
import { modelFacts } from '../../daemon/memory/model-facts';
import { mostSlotsThatFit, planMemory } from '../../daemon/memory/plan';
import type { Snapshot } from '../../shared/protocol';
import { startTestDaemon } from '../helpers/daemon';
import { tinyModelPath } from '../helpers/tiny';

const MIB = 2 ** 20;

/** The load-time plan (what status shows as planBytes: llama-server's buffers, no prompt cache). */
async function planBytes(slots: number, ctxPerSlot: number): Promise<number> {
  const facts = modelFacts(await readGgufHeader(await tinyModelPath('tiny')));
  return planMemory(facts, { slots, ctxPerSlot, gpuLayers: 0 }, { host: Number.MAX_SAFE_INTEGER, gpus: [] }).total;
}

/** What the fit checks count: the plan with the host prompt cache at its limit (promptCacheMiB "auto", the default: 32 MiB here). */
async function heldBytes(slots: number, ctxPerSlot: number): Promise<number> {
  const facts = modelFacts(await readGgufHeader(await tinyModelPath('tiny')));
  return planMemory(facts, { slots, ctxPerSlot, gpuLayers: 0, promptCacheMiB: 'auto', hostBytes: totalmem() }, { host: Number.MAX_SAFE_INTEGER, gpus: [] }).total;
}

/** The slots a `slots: "auto"` load would choose within `roomBytes` of host RAM (at least 1, as the loader does), the cache counted. */
async function autoSlots(roomBytes: number, ctxPerSlot: number, maxSlots: number): Promise<number> {
  const facts = modelFacts(await readGgufHeader(await tinyModelPath('tiny')));
  return Math.max(1, mostSlotsThatFit(facts, { ctxPerSlot, gpuLayers: 0, promptCacheMiB: 'auto', hostBytes: totalmem() }, { host: roomBytes, gpus: [] }, maxSlots));
}

const model = (s: Snapshot, name: string) => s.models.find((m) => m.name === name)!;

describe('status: what would still fit', () => {
  it('marks each unloaded on-demand model as fitting or not beside the loaded ones, under memoryBudgetMiB', async () => {
    const one = await planBytes(1, 512);
    const big = await planBytes(8, 4096);
    const budgetMiB = Math.floor((1.5 * (await heldBytes(1, 512))) / MIB); // one small model (and its prompt cache) fits, two do not
    expect(await heldBytes(8, 4096)).toBeGreaterThan(budgetMiB * MIB);
    const small = { load: 'on-demand', slots: 1, ctxPerSlot: 512, gpuLayers: 0 };
    const d = await startTestDaemon({
      models: {
        a: small,
        b: small,
        big: { load: 'on-demand', slots: 8, ctxPerSlot: 4096, gpuLayers: 0 },
        // Planned by the loader only at its first load: status previews the slots it would choose now.
        auto: { load: 'on-demand', slots: 'auto', maxSlots: 8, ctxPerSlot: 512, gpuLayers: 0 },
      },
      config: { memoryBudgetMiB: budgetMiB },
    });

    // Never loaded: planned at daemon start; the host reading comes with the sampler's first sample.
    let s = await d.waitFor((x) => model(x, 'big').memory?.fitsNow !== undefined && model(x, 'auto').memory?.fitsNow !== undefined, 'fit fields', 15_000);
    expect(s.memoryBudgetMiB).toBe(budgetMiB);
    expect(model(s, 'a').load).toMatchObject({ state: 'unloaded', reason: 'never-loaded' });
    // The prompt cache apart from the load-time plan: the fit counts both.
    expect(model(s, 'a').memory).toMatchObject({ planBytes: one, promptCacheBytes: 32 * MIB, fitsNow: true, byDevice: [expect.objectContaining({ device: 'host', planBytes: one, promptCacheBytes: 32 * MIB })] });
    expect(model(s, 'b').memory?.fitsNow).toBe(true);
    expect(model(s, 'big').memory).toMatchObject({ planBytes: big, fitsNow: false });
    const slotsNow = await autoSlots(budgetMiB * MIB, 512, 8);
    expect(model(s, 'auto').memory).toMatchObject({ planBytes: await planBytes(slotsNow, 512), fitsNow: true });

    // Load a: it no longer carries a fit (it is loaded); b would now need a to be evicted first.
    const res = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'a', prompt: 'Once upon a time', max_tokens: 2 }) });
    expect(res.status).toBe(200);
    s = await d.waitFor((x) => model(x, 'a').load?.state === 'ready' && model(x, 'b').memory?.fitsNow === false, 'b no longer fits beside a');
    expect(model(s, 'a').memory?.fitsNow).toBeUndefined();
    expect(model(s, 'big').memory?.fitsNow).toBe(false);
    // Not even one slot of `auto` fits beside a now: its preview is the one-slot plan the loader would make room for.
    s = await d.waitFor((x) => model(x, 'auto').memory?.fitsNow === false, 'auto no longer fits beside a');
    expect(model(s, 'auto').memory?.planBytes).toBe(one);
    expect(model(s, 'auto').slotsPerInstance).toBe(0); // still unresolved: the preview chose nothing
  });
});
