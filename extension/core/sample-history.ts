// The last 60 s of each numeric series (GPU utilization, VRAM, CPU, RSS) for the sparklines.

export interface Sample {
  t: number;
  v: number;
}

export class SampleHistory {
  #series = new Map<string, Sample[]>();
  #windowMs: number;
  #minGapMs: number;

  /** windowMs: how far back to keep (default 60 000). minGapMs: samples closer than this replace the last (default 250). */
  constructor(opts: { windowMs?: number; minGapMs?: number } = {}) {
    this.#windowMs = opts.windowMs ?? 60_000;
    this.#minGapMs = opts.minGapMs ?? 250;
  }

  get windowMs(): number {
    return this.#windowMs;
  }

  push(key: string, t: number, v: number): void {
    let s = this.#series.get(key);
    if (!s) this.#series.set(key, (s = []));
    const last = s.at(-1);
    if (last && t - last.t < this.#minGapMs) last.v = v;
    else s.push({ t, v });
    const cutoff = t - this.#windowMs;
    while (s.length > 1 && s[1]!.t <= cutoff) s.shift();
  }

  get(key: string): readonly Sample[] {
    return this.#series.get(key) ?? [];
  }

  /** Forgets series whose key is not in `keep` (instances that went away). */
  retain(keep: ReadonlySet<string>): void {
    for (const key of this.#series.keys()) if (!keep.has(key)) this.#series.delete(key);
  }
}

/** A sparkline point: x 0..1 across the window (1 = now), y 0..1 of the scale. */
export interface SparkPoint {
  x: number;
  y: number;
}

/** Samples → points over [now − window, now]; the last value is held until now (status only pushes changes). */
export function sparkPoints(samples: readonly Sample[], now: number, windowMs: number, max: number): SparkPoint[] {
  if (samples.length === 0 || max <= 0) return [];
  const start = now - windowMs;
  const clampY = (v: number): number => Math.min(1, Math.max(0, v / max));
  const pts: SparkPoint[] = [];
  for (const [i, s] of samples.entries()) {
    const next = samples[i + 1];
    if (next && next.t <= start) continue; // wholly before the window
    const x = Math.max(0, (s.t - start) / windowMs);
    // Step shape: hold the previous value until this sample.
    const prev = pts.at(-1);
    if (prev) pts.push({ x, y: prev.y });
    pts.push({ x, y: clampY(s.v) });
  }
  const last = pts.at(-1);
  if (last && last.x < 1) pts.push({ x: 1, y: last.y });
  return pts;
}
