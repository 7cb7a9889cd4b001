// The capacity verdict: can this machine take more requests, and what should a person do?
// With continuous batching, GPU-utilization % says little: 3 of 8 busy slots can read 95% while
// 5 more requests would cost little. So the verdict comes from slots and queue; GPU % only
// appears in the reason, to explain why a hot GPU is no reason to scale.
import type { Capacity, CapacityVerdict } from '../../shared/protocol';
import { formatMiB } from '../../shared/format';

/** One observation, taken on every status tick and on slot or queue changes. */
export interface CapacitySample {
  /** Epoch ms. */
  at: number;
  /** Busy slots across ready instances, whoever sent the requests. */
  busySlots: number;
  /** Slots of ready instances. */
  totalSlots: number;
  /** Requests waiting in the daemon's queues. */
  queued: number;
  oldestWaitMs: number;
  gpuUtilPct?: number;
  gpuMemFreeMiB?: number;
  readyInstances: number;
  wantedInstances: number;
}

export interface JudgeOptions {
  /** Samples older than this are ignored. Default 60 000 ms. */
  windowMs?: number;
  /** Oldest wait from which a full model with a queue counts as saturated. Default 2 000 ms. */
  saturatedWaitMs?: number;
  /** Trailing span over which saturation must be sustained. Default 10 000 ms. */
  sustainMs?: number;
  /** Share of `sustainMs` (time-weighted) that must be all-busy-with-a-queue. Default 0.5. */
  sustainShare?: number;
  /** Share of busy slots from which the verdict is `busy`. Default 0.75. */
  busyShare?: number;
  /** GPU utilization from which the reason mentions it. Default 80 %. */
  gpuNotePct?: number;
}

const DEFAULTS: Required<JudgeOptions> = {
  windowMs: 60_000,
  saturatedWaitMs: 2_000,
  sustainMs: 10_000,
  sustainShare: 0.5,
  busyShare: 0.75,
  gpuNotePct: 80,
};

/** Keeps the samples of the last `windowMs` and judges them; the policy itself is `judge`. */
export class CapacityWindow {
  readonly #options: Required<JudgeOptions>;
  /** Sorted by `at`: those within `windowMs` of the newest, plus the one just before. */
  #samples: CapacitySample[] = [];

  constructor(windowMs = DEFAULTS.windowMs, options: Omit<JudgeOptions, 'windowMs'> = {}) {
    this.#options = resolve({ ...options, windowMs });
  }

  get size(): number {
    return this.#samples.length;
  }

