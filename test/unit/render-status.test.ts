import { describe, expect, it } from 'vitest';
import { placementLine, renderStatus, duration } from '../../cli/commands/render-status';
import type { ModelStatus, Snapshot } from '../../shared/protocol';

const model = (over: Partial<ModelStatus> = {}): ModelStatus => ({
  name: 'coder',
  path: '/m/coder.gguf',
  slotsPerInstance: 4,
  ctxPerSlot: 4096,
  gpuLayers: 'auto',
  replicas: 1,
  queue: { waiting: 0, oldestWaitMs: 0 },
  instances: [],
  ...over,
});

const snapshot = (models: ModelStatus[]): Snapshot => ({
  protocol: 1,
  version: '0.1.0',
  daemon: { pid: 1, uptimeMs: 65_000, url: 'http://127.0.0.1:7373' },
  models,
  gpus: [{ index: 0, name: 'RTX 4090', utilizationPct: 96, memoryUsedMiB: 20000, memoryTotalMiB: 24564 }],
  capacity: { busySlots: 1, totalSlots: 4, queued: 0, headroomSlots: 3, verdict: 'ok', reason: 'GPU at 96% but 3 of 4 slots free: room for 3 more requests, no need to scale' },
  warnings: ['nvidia-smi: could not parse line "x"'],
});

