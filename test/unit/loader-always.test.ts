// ModelLoader.startAlways against a stand-in supervisor (no llama-server: these cases are about which
// models get launched, decided before any process starts) and the real memory plan of the tiny model.
import { EventEmitter } from 'node:events';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelLoader } from '../../daemon/runtime/loader';
import type { Supervisor } from '../../daemon/runtime/supervisor';
import type { LlamaInstance } from '../../daemon/runtime/instance';
import { defaultConfig } from '../../daemon/config/validate';
import type { Config, ModelConfig } from '../../daemon/config/types';
import { modelConfig } from '../../bench/scenarios';
import { modelFacts } from '../../daemon/memory/model-facts';
import { formatMemory, modelPlanSettings, planMemory } from '../../daemon/memory/plan';
import { readGgufHeader } from '../../gguf/gguf';
import { silentLogger } from '../../platform/log';
import { tinyModelPath } from '../helpers/tiny';

const MIB = 2 ** 20;

/** The parts of Supervisor the loader uses; models "start" at once into a state the test sets. */
class StandInSupervisor extends EventEmitter {
  wantedBy = new Map<string, number>();
  state = new Map<string, LlamaInstance['state']>();
  started: string[] = [];
  stopped: string[] = [];
  constructor(readonly configs: ModelConfig[]) {
    super();
  }
  modelNames = (): string[] => this.configs.map((c) => c.name);
  modelConfig = (name: string): ModelConfig => this.configs.find((c) => c.name === name)!;
  wanted = (name: string): number => this.wantedBy.get(name) ?? 0;
  slots = (name: string): number | undefined => {
    const s = this.modelConfig(name).slots;
    return s === 'auto' ? undefined : s;
  };
  /** llama-server's buffers a ready instance reports (`"model CPU"` → MiB), per model; none by default. */
  buffers = new Map<string, Record<string, number>>();
  instances = (name: string): LlamaInstance[] =>
    this.wanted(name)
      ? [{ state: this.state.get(name) ?? 'starting', status: () => (this.buffers.has(name) ? { offload: { buffers: this.buffers.get(name) } } : {}), loadProgress: () => ({ phase: 'starting' }) } as unknown as LlamaInstance]
      : [];
  failedReplica = (name: string): LlamaInstance | undefined => this.instances(name).find((i) => i.state === 'failed');
  setStatusExtra = (): void => undefined;
  setAutoSlots = (): void => undefined;
  run(name: string, state: LlamaInstance['state']): void {
    this.wantedBy.set(name, 1);
    this.state.set(name, state);
  }
  autostart = (name: string): void => {
    this.started.push(name);
    this.run(name, 'starting');
  };
  startModel = (name: string): void => this.autostart(name);
  replicasToStart = (): number => 1;
  stopModel = async (name: string): Promise<void> => {
    this.stopped.push(name);
    this.wantedBy.set(name, 0);
    this.state.set(name, 'stopped');
  };
}

async function setup(models: { name: string; load: 'always' | 'on-demand'; pinned?: boolean; promptCacheMiB?: number; path?: string }[], free: number, budgetMiB?: number) {
  const path = await tinyModelPath('tiny');
  const facts = modelFacts(await readGgufHeader(path));
  const base = modelConfig('m', path, { slots: 1, replicas: 1 });
  // The loader's own figure: the host total with the prompt cache at its limit ("auto" by default: 32 MiB here).
  const plan = planMemory(facts, { ...modelPlanSettings({ ...base, gpuLayers: 0 }, totalmem()), slots: 1 }, { host: Number.MAX_SAFE_INTEGER, gpus: [] }).total;
  const bare = planMemory(facts, { slots: 1, ctxPerSlot: base.ctxPerSlot, gpuLayers: 0 }, { host: Number.MAX_SAFE_INTEGER, gpus: [] }).total;
  const configs = models.map((m) => ({
    ...modelConfig(m.name, m.path ?? path, { slots: 1, replicas: 1 }),
    gpuLayers: 0 as const,
    load: m.load,
    pinned: m.pinned ?? false,
    ...(m.promptCacheMiB !== undefined ? { promptCacheMiB: m.promptCacheMiB } : {}),
  }));
  const supervisor = new StandInSupervisor(configs);
  const config: Config = { ...defaultConfig(), models: configs, ...(budgetMiB !== undefined ? { memoryBudgetMiB: budgetMiB } : {}) };
  const failed: string[] = [];
  const loader = new ModelLoader({
    supervisor: supervisor as unknown as Supervisor,
    config,
    logger: silentLogger,
    readFree: async () => ({ host: typeof free === 'number' ? free : 0, gpus: [] }),
    busy: () => false,
    waiting: () => 0,
    fail: (m) => failed.push(m),
  });
  return { loader, supervisor, plan, bare, failed };
}

