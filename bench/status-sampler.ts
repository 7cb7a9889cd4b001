// Polls the daemon's /api/status every 250 ms during a level: busy/total slots, queue, GPU %, and
// CPU % of the model's llama-servers (from the snapshot, else read from /proc: the bench runs on the
// daemon's host) — the "GPU % vs slots" data.
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { request, type Dispatcher } from 'undici';
import type { Snapshot } from '../shared/protocol';
import { modelSlots } from '../shared/slots';
import { CLOCK_TICKS_PER_SECOND, readHostCpuTimes, readProcess, type HostCpuTimes } from '../platform/procfs';
import { mean } from './stats';
import type { StatusSample, Utilization } from './types';

export interface SamplerOptions {
  url: string;
  token: string;
  model: string;
  dispatcher: Dispatcher;
  intervalMs?: number;
}

export class StatusSampler {
  #opts: SamplerOptions;
  #timer: NodeJS.Timeout | undefined;
  #t0 = 0;
  #samples: StatusSample[] = [];
  #inFlight: Promise<void> | undefined;
  #procTicks = new Map<number, { ticks: number; at: number }>();
  #host: HostCpuTimes | undefined;
  #cores = Math.max(1, cpus().length);

  constructor(opts: SamplerOptions) {
    this.#opts = opts;
  }

  /** Fetches one snapshot now. */
  snapshot(): Promise<Snapshot> {
    return fetchSnapshot(this.#opts.url, this.#opts.token, this.#opts.dispatcher);
  }

  start(): void {
    this.#samples = [];
    this.#t0 = performance.now();
    this.#host = readHostCpuTimes();
    this.#procTicks.clear(); // the first poll of a level only primes the per-process counters
    const tick = (): void => {
      if (this.#inFlight) return; // a slow poll is not stacked under the next one
      this.#inFlight = this.#sample()
        .catch((err: unknown) => {
          // A missed poll only thins the timeline; the level's numbers do not depend on it.
          void err;
        })
        .finally(() => (this.#inFlight = undefined));
    };
    tick();
    this.#timer = setInterval(tick, this.#opts.intervalMs ?? 250);
  }

  /** Stops polling and returns the level's timeline. */
  async stop(): Promise<StatusSample[]> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
    return this.#samples;
  }

  async #sample(): Promise<void> {
    const snap = await this.snapshot();
    const tMs = performance.now() - this.#t0;
    const model = snap.models.find((m) => m.name === this.#opts.model);
    const instances = (model?.instances ?? []).filter((i) => i.state === 'ready');
    const s: StatusSample = {
      tMs,
      busySlots: model ? modelSlots(model).busy : 0,
      totalSlots: model ? modelSlots(model).total : 0,
      queued: model?.queue.waiting ?? 0,
    };
    if (snap.gpus.length) s.gpuPct = Math.max(...snap.gpus.map((g) => g.utilizationPct));
    const fromSnapshot = instances.every((i) => i.usage) && instances.length > 0;
    if (fromSnapshot) s.cpuPct = instances.reduce((a, i) => a + (i.usage?.cpuPct ?? 0), 0) / this.#cores;
    else {
      const pct = await this.#procCpuPct(instances.flatMap((i) => (i.pid === undefined ? [] : [i.pid])));
      if (pct !== undefined) s.cpuPct = pct;
    }
    const host = readHostCpuTimes();
    if (this.#host && host.total > this.#host.total) s.hostCpuPct = (100 * (host.busy - this.#host.busy)) / (host.total - this.#host.total);
    this.#host = host;
    this.#samples.push(s);
  }

  /** CPU % (of all cores) of the given pids since the last call, from /proc/PID/stat; undefined off Linux. */
  async #procCpuPct(pids: number[]): Promise<number | undefined> {
    if (process.platform !== 'linux' || pids.length === 0) return undefined;
    const now = performance.now();
    let pct = 0;
    let known = false;
    for (const pid of pids) {
      const ticks = (await readProcess(pid).catch(() => undefined))?.cpuTicks; // gone, or unreadable: skip it
      if (ticks === undefined) continue;
      const prev = this.#procTicks.get(pid);
      this.#procTicks.set(pid, { ticks, at: now });
      if (!prev || now <= prev.at) continue;
      known = true;
      pct += ((ticks - prev.ticks) / CLOCK_TICKS_PER_SECOND) / ((now - prev.at) / 1000) * (100 / this.#cores);
    }
    return known ? pct : undefined;
  }
}

/** GET /api/status with the daemon token. */
export async function fetchSnapshot(url: string, token: string, dispatcher?: Dispatcher): Promise<Snapshot> {
  return (await getJson(url, '/api/status', token, dispatcher)) as Snapshot;
}

/** Each replica's key (`GET /api/instance-keys`), so an attached bench can measure llama-server directly. */
export async function fetchInstanceKeys(url: string, token: string): Promise<Record<string, string>> {
  return (await getJson(url, '/api/instance-keys', token)) as Record<string, string>;
}

async function getJson(url: string, path: string, token: string, dispatcher?: Dispatcher): Promise<unknown> {
  const res = await request(`${url}${path}`, {
    dispatcher,
    headers: { authorization: `Bearer ${token}` },
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${path} answered ${res.statusCode}: ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

/**
 * The polls taken while the load was steady: once the daemon's view caught up (it polls an idle
 * llama-server's /slots only every second, so the first ~1 s of a level may show the idle state
 * before it) and before the last request started (after that, slots drain). All polls when that
 * window holds none (a level shorter than the daemon's poll period).
 */
export function steadySamples(timeline: readonly StatusSample[], lastStartMs: number, settleMs = 750): StatusSample[] {
  const steady = timeline.filter((s) => s.tMs >= settleMs && s.tMs <= lastStartMs);
  return steady.length ? steady : [...timeline];
}

/** Averages of a timeline; percentages undefined when no sample had them. */
export function summarizeTimeline(timeline: readonly StatusSample[]): Utilization {
  const withSlots = timeline.filter((s) => s.totalSlots > 0);
  const avg = (pick: (s: StatusSample) => number | undefined): number | undefined => {
    const values = timeline.map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v));
    return values.length ? mean(values) : undefined;
  };
  const u: Utilization = {
    samples: timeline.length,
    slotPct: withSlots.length ? mean(withSlots.map((s) => (100 * s.busySlots) / s.totalSlots)) : 0,
    peakBusySlots: Math.max(0, ...timeline.map((s) => s.busySlots)),
    totalSlots: Math.max(0, ...timeline.map((s) => s.totalSlots)),
  };
  const gpu = avg((s) => s.gpuPct);
  const cpu = avg((s) => s.cpuPct);
  const host = avg((s) => s.hostCpuPct);
  if (gpu !== undefined) u.gpuPct = gpu;
  if (cpu !== undefined) u.cpuPct = cpu;
  if (host !== undefined) u.hostCpuPct = host;
  return u;
}
