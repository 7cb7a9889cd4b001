// Where llama-server put a model, as one phrase, shared by `slotwise status` and the extension's model row.
import type { Placement } from './protocol';

/**
 * `33/33 on GPU (model CUDA0 3821 MiB, kv CUDA0 512 MiB)`, `CPU only (model CPU_Mapped 0.52 MiB, …)`;
 * a placement this process did not print (it runs at -lv 3) ends `as recorded 2026-11-26 23:05 UTC`.
 */
export function placementText(p: Placement): string {
  let text = p.layersOnGpu !== undefined ? `${p.layersOnGpu}/${p.layersTotal ?? '?'} on GPU` : 'CPU only';
  const buffers = Object.entries(p.buffers).map(([k, v]) => `${k} ${v < 10 ? v.toFixed(2) : v.toFixed(0)} MiB`);
  if (buffers.length) text += ` (${buffers.join(', ')})`;
  if (p.recordedAt !== undefined) text += ` as recorded ${new Date(p.recordedAt).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  return text;
}