describe('ModelLoader.startAlways', () => {
  it('without a budget, counts the plan of a model still loading: two that each fit alone do not both start', async () => {
    const { plan } = await setup([], 0);
    const { loader, supervisor, failed } = await setup([{ name: 'a', load: 'always' }, { name: 'b', load: 'always' }], 1.5 * plan);
    const started = loader.startAlways();
    // Both are being checked from the start: a request for b waits in the queue instead of a "not running" error.
    expect(loader.statusOf('b').load).toMatchObject({ state: 'loading', phase: 'planning' });
    expect(loader.demand('b')).toBe(true);
    await started;
    expect(supervisor.started).toEqual(['a']);
    expect(loader.statusOf('b').load).toMatchObject({ state: 'unloaded', reason: 'no-memory', error: { code: 'SW_ERR_NOT_ENOUGH_MEMORY' } });
    expect(loader.statusOf('b').load!.error!.message).toMatch(/^model "b" needs [\d.]+ MiB of host RAM with its 32\.0 MiB prompt cache, which has [\d.]+ MiB free/);
    expect(failed).toEqual(['b']); // requests that waited for it get the error
    expect(() => loader.demand('b')).toThrow(/model "b" needs/);
  });

  it('unloads an idle on-demand model to make room, never another "always" one', async () => {
    const { plan } = await setup([], 0);
    const budgetMiB = Math.floor((1.5 * plan) / MIB);
    const { loader, supervisor } = await setup(
      [{ name: 'od', load: 'on-demand' }, { name: 'a', load: 'always' }, { name: 'x', load: 'always' }],
      Number.MAX_SAFE_INTEGER,
      budgetMiB,
    );
    supervisor.run('od', 'ready'); // loaded by an earlier request, idle now
    await loader.planAll(); // as the daemon does at start: od's plan is what it holds
    await loader.startAlways();
    expect(supervisor.stopped).toEqual(['od']); // evicted so that a fits
    expect(supervisor.started).toEqual(['a']); // x would need a gone: a is "always", not evicted
    expect(loader.statusOf('x').load).toMatchObject({ state: 'unloaded', reason: 'no-memory' });
    expect(loader.statusOf('a').load).toMatchObject({ state: 'loading', phase: 'starting' });
  });

  it('unloads nobody when unloading every idle on-demand model would not make room either', async () => {
    const { plan } = await setup([], 0);
    const budgetMiB = Math.floor((1.9 * plan) / MIB);
    const { loader, supervisor } = await setup(
      [{ name: 'od', load: 'on-demand' }, { name: 'p', load: 'on-demand', pinned: true }, { name: 'a', load: 'always' }],
      Number.MAX_SAFE_INTEGER,
      budgetMiB,
    );
    supervisor.run('od', 'ready');
    supervisor.run('p', 'ready'); // pinned: never evicted
    await loader.planAll();
    await loader.startAlways();
    expect(supervisor.stopped).toEqual([]);
    expect(supervisor.started).toEqual([]);
    expect(loader.statusOf('a').load).toMatchObject({ state: 'unloaded', reason: 'no-memory' });
  });
});

