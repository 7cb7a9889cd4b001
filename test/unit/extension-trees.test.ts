import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrackedJob } from '../../extension/core/job-tracker';
import { buildJobRows } from '../../extension/core/jobs-tree-model';
import { buildSlotsTree, modelPhase } from '../../extension/core/slots-tree-model';
import { NOW, instance, model, snapshot } from './extension-fixtures';
import type { ModelStatus } from '../../shared/protocol';

describe('buildSlotsTree', () => {
  it('maps model → instance → slot with stable ids, state icons and descriptions', () => {
    const [m] = buildSlotsTree(snapshot({ models: [model({ instances: [instance({ tokensPerSecond: 95.2 }, [1])] })] }), NOW);
    expect(m).toMatchObject({ id: 'model:coder', label: 'coder', description: 'ready · 1/4 busy · 95 tok/s', contextValue: 'slotwise.model.up', icon: { id: 'pass-filled', color: 'charts.green' } });
    const [inst] = m!.children;
    expect(inst).toMatchObject({ id: 'instance:coder#1', label: 'coder#1', description: 'ready · :8081 · 95 tok/s', icon: { id: 'vm-running' } });
    expect(inst!.children.map((s) => [s.id, s.label, s.description, s.icon.id])).toEqual([
      ['slot:coder#1:0', 'slot 0', 'idle', 'circle-outline'],
      ['slot:coder#1:1', 'slot 1', 'busy · 182 tok', 'circle-filled'],
      ['slot:coder#1:2', 'slot 2', 'idle', 'circle-outline'],
      ['slot:coder#1:3', 'slot 3', 'idle', 'circle-outline'],
    ]);
    expect(inst!.children[1]!.tooltip).toBe('slot 1 busy · task 101 · prompt 12 tok · 182 generated · ctx 4096');
  });

  it('shows which request or job leases a slot, and a foreign client', () => {
    const inst = instance({}, []);
    inst.slots[0] = { id: 0, busy: true, requestId: '1a2b3c4d-5e6f', source: 'http', since: NOW - 1000, nCtx: 4096 };
    inst.slots[1] = { id: 1, busy: true, requestId: '9f8e7d6c-5b4a', source: 'ws', since: NOW - 1000, tokens: 37, nCtx: 4096 };
    inst.slots[2] = { id: 2, busy: true, foreign: true, nCtx: 4096 };
    const [m] = buildSlotsTree(snapshot({ models: [model({ instances: [inst] })] }), NOW);
    const rows = m!.children[0]!.children;
    expect(rows.map((s) => s.description)).toEqual(['busy · request 1a2b3c4d · 0 tok', 'busy · job 9f8e7d6c · 37 tok', 'busy · foreign client', 'idle']);
    expect(rows[1]!.tooltip).toContain('job 9f8e7d6c-5b4a');
    expect(rows[2]!.tooltip).toContain('talking to llama-server directly');
    // A slot handed off to the next request (queue.handoffTokens) names it.
    inst.slots[0] = { ...inst.slots[0]!, next: '7e6d5c4b-3a29' };
    const [m2] = buildSlotsTree(snapshot({ models: [model({ instances: [inst] })] }), NOW);
    const handed = m2!.children[0]!.children[0]!;
    expect(handed.description).toBe('busy · request 1a2b3c4d · 0 tok · next 7e6d5c4b');
    expect(handed.tooltip).toContain('next: request 7e6d5c4b-3a29, already sent to llama-server');
    expect(m!.description).toBe('ready · 3/4 busy');
  });

  it("counts a request the daemon just sent as busy before /slots shows it, like the status bar", () => {
    const [m] = buildSlotsTree(snapshot({ models: [model({ instances: [instance({ inFlight: 3 }, [1])] })] }), NOW);
    expect(m!.description).toBe('ready · 3/4 busy');
    // The slot rows stay what /slots says: which slot is busy is only known from there.
    expect(m!.children[0]!.children.filter((s) => s.description !== 'idle')).toHaveLength(1);
  });

  it.each([
    ['no instances', []],
    ['a stopped instance', [instance({ state: 'stopped', pid: undefined, slots: [] })]],
  ])('a stopped model (%s) has no children and offers Start', (_name, instances) => {
    const [m] = buildSlotsTree(snapshot({ models: [model({ replicas: 0, instances })] }), NOW);
    expect(m).toMatchObject({ description: 'down', contextValue: 'slotwise.model.down', children: [] });
  });

  it('an unloaded on-demand model reads unloaded (why), offers Load, and ready rows show memory and offer Unload', () => {
    const GiB = 2 ** 30;
    const [u] = buildSlotsTree(snapshot({ models: [model({ replicas: 0, instances: [], load: { state: 'unloaded', reason: 'evicted' }, memory: { planBytes: 3.1 * GiB, byDevice: [] } })] }), NOW);
    expect(u).toMatchObject({ description: 'unloaded (evicted) · 3.1 GiB', contextValue: 'slotwise.model.unloaded' });
    expect(u!.tooltip).toContain('memory: plan 3.1 GiB');
    const [r] = buildSlotsTree(snapshot({ models: [model({ instances: [instance({}, [])], load: { state: 'ready' }, memory: { planBytes: 3.1 * GiB, actualBytes: 3.0 * GiB, byDevice: [] } })] }), NOW);
    expect(r).toMatchObject({ description: 'ready · 0/4 busy · 3.0 GiB', contextValue: 'slotwise.model.ready' });
    // Loading (the load state says so) keeps Stop and Restart: there is nothing loaded to unload yet.
    const [l] = buildSlotsTree(snapshot({ models: [model({ instances: [instance({ state: 'loading' })], load: { state: 'loading' } })] }), NOW);
    expect(l!.contextValue).toBe('slotwise.model.up');
    expect(r!.tooltip).toContain('memory: plan 3.1 GiB · actual 3.0 GiB');
    // With a host prompt cache: the row shows what the replica may hold (buffers + cache), the tooltip each part.
    const [c] = buildSlotsTree(snapshot({ models: [model({ instances: [instance({}, [])], load: { state: 'ready' }, memory: { planBytes: 3.1 * GiB, actualBytes: 3.0 * GiB, promptCacheBytes: GiB, byDevice: [] } })] }), NOW);
    expect(c).toMatchObject({ description: 'ready · 0/4 busy · 4.0 GiB' });
    expect(c!.tooltip).toContain('memory: plan 3.1 GiB · actual 3.0 GiB · prompt cache up to 1.0 GiB');
  });

  it("a vision model's tooltip says what it reads, and a model with a draft how much of the draft was accepted", () => {
    const [v] = buildSlotsTree(snapshot({ models: [model({ instances: [instance({}, [])], info: { fileBytes: 2 ** 30, architecture: 'gemma3', modalities: ['vision'] }, draftTokens: { drafted: 200, accepted: 150 }, draftAcceptance: 0.75 })] }), NOW);
    expect(v!.tooltip).toContain('gemma3 · 1.0 GiB · reads images');
    expect(v!.tooltip).toContain('speculative decoding: 75 % of 200 drafted tokens accepted');
    const [t] = buildSlotsTree(snapshot({ models: [model({ instances: [instance({}, [])], info: { fileBytes: 2 ** 30, architecture: 'llama' } })] }), NOW);
    expect(t!.tooltip).not.toMatch(/reads|speculative/);
  });

  it('a ready model\'s tooltip says where llama-server put it, and when a placement is the one recorded at an earlier load', () => {
    const onGpu = { layersOnGpu: 33, layersTotal: 33, buffers: { 'model CUDA0': 3820.93, 'kv CUDA0': 512 } };
    const [g] = buildSlotsTree(snapshot({ models: [model({ instances: [instance({ offload: onGpu }, [])] })] }), NOW);
    expect(g!.tooltip).toContain('placement: 33/33 on GPU (model CUDA0 3821 MiB, kv CUDA0 512 MiB)');
    const recorded = { buffers: { 'model CPU_Mapped': 0.52 }, recordedAt: Date.UTC(2026, 10, 26, 23, 5) };
    const [c] = buildSlotsTree(snapshot({ models: [model({ instances: [instance({ offload: recorded }, [])] })] }), NOW);
    expect(c!.tooltip).toContain('placement: CPU only (model CPU_Mapped 0.52 MiB) as recorded 2026-11-26 23:05 UTC');
    // Not ready (loading): no placement yet.
    const [l] = buildSlotsTree(snapshot({ models: [model({ instances: [instance({ state: 'loading', offload: onGpu }, [])] })] }), NOW);
    expect(l!.tooltip).not.toContain('placement:');
  });

  it('a loading model row shows llama-server\'s progress; one that does not fit says why', () => {
    const loading = instance({ state: 'loading', slots: [] });
    const row = (load: ModelStatus['load']) => buildSlotsTree(snapshot({ models: [model({ instances: [loading], load })] }), NOW)[0]!;
    expect(row({ state: 'loading', phase: 'weights', progress: 0.42 }).description).toBe('loading 42 %');
    expect(row({ state: 'loading', phase: 'context', progress: 1 }).description).toBe('loading · context');
    const message = 'model "coder" needs 9.1 GiB of host RAM, which has 4.0 GiB free: lower slots or ctxPerSlot';
    const [u] = buildSlotsTree(snapshot({ models: [model({ replicas: 0, instances: [], load: { state: 'unloaded', reason: 'no-memory', error: { code: 'SW_ERR_NOT_ENOUGH_MEMORY', message } } })] }), NOW);
    expect(u!.description).toBe('unloaded (no memory)');
    expect(u!.tooltip).toContain(message);
  });

  it('shows queue, loading, backoff and failure reasons', () => {
    const [m] = buildSlotsTree(
      snapshot({
        models: [
          model({
            replicas: 3,
            queue: { waiting: 2, oldestWaitMs: 1234 },
            instances: [
              instance({ id: 'coder#1', state: 'loading', slots: [] }),
              instance({ id: 'coder#2', state: 'backoff', nextRestartAt: NOW + 2500, restarts: 1, slots: [] }),
              instance({ id: 'coder#3', state: 'failed', lastError: 'health check timed out after 30 s', slots: [] }),
              instance({ id: 'coder#4', state: 'stalled', lastError: 'stalled: /health did not answer for 30012 ms', slots: [] }),
            ],
          }),
        ],
      }),
      NOW,
    );
    expect(m!.description).toBe('loading · 2 queued (1.2 s)');
    expect(m!.children.map((i) => i.description)).toEqual([
      'loading · :8081',
      'backoff · retry in 3 s · :8081 · 1 restart',
      'failed: health check timed out after 30 s · :8081',
      'stalled: stalled: /health did not answer for 30012 ms · :8081',
    ]);
    expect(m!.children.map((i) => i.icon.id)).toEqual(['loading~spin', 'history', 'error', 'debug-pause']);
    expect(m!.children.every((i) => i.children.length === 0)).toBe(true);
  });

  it.each([
    [[], 0, 'down'],
    [[], 1, 'loading'],
    [['ready', 'ready'], 2, 'ready'],
    [['ready', 'crashed'], 2, 'degraded'],
    [['ready', 'stalled'], 2, 'degraded'],
    [['failed'], 1, 'failed'],
    [['stopping'], 0, 'stopping'],
    [['stopped'], 0, 'down'],
  ] as const)('modelPhase(%j, replicas %i) = %s', (states, replicas, want) => {
    expect(modelPhase(model({ replicas, instances: states.map((state, i) => instance({ id: `coder#${i + 1}`, state })) }))).toBe(want);
  });
});

