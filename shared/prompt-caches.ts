// The loaded models' host prompt caches (llama-server's --cache-ram) at their limit, per device, one
// way for the daemon's fit check (daemon/memory/fit-now.ts) and the extension's memory bar. Free
// memory shows only what the caches filled so far, so both take the whole limit off it (an upper bound).
import type { ModelStatus } from './protocol';

/** Bytes per device (`host` only, in practice): each live replica's cache at its limit; a model asked to start counts one. */
export function promptCachesByDevice(models: readonly ModelStatus[]): Map<string, number> {
  const caches = new Map<string, number>();
  for (const m of models) {
    if (m.replicas === 0 || !m.memory) continue;
    const replicas = Math.max(1, m.instances.filter((i) => i.state !== 'stopped').length);
    for (const d of m.memory.byDevice) {
      if (d.promptCacheBytes) caches.set(d.device, (caches.get(d.device) ?? 0) + d.promptCacheBytes * replicas);
    }
  }
  return caches;
}
