// A daemon in its own process (`node dist/cli.js daemon`, as users run it) for the soak and the load
// scenario, so the RSS it reports is the daemon's alone (an in-process daemon would count the
// clients' memory too). Temp state dir, any free port; stop()
// removes everything.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config, ModelConfig } from '../daemon/config/types';
import { SlotwiseError } from '../shared/errors';
import type { DaemonInfo } from '../shared/protocol';
import { fetchSnapshot } from './status-sampler';

export interface SpawnedDaemon {
  url: string;
  token: string;
  pid: number;
  stateDir: string;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  cliPath: string;
  model: ModelConfig;
  /** More models in the same daemon (the photos scenario's vision model beside its text one). */
  others?: readonly ModelConfig[];
  llamaServer: string;
  /** Config keys beyond the model (default: the daemon's defaults). */
  routing?: Config['routing'];
  queue?: Config['queue'];
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

export async function spawnDaemon(opts: SpawnOptions): Promise<SpawnedDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'slotwise-soak-'));
  const m = opts.model;
  const models = [m, ...(opts.others ?? [])];
  const config = {
    llamaServer: opts.llamaServer,
    ...(opts.routing ? { routing: opts.routing } : {}),
    ...(opts.queue ? { queue: opts.queue } : {}),
    models: Object.fromEntries(
      models.map((x) => [x.name, { path: x.path, slots: x.slots, ctxPerSlot: x.ctxPerSlot, replicas: x.replicas, args: x.args, promptCacheMiB: x.promptCacheMiB, ...(x.mmproj ? { mmproj: x.mmproj } : {}) }]),
    ),
  };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  const stateDir = join(dir, 'state');
  let output = '';
  const child = spawn(process.execPath, [opts.cliPath, 'daemon', '--state-dir', stateDir, '--config', join(dir, 'config.json'), '--port', '0'], {
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      if ((await Promise.race([exited.then(() => true), sleep(20_000, false)])) === false) child.kill('SIGKILL');
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new SlotwiseError('SW_ERR_INTERNAL', `bench: the daemon exited with code ${child.exitCode}: ${output.trim().split('\n').at(-1) ?? ''}`);
      if (Date.now() > deadline || opts.signal?.aborted) throw opts.signal?.reason ?? new SlotwiseError('SW_ERR_HEALTH_TIMEOUT', `bench: the daemon was not ready within 120 s: ${output.trim().split('\n').at(-1) ?? ''}`);
      const info = await readFile(join(stateDir, 'daemon.json'), 'utf8').then((t) => JSON.parse(t) as DaemonInfo).catch(() => undefined);
      if (info && info.pid === child.pid) {
        const token = (await readFile(join(stateDir, 'token'), 'utf8')).trim();
        const snap = await fetchSnapshot(info.url, token).catch(() => undefined);
        const ready = (x: ModelConfig): boolean => {
          const insts = snap?.models.find((y) => y.name === x.name)?.instances ?? [];
          return insts.length === x.replicas && insts.every((i) => i.state === 'ready');
        };
        if (models.every(ready)) return { url: info.url, token, pid: child.pid!, stateDir, stop };
      }
      await sleep(200);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
