// The photos scenario: text streams decoding at a GPU's pace through the daemon while another client
// uploads photos (4.7 MB JSON bodies) to a vision model, one after another. A daemon that parses a
// photo on its event loop holds every stream's next token meanwhile. Three phases, each twice: no
// photos; photos sent straight to the vision model's llama-server (what uploading costs this machine
// at all: the upstream parsing them, the sender, the shared cores); photos through the daemon. The
// daemon runs in its own process and both upstreams are the stand-in (test/fixtures/fake-llama-server.mjs),
// so no llama-server takes the cores. The photos go from a worker thread, so the sender's own work does
// not delay the streams' reader.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { Agent, request } from 'undici';
import { SlotwiseError } from '../shared/errors';
import { lagQuantileMs, scrapeLag } from './daemon-lag';
import { modelConfig, type ScenarioContext } from './scenarios';
import { spawnDaemon } from './soak-host';
import { summarize } from './stats';
import { fetchInstanceKeys, fetchSnapshot } from './status-sampler';
import type { PhotosMode, PhotosResult, PhotosRun } from './types';

export interface PhotosOptions {
  modelPath: string;
  /** A projector GGUF for the vision model (the daemon checks it at launch; the stand-in ignores it). */
  mmproj: string;
  /** The stand-in llama-server script. */
  upstream: string;
  streams: number;
  tokenMs: number;
  phaseMs: number;
  rounds: number;
  /** Bytes of the photo's base64 in each upload. */
  photoBytes: number;
  /** Pause after each upload's answer before the next. */
  pauseMs: number;
}

/** The uploads' loop, in a worker: POST the body to `url` until `endAt` (Date.now() time), pausing `pauseMs` after each answer. */
const SENDER = `
const { workerData, parentPort } = require('node:worker_threads');
(async () => {
  const { url, headers, body, endAt, pauseMs } = workerData;
  let sent = 0, failed = 0, error;
  while (Date.now() < endAt) {
    try {
      const res = await fetch(url, { method: 'POST', headers, body });
      await res.arrayBuffer();
      if (res.ok) sent++; else { failed++; error = 'HTTP ' + res.status; }
    } catch (e) { failed++; error = String(e && e.message || e); }
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  parentPort.postMessage({ sent, failed, error });
})();
`;

