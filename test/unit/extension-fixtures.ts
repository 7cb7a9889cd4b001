// Snapshot builders for the extension's unit tests (vscode-free modules only).
import type { InstanceStatus, ModelStatus, Snapshot } from '../../shared/protocol';

export const NOW = 1_700_000_000_000;

export function instance(over: Partial<InstanceStatus> = {}, busy: number[] = [], slots = 4): InstanceStatus {
  return {
    id: 'coder#1',
    state: 'ready',
    since: NOW - 60_000,
    pid: 4242,
    port: 8081,
    restarts: 0,
    slots: Array.from({ length: slots }, (_, id) => (busy.includes(id) ? { id, busy: true, taskId: 100 + id, nDecoded: 182, nPromptTokens: 12, nCtx: 4096 } : { id, busy: false, nCtx: 4096 })),
    ...over,
  };
}

export function model(over: Partial<ModelStatus> = {}): ModelStatus {
  return {
    name: 'coder',
    path: '/models/coder.gguf',
    slotsPerInstance: 4,
    ctxPerSlot: 4096,
    gpuLayers: 'auto',
    replicas: 1,
    queue: { waiting: 0, oldestWaitMs: 0 },
    instances: [instance()],
    ...over,
  };
}

export function snapshot(over: Partial<Snapshot> = {}): Snapshot {
  const models = over.models ?? [model()];
  const slots = models.flatMap((m) => m.instances.filter((i) => i.state === 'ready').flatMap((i) => i.slots));
  const busy = slots.filter((s) => s.busy).length;
  const queued = models.reduce((n, m) => n + m.queue.waiting, 0);
  return {
    protocol: 1,
    version: '0.1.0',
    daemon: { pid: 1, uptimeMs: 5000, url: 'http://127.0.0.1:7373' },
    models,
    gpus: [],
    host: { memoryTotalBytes: 16 * 2 ** 30, memoryAvailableBytes: 8 * 2 ** 30, cpuCount: 2 },
    capacity: { busySlots: busy, totalSlots: slots.length, queued, headroomSlots: slots.length - busy, verdict: busy ? 'ok' : 'idle', reason: `${busy} of ${slots.length} slots busy` },
    warnings: [],
    ...over,
  };
}
