// Scale-out policy for models with `replicas: "auto"`: pure, time passed in, table-tested.
// Saturation (not GPU %) drives it: all slots busy with requests waiting, sustained.
import { formatBytes } from '../../shared/format';

export interface ModelLoad {
  /** Wanted replicas now. */
  replicas: number;
  min: number;
  max: number;
  readyInstances: number;
  busySlots: number;
  totalSlots: number;
  queued: number;
  oldestWaitMs: number;
  /** Memory one more instance needs, bytes (measured buffers of a running one, else estimated). */
  instanceBytes: number;
  /** Free memory where it would go: VRAM when GPUs are sampled, else host RAM. */
  freeBytes: number;
  memoryKind: 'VRAM' | 'RAM';
  /**
   * The new replica's host prompt cache at its limit (`--cache-ram`; 0 or absent when off). Host RAM
   * whatever `memoryKind` is: with RAM it adds to `instanceBytes`, with VRAM it must fit `hostFreeBytes`.
   */
  promptCacheBytes?: number;
  /** Free host RAM (with VRAM as `memoryKind`: where the prompt cache goes). */
  hostFreeBytes?: number;
}

export interface ScaleState {
  saturatedSince?: number;
  idleSince?: number;
}

export interface ScaleOptions {
  saturatedForMs: number;
  idleForMs: number;
  /** Oldest wait at which an all-busy model counts as saturated (matches the capacity verdict). */
  saturatedWaitMs?: number;
}

export type ScaleDecision = { action: 'up' | 'down' | 'hold'; reason: string; state: ScaleState };

export function isSaturated(l: ModelLoad, waitMs: number): boolean {
  return l.readyInstances > 0 && l.totalSlots > 0 && l.busySlots >= l.totalSlots && l.queued > 0 && l.oldestWaitMs >= waitMs;
}

export function decide(l: ModelLoad, prev: ScaleState, now: number, opts: ScaleOptions): ScaleDecision {
  const waitMs = opts.saturatedWaitMs ?? 2000;
  const state: ScaleState = {
    saturatedSince: isSaturated(l, waitMs) ? (prev.saturatedSince ?? now) : undefined,
    idleSince: l.busySlots === 0 && l.queued === 0 ? (prev.idleSince ?? now) : undefined,
  };
  const secs = (ms: number): string => `${Math.round(ms / 1000)} s`;

  if (l.readyInstances < l.replicas) {
    return { action: 'hold', reason: `waiting for ${l.replicas - l.readyInstances} starting replica(s) before deciding`, state };
  }
  if (state.saturatedSince !== undefined) {
    const held = now - state.saturatedSince;
    const load = `all ${l.totalSlots} slots busy, ${l.queued} waiting (oldest ${(l.oldestWaitMs / 1000).toFixed(1)} s)`;
    if (held < opts.saturatedForMs) return { action: 'hold', reason: `saturated for ${secs(held)} of ${secs(opts.saturatedForMs)}: ${load}`, state };
    if (l.replicas >= l.max) return { action: 'hold', reason: `saturated (${load}) but already at maxReplicas ${l.max}`, state };
    const fit = memoryFit(l);
    if (fit.short) return { action: 'hold', reason: `saturated (${load}) but ${fit.short}`, state };
    return {
      action: 'up',
      reason: `saturated for ${secs(held)} (${load}); ${fit.ok}: adding replica ${l.replicas + 1}`,
      state: { idleSince: undefined, saturatedSince: undefined },
    };
  }
  if (state.idleSince !== undefined && l.replicas > l.min) {
    const held = now - state.idleSince;
    if (held >= opts.idleForMs) {
      return { action: 'down', reason: `idle for ${secs(held)}: draining and stopping replica ${l.replicas}`, state: { idleSince: undefined } };
    }
    return { action: 'hold', reason: `idle for ${secs(held)} of ${secs(opts.idleForMs)} before removing a replica`, state };
  }
  const busy = `${l.busySlots} of ${l.totalSlots} slots busy, ${l.queued} waiting`;
  return { action: 'hold', reason: `${busy}: ${l.replicas} replica(s) are enough`, state };
}

/**
 * Whether one more replica fits: its buffers where they go, and its host prompt cache in host RAM
 * (counted at its limit, as the loader counts it). `short` says what is missing, `ok` what fits.
 */
function memoryFit(l: ModelLoad): { short?: string; ok: string } {
  const gib = (b: number): string => formatBytes(b, { digits: 1 });
  const cache = l.promptCacheBytes ?? 0;
  const withCache = cache > 0 ? ` with its ${gib(cache)} prompt cache` : '';
  if (l.memoryKind === 'RAM') {
    const need = l.instanceBytes + cache;
    if (l.freeBytes <= need) return { short: `only ${gib(l.freeBytes)} RAM free, another replica needs ${gib(need)}${withCache}`, ok: '' };
    return { ok: `${gib(l.freeBytes)} RAM free ≥ ${gib(need)} needed${withCache}` };
  }
  if (l.freeBytes <= l.instanceBytes) return { short: `only ${gib(l.freeBytes)} VRAM free, another replica needs ${gib(l.instanceBytes)}`, ok: '' };
  if (cache > 0 && l.hostFreeBytes !== undefined && l.hostFreeBytes <= cache) {
    return { short: `only ${gib(l.hostFreeBytes)} RAM free, another replica's prompt cache needs ${gib(cache)} (lower promptCacheMiB; 0 turns it off)`, ok: '' };
  }
  return { ok: `${gib(l.freeBytes)} VRAM free ≥ ${gib(l.instanceBytes)} needed${cache > 0 ? `, and RAM for its ${gib(cache)} prompt cache` : ''}` };
}
