// Applies decide() every second to models with `replicas: "auto"`: starts a replica when a model
// stays saturated and memory allows; drains (no new requests), then stops an extra one when idle.
// Every decision is logged once when its reason changes and shown in status.
import type { Config } from '../config/types';
import type { Logger } from '../../platform/log';
import type { ModelStatus, Snapshot } from '../../shared/protocol';
import type { Scheduler } from '../scheduler/scheduler';
import type { Supervisor } from '../runtime/supervisor';
import { capacityInputs } from '../status/hub';
import { decide, type ModelLoad, type ScaleState } from './decide';

export interface AutoscalerOptions {
  supervisor: Supervisor;
  scheduler: Scheduler;
  snapshot: () => Snapshot;
  config: Config;
  logger: Logger;
  intervalMs?: number;
}

/** Starts the loop; returns a stop function. */
export function startAutoscaler(opts: AutoscalerOptions): () => void {
  const auto = opts.config.models.filter((m) => m.replicas === 'auto');
  if (auto.length === 0) return () => undefined;
  const states = new Map<string, ScaleState>();
  const lastReason = new Map<string, string>();
  const timer = setInterval(() => {
    const snap = opts.snapshot();
    for (const cfg of auto) {
      const m = snap.models.find((x) => x.name === cfg.name);
      if (!m || m.replicas === 0) continue; // the user stopped the model: nothing to scale
      const draining = m.scaling?.draining ?? [];
      if (draining.length) {
        finishDrains(opts, m, draining);
        continue;
      }
      const load = modelLoad(m, snap, cfg.maxReplicas);
      const d = decide(load, states.get(cfg.name) ?? {}, Date.now(), { ...opts.config.autoscale });
      states.set(cfg.name, d.state);
      if (lastReason.get(cfg.name) !== d.reason.replace(/\d+(\.\d+)? s/g, '')) {
        lastReason.set(cfg.name, d.reason.replace(/\d+(\.\d+)? s/g, ''));
        (d.action === 'hold' ? opts.logger.debug : opts.logger.info)(`[${cfg.name}] autoscale ${d.action}: ${d.reason}`);
      }
      opts.supervisor.recordScaling(cfg.name, { at: Date.now(), action: d.action, reason: d.reason });
      if (d.action === 'up') opts.supervisor.setReplicas(cfg.name, m.replicas + 1);
      else if (d.action === 'down') opts.supervisor.drain(cfg.name);
    }
  }, opts.intervalMs ?? 1000);
  timer.unref();
  return () => clearInterval(timer);
}

/** A drained instance stops once the daemon has nothing in flight there. */
function finishDrains(opts: AutoscalerOptions, m: ModelStatus, draining: string[]): void {
  const view = opts.scheduler.queueView(m.name);
  if (draining.every((id) => (view?.inFlight(id) ?? 0) === 0)) {
    opts.logger.info(`[${m.name}] autoscale: ${draining.join(', ')} drained; stopping`);
    opts.supervisor.setReplicas(m.name, m.replicas - draining.length);
  }
}

function modelLoad(m: ModelStatus, snap: Snapshot, max: number): ModelLoad {
  // The same busy/total/queue figures the capacity verdict uses, for this one model.
  const load = capacityInputs([m], snap.gpus);
  const ready = m.instances.filter((i) => i.state === 'ready');
  // Measured: the buffers a running instance of this model holds; else the file plus 25% for KV and compute.
  const measuredMiB = ready.map((i) => Object.values(i.offload?.buffers ?? {}).reduce((a, b) => a + b, 0)).find((v) => v > 0);
  const instanceBytes = measuredMiB ? measuredMiB * 1024 * 1024 : (m.info?.fileBytes ?? 0) * 1.25;
  const gpuFree = (load.gpuMemFreeMiB ?? 0) * 1024 * 1024;
  const onGpu = snap.gpus.length > 0;
  return {
    replicas: m.replicas,
    min: m.scaling?.min ?? 1,
    max,
    readyInstances: load.readyInstances,
    busySlots: load.busySlots,
    totalSlots: load.totalSlots,
    queued: load.queued,
    oldestWaitMs: load.oldestWaitMs,
    instanceBytes,
    // llama.cpp's --fit keeps 1 GiB free per GPU: count only what is above that margin.
    freeBytes: onGpu ? Math.max(0, gpuFree - snap.gpus.length * 1024 ** 3) : (snap.host?.memoryAvailableBytes ?? 0),
    memoryKind: onGpu ? 'VRAM' : 'RAM',
    ...(m.memory?.promptCacheBytes ? { promptCacheBytes: m.memory.promptCacheBytes } : {}),
    ...(snap.host ? { hostFreeBytes: snap.host.memoryAvailableBytes } : {}),
  };
}
