// `slotwise bench --soak`: host a daemon in its own process (or attach to the running one), soak it,
// write soak.json and soak.md.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { requireDaemon } from '../cli/locate';
import { restartAfterFirstLoad } from './after-first-load';
import { loadConfig } from '../daemon/config/load';
import { runSetup, type ProgressStream } from '../toolchain/setup';
import { fetchSnapshot } from './status-sampler';
import { resolveModel } from './run';
import { PROMPT_ROOM, runSoak, TINY_SOAK_CTX, type SoakReport } from './soak';
import { renderSoakMarkdown } from './soak-report';
import { spawnDaemon } from './soak-host';
import type { Progress } from './sweep';

export interface SoakRequest {
  minutes: number;
  clients: number;
  intervalMs: number;
  attach: boolean;
  model?: string;
  slots?: number;
  replicas?: number;
  /** dist/cli.js: the hosted daemon runs as `node CLI daemon`. */
  cliPath: string;
  stateDir: string;
  configPath?: string;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  progress?: Progress;
  setupStream: ProgressStream;
}

export async function soak(req: SoakRequest): Promise<SoakReport> {
  const run = { minutes: req.minutes, clients: req.clients, intervalMs: req.intervalMs, seed: 1, signal: req.signal, progress: req.progress };
  if (req.attach) {
    const ep = await requireDaemon(req.stateDir);
    const snap = await fetchSnapshot(ep.url, ep.token);
    const m = snap.models.find((x) => x.name === req.model) ?? snap.models[0];
    return runSoak({ ...run, url: ep.url, token: ep.token, model: req.model ?? m?.name ?? 'tiny', ctxPerSlot: m?.ctxPerSlot ?? 2 * PROMPT_ROOM });
  }
  const config = await loadConfig({ path: req.configPath, env: req.env, allowMissing: !req.configPath });
  const resolved = await resolveModel(req, config);
  // The tiny model's slots get room for long aborted requests (see soak.ts); a real model keeps its
  // own (at least room for the longest random prompt and some output).
  const model = { ...resolved, ctxPerSlot: req.model === undefined ? TINY_SOAK_CTX : Math.max(resolved.ctxPerSlot, 2 * PROMPT_ROOM) };
  if (config.llamaServer === 'auto') await runSetup({ env: req.env, quietIfCached: true, stderr: req.setupStream, signal: req.signal });
  req.progress?.line(`soak: ${req.minutes} min, ${req.clients} clients, ${model.replicas} × ${model.name} (${model.slots} slots), daemon in its own process`);
  const daemon = await spawnDaemon({ cliPath: req.cliPath, model, llamaServer: config.llamaServer, env: req.env, signal: req.signal });
  try {
    // The hosted daemon's state dir is new, so its first load runs at -lv 4 and could relaunch at
    // -lv 3 once the prompt cache fills, mid-soak, at whatever moment its requests drained (an
    // interval with no llama-server to measure). Soak the daemon as users run it from the second launch on.
    await restartAfterFirstLoad({ url: daemon.url, token: daemon.token, stateDir: daemon.stateDir, model: model.name, signal: req.signal });
    return await runSoak({ ...run, url: daemon.url, token: daemon.token, model: model.name, ctxPerSlot: model.ctxPerSlot });
  } finally {
    await daemon.stop();
  }
}

export async function writeSoakReport(dir: string, report: SoakReport): Promise<{ json: string; md: string }> {
  const out = resolve(dir);
  await mkdir(out, { recursive: true });
  const files = { json: join(out, 'soak.json'), md: join(out, 'soak.md') };
  await writeFile(files.json, `${JSON.stringify(report, null, 1)}\n`);
  await writeFile(files.md, renderSoakMarkdown(report));
  return files;
}