describe('buildJobRows', () => {
  const job = (over: Partial<TrackedJob>): TrackedJob => ({ jobId: 'j1', model: 'coder', title: 'Write a haiku', state: 'running', createdAt: NOW - 2500, text: '', lastSeq: 0, seq: 0, followed: true, ...over });

  it.each<[string, Partial<TrackedJob>, string, string]>([
    ['queued', { state: 'queued', position: 2 }, 'coder · queued #2', 'slotwise.job.active'],
    ['queued with an ETA', { state: 'queued', position: 3, etaMs: 4200 }, 'coder · queued #3 · ~4 s', 'slotwise.job.active'],
    ['queued with an ETA under a second', { state: 'queued', position: 1, etaMs: 120 }, 'coder · queued #1 · ~1 s', 'slotwise.job.active'],
    ['running', { state: 'running', lastSeq: 42 }, 'coder · running · 42 tok · 2.5 s', 'slotwise.job.active'],
    ['completed', { state: 'completed', usage: { promptTokens: 5, completionTokens: 128 }, timings: { queuedMs: 3, totalMs: 1900, tokensPerSecond: 67.37 } }, 'coder · done · 128 tok · 1.9 s · 67.4 tok/s', 'slotwise.job.done'],
    ['cancelled', { state: 'cancelled', lastSeq: 7 }, 'coder · cancelled · 7 tok', 'slotwise.job.done'],
    ['failed', { state: 'failed', error: { code: 'SW_ERR_UPSTREAM', message: 'llama-server stopped' } }, 'coder · failed: llama-server stopped', 'slotwise.job.done'],
    ['interrupted', { state: 'interrupted', seq: 3 }, 'coder · interrupted · 3 tok (the daemon stopped)', 'slotwise.job.done'],
  ])('%s', (_name, over, description, contextValue) => {
    const [row] = buildJobRows([job(over)], NOW);
    expect(row).toMatchObject({ id: 'job:j1', jobId: 'j1', label: 'Write a haiku', description, contextValue });
  });
});