describe('ModelLoader: the model file as it is now', () => {
  it('plans a model file added after the daemon started, instead of skipping its memory check for good', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'slotwise-loader-'));
    try {
      const later = join(dir, 'later.gguf');
      const { plan } = await setup([], 0);
      const budgetMiB = Math.floor((0.5 * plan) / MIB); // the tiny model never fits
      const { loader, supervisor } = await setup([{ name: 'od', load: 'on-demand', path: later }], Number.MAX_SAFE_INTEGER, budgetMiB);
      await loader.planAll(); // at start the file is not there: no plan
      expect(loader.statusOf('od').memory).toBeUndefined();
      await copyFile(await tinyModelPath('tiny'), later);
      await expect(loader.start('od')).rejects.toMatchObject({ code: 'SW_ERR_NOT_ENOUGH_MEMORY' });
      expect(supervisor.started).toEqual([]);
      expect(loader.statusOf('od').memory).toBeDefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ModelLoader: the host prompt cache counts in the fit', () => {
  it('refuses a model that fits without its prompt cache but not with it, naming the cache and the fix; with promptCacheMiB 0 it starts', async () => {
    const { plan, bare } = await setup([], 0);
    expect(plan - bare).toBe(32 * MIB); // "auto" for the tiny model: the 32 MiB floor
    const budgetMiB = Math.floor((bare + plan) / 2 / MIB); // the buffers fit, the buffers and the cache do not
    const refused = await setup([{ name: 'a', load: 'always' }], Number.MAX_SAFE_INTEGER, budgetMiB);
    await refused.loader.startAlways();
    expect(refused.supervisor.started).toEqual([]);
    expect(refused.loader.statusOf('a').load).toMatchObject({ state: 'unloaded', reason: 'no-memory' });
    expect(refused.loader.statusOf('a').load!.error!.message).toBe(
      `model "a" needs ${formatMemory(plan)} of host RAM with its 32.0 MiB prompt cache, which has ${formatMemory(budgetMiB * MIB)} free: lower promptCacheMiB (0 turns the cache off)`,
    );
    // status shows the cache apart from the load-time plan (what llama-server's buffers are compared with)
    expect(refused.loader.statusOf('a').memory).toMatchObject({ planBytes: bare, promptCacheBytes: 32 * MIB, byDevice: [{ device: 'host', planBytes: bare, promptCacheBytes: 32 * MIB }] });

    const off = await setup([{ name: 'a', load: 'always', promptCacheMiB: 0 }], Number.MAX_SAFE_INTEGER, budgetMiB);
    await off.loader.startAlways();
    expect(off.supervisor.started).toEqual(['a']);
    expect(off.loader.statusOf('a').memory).toEqual({ planBytes: bare, byDevice: [{ device: 'host', label: 'host RAM', planBytes: bare }] });
  });

  it("under a budget, a ready model holds its buffers and its prompt cache: the next model evicts it when only the cache is in the way", async () => {
    const { plan, bare } = await setup([], 0);
    const budgetMiB = Math.ceil((plan + bare) / MIB) + 8; // a beside od's buffers fits; beside od's buffers and cache it does not
    for (const odCache of [undefined, 0]) {
      const { loader, supervisor } = await setup([{ name: 'od', load: 'on-demand', ...(odCache !== undefined ? { promptCacheMiB: odCache } : {}) }, { name: 'a', load: 'always' }], Number.MAX_SAFE_INTEGER, budgetMiB);
      supervisor.run('od', 'ready');
      supervisor.buffers.set('od', { 'model CPU': bare / MIB }); // llama-server's load log: no prompt cache in it
      await loader.planAll();
      await loader.startAlways();
      expect(supervisor.started).toEqual(['a']);
      expect(supervisor.stopped).toEqual(odCache === 0 ? [] : ['od']);
    }
  });

  it("without a budget, the prompt cache a ready model may still fill is taken off free memory", async () => {
    const { plan } = await setup([], 0);
    const free = plan + 16 * MIB; // a fits what is free now, not once od's 32 MiB cache fills
    for (const odCache of [undefined, 0]) {
      const { loader, supervisor } = await setup([{ name: 'od', load: 'on-demand', ...(odCache !== undefined ? { promptCacheMiB: odCache } : {}) }, { name: 'a', load: 'always' }], free);
      supervisor.run('od', 'ready');
      await loader.planAll();
      await loader.startAlways();
      expect(supervisor.started).toEqual(['a']);
      expect(supervisor.stopped).toEqual(odCache === 0 ? [] : ['od']);
    }
  });
});
