// A fresh daemon's first load of a model runs llama-server at -lv 4 to read where the model went; every
// later launch that places it the same way runs at -lv 3 on the recorded placement
// (daemon/memory/calibration.ts recordedPlacement). At -lv 4 llama-server lists its whole prompt cache
// on every request, which slows it down as the cache grows: a sweep on a first load measures that, not
// the daemon users run day to day. So a sweep restarts the model once its placement is recorded.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RpcClient } from '../shared/rpc-client';
import type { Snapshot } from '../shared/protocol';
import { fetchSnapshot } from './status-sampler';

/** How long the loader may take to write calibration.json after the first replica is ready. */
const RECORD_WAIT_MS = 3_000;
const READY_WAIT_MS = 120_000;

/**
 * Restarts `model` once calibration.json holds its placement, and waits for every replica to be ready
 * again. Resolves to the snapshot after the restart, or undefined when nothing was recorded (the
 * stand-in prints no placement): then the daemon is left as it was.
 */
export async function restartAfterFirstLoad(o: { url: string; token: string; stateDir: string; model: string; signal?: AbortSignal }): Promise<Snapshot | undefined> {
  const deadline = Date.now() + RECORD_WAIT_MS;
  while (!(await placementRecorded(o.stateDir))) {
    if (Date.now() > deadline || o.signal?.aborted) return undefined;
    await sleep(50);
  }
  const client = new RpcClient({ url: o.url, token: o.token });
  try {
    await client.opened;
    await client.call('models.restart', { model: o.model });
  } finally {
    client.close();
  }
  const ready = Date.now() + READY_WAIT_MS;
  for (;;) {
    const snap = await fetchSnapshot(o.url, o.token);
    const m = snap.models.find((x) => x.name === o.model);
    if (m && m.instances.length === m.replicas && m.instances.every((i) => i.state === 'ready')) return snap;
    // A replica that failed is not coming back by itself (the supervisor gave up on it): say why now.
    const failed = m?.instances.find((i) => i.state === 'failed');
    if (failed) throw new Error(`bench: [${failed.id}] failed after its restart: ${failed.lastError ?? 'see its log'}`);
    if (Date.now() > ready || o.signal?.aborted) throw new Error(`bench: ${o.model} was not ready again within ${READY_WAIT_MS / 1000} s of its restart`);
    await sleep(100);
  }
}

async function placementRecorded(stateDir: string): Promise<boolean> {
  try {
    return (await readFile(join(stateDir, 'calibration.json'), 'utf8')).includes('"placement"');
  } catch {
    return false; // not written yet
  }
}