describe('model row actions (package.json view/item/context)', () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as {
    contributes: { commands: { command: string }[]; menus: { 'view/item/context': { command: string; when: string; group: string }[] } };
  };
  /** The inline commands shown for a row: `view == X && viewItem == Y` or `viewItem =~ /re/`, as VS Code reads them. */
  const inline = (contextValue: string): string[] =>
    pkg.contributes.menus['view/item/context']
      .filter((m) => m.group.startsWith('inline') && m.when.includes('view == slotwise.slots'))
      .filter((m) => {
        const eq = /viewItem == (\S+)/.exec(m.when);
        const re = /viewItem =~ \/(.+)\/$/.exec(m.when);
        return eq ? eq[1] === contextValue : re ? new RegExp(re[1]!).test(contextValue) : false;
      })
      .sort((a, b) => a.group.localeCompare(b.group))
      .map((m) => m.command);

  it.each([
    ['slotwise.model.unloaded', ['slotwise.loadModel']],
    ['slotwise.model.ready', ['slotwise.restartModel', 'slotwise.unloadModel']],
    ['slotwise.model.down', ['slotwise.startModel']],
    ['slotwise.model.up', ['slotwise.restartModel', 'slotwise.stopModel']],
  ])('%s offers %j', (contextValue, commands) => {
    expect(inline(contextValue)).toEqual(commands);
    for (const c of commands) expect(pkg.contributes.commands.map((x) => x.command)).toContain(c);
  });
});