describe('renderStatus', () => {
  it('shows the verdict, GPUs, warnings, a row per instance with a slot bar and the failure reason', () => {
    const text = renderStatus(
      snapshot([
        model({
          queue: { waiting: 2, oldestWaitMs: 3200 },
          instances: [
            { id: 'coder#1', state: 'ready', since: 0, pid: 11, port: 4000, restarts: 1, tokensPerSecond: 52.25, slots: [0, 1, 2, 3].map((id) => ({ id, busy: id === 1, nDecoded: 182, taskId: 9 })) },
            { id: 'coder#2', state: 'failed', since: 0, restarts: 5, lastError: 'crashed 5 times in 10 min; last: killed by SIGSEGV', slots: [] },
            { id: 'coder#3', state: 'stalled', since: 0, pid: 12, port: 4001, restarts: 0, lastError: 'stalled: 2 request(s) in flight made no progress for 30004 ms', slots: [] },
          ],
        }),
      ]),
      { slots: true },
    );
    expect(text).toContain('up 1m 5s');
    expect(text).toContain('Capacity: ok · 1/4 slots busy · 0 queued — GPU at 96% but 3 of 4 slots free');
    expect(text).toContain('GPU 0 RTX 4090: 96% util · 20000/24564 MiB');
    expect(text).toContain('warning: nvidia-smi: could not parse line "x"');
    expect(text).toMatch(/coder\s+coder#1\s+ready\s+11\s+4000\s+░█░░ 1\/4\s+2 \(3\.2 s\)\s+52\.3\s+1/);
    expect(text).toContain('slot 1: busy · task 9 · 182 tok');
    expect(text).toMatch(/coder#2\s+failed/);
    expect(text).toContain('↳ crashed 5 times in 10 min; last: killed by SIGSEGV');
    expect(text).toMatch(/coder#3\s+stalled\s+12/);
    expect(text).toContain('↳ stalled: 2 request(s) in flight made no progress for 30004 ms');
    expect(text).not.toContain('\x1b['); // no colour unless asked
  });

  it('counts background requests in the queue column', () => {
    const text = renderStatus(snapshot([model({ queue: { waiting: 5, oldestWaitMs: 2100, byClass: { interactive: 1, background: 4 } } })]));
    expect(text).toContain('5 (2.1 s, 4 bg)');
  });

  it('names the request or job holding each slot and marks foreign use', () => {
    const slots = [
      { id: 0, busy: true, requestId: '1a2b3c4d-aaaa', source: 'http' as const, since: 0, taskId: 4, next: '5e6f7a8b-cccc' },
      { id: 1, busy: true, requestId: '9f8e7d6c-bbbb', source: 'ws' as const, since: 0, tokens: 21 },
      { id: 2, busy: true, foreign: true },
      { id: 3, busy: false },
    ];
    const text = renderStatus(snapshot([model({ instances: [{ id: 'coder#1', state: 'ready', since: 0, restarts: 0, slots }] })]), { slots: true });
    expect(text).toContain('slot 0: busy · request 1a2b3c4d · task 4 · 0 tok · prompt 0 · next 5e6f7a8b');
    expect(text).toContain('slot 1: busy · job 9f8e7d6c · task ? · 21 tok');
    expect(text).toContain('slot 2: busy · foreign client');
    expect(text).toContain('slot 3: idle');
    expect(text).toContain('██▒░ 3/4');
  });

  it('explains an empty config, naming the file the daemon read or would have', () => {
    const none = snapshot([]);
    expect(renderStatus(none)).toContain('No models configured. Add one under "models" in the config file, e.g.');
    const missing = { ...none, daemon: { ...none.daemon, config: { path: '/home/u/.config/slotwise/config.json', exists: false } } };
    expect(renderStatus(missing)).toContain('Add one under "models" in /home/u/.config/slotwise/config.json (no such file yet: create it), e.g.\n  { "models": { "mymodel": { "path": "~/models/model.gguf", "slots": 4 } } }\nthen restart the daemon');
    const empty = { ...none, daemon: { ...none.daemon, config: { path: '/etc/sw.json', exists: true } } };
    expect(renderStatus(empty)).toContain('Add one under "models" in /etc/sw.json, e.g.');
  });

  it('describes placement before and after launch', () => {
    expect(placementLine(model({ info: { fileBytes: 4_368_438_944, layers: 32, architecture: 'llama' } }))).toBe(
      'coder · llama, 32 layers, 4368.4 MB · 4 slots × 4096 ctx · gpu layers auto',
    );
    const launched = model({
      gpuLayers: 'all',
      instances: [{ id: 'coder#1', state: 'ready', since: 0, restarts: 0, slots: [], offload: { layersOnGpu: 33, layersTotal: 33, buffers: { 'model CUDA0': 3820.93, 'kv CUDA0': 512 } } }],
    });
    expect(placementLine(launched)).toBe('coder · 4 slots × 4096 ctx · gpu layers all → 33/33 on GPU (model CUDA0 3821 MiB, kv CUDA0 512 MiB)');
     // A placement the process did not print (it ran at -lv 3) says which load it comes from.
    const recorded = model({
      gpuLayers: 0,
      instances: [{ id: 'coder#1', state: 'ready', since: 0, restarts: 0, slots: [], offload: { layersOnGpu: 0, layersTotal: 3, buffers: { 'model CPU': 0.52 }, recordedAt: Date.UTC(2026, 10, 26, 23, 5) } }],
    });
    expect(placementLine(recorded)).toBe('coder · 4 slots × 4096 ctx · gpu layers 0 → 0/3 on GPU (model CPU 0.52 MiB) as recorded 2026-11-26 23:05 UTC');
  });

  it('shows plan vs actual memory, and an on-demand model as unloaded (why) or loading', () => {
    const GiB = 2 ** 30;
    const m = model({ memory: { planBytes: 3.1 * GiB, actualBytes: 3.0 * GiB, byDevice: [] } });
    expect(placementLine(m)).toBe('coder · 4 slots × 4096 ctx · gpu layers auto · plan 3.1 GiB · actual 3.0 GiB');
    expect(placementLine(model({ memory: { planBytes: 3.1 * GiB, byDevice: [] } }))).toMatch(/· plan 3\.1 GiB$/);
    // The host prompt cache is apart from the plan-vs-actual pair: it fills after the load.
    expect(placementLine(model({ memory: { planBytes: 3.1 * GiB, actualBytes: 3.0 * GiB, promptCacheBytes: 2 * GiB, byDevice: [] } }))).toMatch(/· plan 3\.1 GiB · actual 3\.0 GiB · prompt cache up to 2\.0 GiB$/);
    // What a projector lets it read, and a draft model's acceptance.
    expect(placementLine(model({ info: { fileBytes: 4e9, architecture: 'gemma3', layers: 34, modalities: ['vision'] }, draftTokens: { drafted: 100, accepted: 72 }, draftAcceptance: 0.72 }))).toBe(
      'coder · gemma3, 34 layers, 4000.0 MB, reads images · 4 slots × 4096 ctx · gpu layers auto · draft 72 % accepted',
    );
    const text = renderStatus(snapshot([model({ replicas: 0, load: { state: 'unloaded', reason: 'idle' } }), model({ name: 'b', replicas: 1, load: { state: 'loading' } })]));
    expect(text).toMatch(/coder\s+-\s+unloaded \(idle\)/);
    expect(text).toMatch(/b\s+-\s+loading/);
  });

  it('shows load progress on the loading replica\'s row, and why a model that does not fit is unloaded', () => {
    const starting = { id: 'coder#1', state: 'loading' as const, since: 0, restarts: 0, slots: [] };
    const row = (load: ModelStatus['load']) => renderStatus(snapshot([model({ instances: [starting], load })])).split('\n').find((l) => l.startsWith('coder'))!;
    expect(row({ state: 'loading', phase: 'weights', progress: 0.427 })).toMatch(/coder\s+coder#1\s+loading 42 %/);
    expect(row({ state: 'loading', phase: 'warmup', progress: 1 })).toMatch(/coder#1\s+loading · warmup/);
    expect(row({ state: 'loading', phase: 'starting' })).toMatch(/coder#1\s+loading\s/);
    const message = 'model "coder" needs 9.1 GiB of host RAM, which has 4.0 GiB free: lower slots or ctxPerSlot';
    const text = renderStatus(snapshot([model({ replicas: 0, load: { state: 'unloaded', reason: 'no-memory', error: { code: 'SW_ERR_NOT_ENOUGH_MEMORY', message } } })]));
    expect(text).toMatch(/coder\s+-\s+unloaded \(no memory\)/);
    expect(text).toContain(`    ↳ ${message}`);
  });

  it.each([
    [999, '0s'],
    [59_000, '59s'],
    [3_600_000 + 120_000, '1h 2m'],
  ])('duration(%i) = %s', (ms, want) => expect(duration(ms)).toBe(want));
});
