// A model's load state as one short phrase, shared by `slotwise status` and the extension's model row.
import type { ModelLoadStatus } from './protocol';

/**
 * `loading 42 %` while llama-server reads the weights, `loading · warmup` (planning, context) after,
 * `loading` before anything is known; `unloaded (idle)`, `unloaded (no memory)`; `ready`.
 */
export function loadText(load: ModelLoadStatus): string {
  if (load.state === 'unloaded') return load.reason ? `unloaded (${load.reason === 'no-memory' ? 'no memory' : load.reason})` : 'unloaded';
  if (load.state === 'ready') return 'ready';
  if (load.phase === 'weights' && load.progress !== undefined) return `loading ${Math.floor(load.progress * 100)} %`;
  if (load.phase && load.phase !== 'starting') return `loading · ${load.phase}`;
  return 'loading';
}