export async function photosScenario(ctx: ScenarioContext, o: PhotosOptions): Promise<PhotosResult | undefined> {
  if (!ctx.daemonCliPath) {
    ctx.progress?.line('photos: skipped — it needs the daemon in its own process (run from the CLI)');
    return undefined;
  }
  ctx.progress?.line(`photos: ${o.streams} text streams (a token every ${o.tokenMs} ms) while ${(o.photoBytes / 2 ** 20).toFixed(1)} MiB photos are uploaded: none, straight to the upstream, through the daemon`);
  const text = { ...modelConfig('text', o.modelPath, { slots: o.streams, replicas: 1, args: ['--fake-token-ms', String(o.tokenMs)] }), ctxPerSlot: 16_384 };
  const vision = { ...modelConfig('vision', o.modelPath, { slots: 2, replicas: 1, args: ['--fake-token-ms', String(o.tokenMs)] }), mmproj: o.mmproj };
  const d = await spawnDaemon({ cliPath: ctx.daemonCliPath, model: text, others: [vision], llamaServer: o.upstream, env: ctx.env, signal: ctx.signal });
  const agent = new Agent({ connections: o.streams + 4 });
  try {
    const snapshot = await fetchSnapshot(d.url, d.token);
    const keys = await fetchInstanceKeys(d.url, d.token);
    const inst = snapshot.models.find((m) => m.name === 'vision')?.instances[0];
    if (inst?.port === undefined) throw new SlotwiseError('SW_ERR_INTERNAL', 'bench photos: the vision model has no port');
    const photo = `data:image/png;base64,${randomBytes(Math.ceil((o.photoBytes * 3) / 4)).toString('base64').slice(0, o.photoBytes)}`;
    const body = Buffer.from(JSON.stringify({ model: 'vision', max_tokens: 1, stream: true, messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in this picture?' }, { type: 'image_url', image_url: { url: photo } }] }] }));
    const targets: Record<Exclude<PhotosMode, 'none'>, { url: string; token: string }> = {
      direct: { url: `http://127.0.0.1:${inst.port}`, token: keys[inst.id]! },
      daemon: { url: d.url, token: d.token },
    };
    const runs: (PhotosRun & { gaps: number[] })[] = [];
    for (let round = 0; round < o.rounds; round++) {
      for (const mode of ['none', 'direct', 'daemon'] as const) {
        ctx.progress?.update(`photos: ${mode === 'none' ? 'no photos' : `photos ${mode === 'direct' ? 'straight to the upstream' : 'through the daemon'}`} (round ${round + 1}/${o.rounds})`);
        runs.push(await phase(d, agent, o, mode, mode === 'none' ? undefined : { ...targets[mode], body }, ctx.signal));
      }
    }
    const pooled = (mode: PhotosMode): number[] => runs.filter((r) => r.mode === mode).flatMap((r) => r.gaps);
    const p99 = (mode: PhotosMode): number => summarize(pooled(mode)).p99;
    return {
      streams: o.streams,
      tokenMs: o.tokenMs,
      phaseMs: o.phaseMs,
      rounds: o.rounds,
      photoBytes: body.length,
      runs: runs.map(({ gaps: _, ...r }) => r),
      gapP99Ms: { none: p99('none'), direct: p99('direct'), daemon: p99('daemon') },
      gapP99Ratio: p99('daemon') / p99('direct'),
    };
  } finally {
    await agent.close();
    await d.stop();
  }
}

/** One phase: the streams run, photos (if any) go to `upload` from a worker; the gaps between each stream's chunks while it lasts. */
async function phase(
  d: { url: string; token: string },
  agent: Agent,
  o: PhotosOptions,
  mode: PhotosMode,
  upload: { url: string; token: string; body: Buffer } | undefined,
  signal: AbortSignal | undefined,
): Promise<PhotosRun & { gaps: number[] }> {
  const stop = new AbortController();
  const gaps: number[] = [];
  let measuring = false;
  let failure: unknown;
  const maxTokens = Math.ceil((o.phaseMs + 5_000) / o.tokenMs);
  const stream = async (): Promise<void> => {
    const res = await request(`${d.url}/v1/completions`, {
      method: 'POST',
      dispatcher: agent,
      signal: AbortSignal.any([stop.signal, ...(signal ? [signal] : [])]),
      headers: { authorization: `Bearer ${d.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text', prompt: 'Tell a long story.', max_tokens: maxTokens, stream: true }),
    });
    if (res.statusCode !== 200) throw new SlotwiseError('SW_ERR_UPSTREAM', `bench photos: a text stream answered ${res.statusCode}: ${(await res.body.text()).slice(0, 200)}`);
    let last: number | undefined;
    for await (const _ of res.body) {
      const now = performance.now();
      if (measuring && last !== undefined) gaps.push(now - last);
      last = now;
    }
  };
  const ended = Promise.all(
    Array.from({ length: o.streams }, () =>
      stream().catch((err: unknown) => {
        if (!stop.signal.aborted) failure ??= err;
      }),
    ),
  );
  try {
    await sleep(500); // every stream under way
    const before = await scrapeLag(d.url, d.token);
    measuring = true;
    const uploads = upload ? await uploadFor(upload, o) : (await sleep(o.phaseMs), { sent: 0, failed: 0 });
    measuring = false;
    const after = await scrapeLag(d.url, d.token);
    if (upload && uploads.sent === 0) throw new SlotwiseError('SW_ERR_UPSTREAM', `bench photos: no upload succeeded (${mode}): ${uploads.error ?? 'unknown'}`);
    if (failure !== undefined) throw failure;
    return { mode, photos: uploads.sent, failed: uploads.failed, gapMs: summarize(gaps), daemonLagMs: { p99: lagQuantileMs(before, after, 0.99), max: after.maxSeconds * 1000 }, gaps };
  } finally {
    stop.abort();
    await ended;
  }
}

/** Uploads the photo again and again for `o.phaseMs`, from a worker thread. */
async function uploadFor(upload: { url: string; token: string; body: Buffer }, o: PhotosOptions): Promise<{ sent: number; failed: number; error?: string }> {
  const worker = new Worker(SENDER, {
    eval: true,
    workerData: { url: `${upload.url}/v1/chat/completions`, headers: { authorization: `Bearer ${upload.token}`, 'content-type': 'application/json' }, body: upload.body, endAt: Date.now() + o.phaseMs, pauseMs: o.pauseMs },
  });
  try {
    return await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  } finally {
    await worker.terminate();
  }
}