  add(sample: CapacitySample): void {
    // Samples normally arrive in order; a late one is inserted where it belongs.
    let index = this.#samples.length;
    while (index > 0 && (this.#samples[index - 1]?.at ?? 0) > sample.at) index -= 1;
    this.#samples.splice(index, 0, sample);
    const newest = this.#samples[this.#samples.length - 1]?.at ?? sample.at;
    // Keep the last sample before the window too: it tells `judge` what held when the window began.
    const firstInWindow = this.#samples.findIndex((s) => s.at > newest - this.#options.windowMs);
    if (firstInWindow > 1) this.#samples.splice(0, firstInWindow - 1);
  }

  verdict(now: number): Capacity {
    return judge(this.#samples, now, this.#options);
  }
}

/**
 * The verdict over the samples in (now − windowMs, now], first match wins:
 * - down:      no ready instance while one is wanted or requests wait;
 * - idle:      no busy slot and no queue in any sample of the window;
 * - saturated: latest sample has every slot busy, a queue, and its oldest waiter at
 *              ≥ saturatedWaitMs; and "every slot busy with a queue" held for ≥ sustainShare of
 *              the last sustainMs (time-weighted: each sample, even one before the window,
 *              holds until the next);
 * - busy:      ≥ busyShare of slots busy, or any queue;
 * - ok:        otherwise. GPU utilization never changes the verdict.
 * `headroomSlots` = free slots minus queued, from the latest sample, floored at 0.
 */
export function judge(samples: readonly CapacitySample[], now: number, options: JudgeOptions = {}): Capacity {
  const o = resolve(options);
  const known = samples.filter((s) => s.at <= now).sort((a, b) => a.at - b.at);
  const recent = known.filter((s) => s.at > now - o.windowMs);
  const latest = recent[recent.length - 1];
  if (!latest) {
    return { busySlots: 0, totalSlots: 0, queued: 0, headroomSlots: 0, verdict: 'idle', reason: `No capacity samples in the last ${seconds(o.windowMs)}` };
  }
  const totalSlots = Math.max(0, latest.totalSlots);
  const busySlots = Math.min(Math.max(0, latest.busySlots), totalSlots);
  const queued = Math.max(0, latest.queued);
  const free = totalSlots - busySlots;
  const numbers = { busySlots, totalSlots, queued, headroomSlots: Math.max(0, free - queued) };
  const verdict = classify(known, recent, latest, now, o);
  // How far back the samples reach: the whole window once one predates it.
  const observedMs = known[0] && known[0].at <= now - o.windowMs ? o.windowMs : now - (recent[0] ?? latest).at;
  return { ...numbers, verdict, reason: explain(verdict, latest, observedMs, o) };
}

function classify(
  known: CapacitySample[],
  recent: CapacitySample[],
  latest: CapacitySample,
  now: number,
  o: Required<JudgeOptions>,
): CapacityVerdict {
  if (latest.readyInstances <= 0) return latest.wantedInstances > 0 || latest.queued > 0 ? 'down' : 'idle';
  if (recent.every((s) => s.busySlots <= 0 && s.queued <= 0)) return 'idle';
  const sustained = pressuredShare(known, now - Math.min(o.sustainMs, o.windowMs), now) >= o.sustainShare;
  if (pressured(latest) && latest.oldestWaitMs >= o.saturatedWaitMs && sustained) return 'saturated';
  const busyShare = latest.totalSlots > 0 ? latest.busySlots / latest.totalSlots : 0;
  return busyShare >= o.busyShare || latest.queued > 0 ? 'busy' : 'ok';
}

/** Every slot busy and someone waiting: the only state in which more work cannot start. */
function pressured(s: CapacitySample): boolean {
  return s.totalSlots > 0 && s.busySlots >= s.totalSlots && s.queued > 0;
}

/**
 * Share of [from, to] during which the samples show pressure, each sample holding until the next
 * (time-weighted, so a burst of event-driven samples does not outvote a long calm). Time before
 * the first sample is unknown and not counted; a lone sample at `to` decides alone.
 */
function pressuredShare(sorted: CapacitySample[], from: number, to: number): number {
  let covered = 0;
  let hit = 0;
  for (const [k, s] of sorted.entries()) {
    const start = Math.max(s.at, from);
    const end = Math.min(sorted[k + 1]?.at ?? to, to);
    if (end <= start) continue;
    covered += end - start;
    if (pressured(s)) hit += end - start;
  }
  if (covered > 0) return hit / covered;
  const last = sorted[sorted.length - 1];
  return last && pressured(last) ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Reasons: one sentence a person reads, numbers first, advice last.

function explain(verdict: CapacityVerdict, s: CapacitySample, observedMs: number, o: Required<JudgeOptions>): string {
  const total = Math.max(0, s.totalSlots);
  const busy = Math.min(Math.max(0, s.busySlots), total);
  const free = total - busy;
  const room = Math.max(0, free - s.queued);
  const gpu = s.gpuUtilPct !== undefined && s.gpuUtilPct >= o.gpuNotePct ? Math.round(s.gpuUtilPct) : undefined;
  const waiting = s.queued > 0 ? `${count(s.queued, 'request')} waiting (oldest ${seconds(s.oldestWaitMs)})` : '';
  const partial = s.readyInstances < s.wantedInstances ? `; ${s.readyInstances} of ${s.wantedInstances} instances ready` : '';
  const slotsBusy = busy === total ? `All ${total} slots busy` : `${busy} of ${total} slots busy`;

  switch (verdict) {
    case 'down': {
      const head = s.wantedInstances > 0 ? `No instance ready (0 of ${s.wantedInstances} wanted)` : 'No instance running';
      return waiting ? `${head}: ${waiting}` : head;
    }
    case 'idle': {
      if (s.readyInstances <= 0) return 'No model is running';
      const span = observedMs >= 1_000 ? `in the last ${seconds(observedMs)}` : 'right now';
      const hot = gpu === undefined ? '' : `, yet GPU at ${gpu}%: that load is not from these slots`;
      return `No requests ${span}${hot}${partial}`;
    }
    case 'saturated': {
      const advice = partial ? `only ${s.readyInstances} of ${s.wantedInstances} instances ready` : 'add replicas or slots';
      const memory = s.gpuMemFreeMiB === undefined ? '' : ` (${formatMiB(s.gpuMemFreeMiB, { trim: true })} GPU memory free)`;
      return `${slotsBusy} and ${waiting}: ${advice}${memory}`;
    }
    case 'busy':
      if (waiting) return `${slotsBusy} and ${waiting}${partial}`;
      if (free === 0) return `${slotsBusy}: new requests will queue${partial}`;
      return `${slotsBusy}${gpu === undefined ? '' : ` (GPU at ${gpu}%)`}: room for ${count(room, 'more request')}${partial}`;
    case 'ok':
      if (gpu !== undefined) {
        return `GPU at ${gpu}% but ${free} of ${total} slots free: room for ${count(room, 'more request')}, no need to scale${partial}`;
      }
      return `${slotsBusy}: room for ${count(room, 'more request')}${partial}`;
  }
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** `3.2 s` under 10 s, `12 s` above: enough precision to act on. */
function seconds(ms: number): string {
  const s = Math.max(0, ms) / 1000;
  return s < 10 ? `${Number(s.toFixed(1))} s` : `${Math.round(s)} s`;
}

// Spread would let an explicit `undefined` override a default; skip those.
function resolve(options: JudgeOptions): Required<JudgeOptions> {
  const out = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof JudgeOptions)[]) {
    const value = options[key];
    if (value !== undefined) out[key] = value;
  }
  return out;
}
