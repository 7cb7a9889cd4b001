// What `slotwise start` says about the models once the daemon answers: a daemon that runs but can
// serve nothing (no models, an autostart refused for memory, a llama-server that dies at launch)
// must not look like a clean start.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ModelStatus, Snapshot } from '../shared/protocol';
import type { RpcClient } from '../shared/rpc-client';

/** How long `start` watches autostart models that are still being planned or launched. */
export const START_WATCH_MS = 3000;

const EXITED = new Set(['crashed', 'backoff', 'failed']);

/** Whether a model is still where it fails fast: its memory check, or llama-server's first second. */
export function launching(m: ModelStatus): boolean {
  if (m.load?.state !== 'loading') return false;
  if (m.instances.some((i) => EXITED.has(i.state))) return false;
  return m.load.phase === 'planning' || m.load.phase === 'starting';
}

/** Warning lines (without the `slotwise: ` prefix) for the snapshot: empty when every model is fine so far. */
export function startWarnings(snap: Snapshot): string[] {
  if (snap.models.length === 0) {
    const where = snap.daemon.config ? ` in ${snap.daemon.config.path}` : '';
    return [`no models configured: add one under "models"${where}, then \`slotwise stop && slotwise start\``];
  }
  const lines: string[] = [];
  for (const m of snap.models) {
    if (m.load?.reason === 'no-memory' || m.load?.reason === 'failed') {
      // Memory: no llama-server ran, so its plan says more than a log would.
      const next = m.load.reason === 'no-memory' ? `slotwise plan ${m.name}` : `slotwise logs ${m.name}`;
      lines.push(`${m.name} not started: ${m.load.error?.message ?? m.load.reason} — \`${next}\``);
      continue;
    }
    for (const i of m.instances) {
      if (EXITED.has(i.state)) {
        const retry = i.state === 'backoff' ? ', restarting it' : '';
        lines.push(`[${i.id}] ${i.state === 'failed' ? 'failed' : 'exited at launch'}: ${i.lastError ?? 'no reason given'}${retry} — \`slotwise logs ${i.id}\``);
      }
    }
  }
  return lines;
}

/** The daemon's status once no model is launching any more (or `until`, epoch ms), as warning lines. */
export async function watchStart(client: RpcClient, until: number): Promise<string[]> {
  for (;;) {
    const snap = await client.call('status.get');
    if (!snap.models.some(launching) || Date.now() >= until) return startWarnings(snap);
    await sleep(100);
  }
}
