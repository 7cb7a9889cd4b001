// The adaptive hold of newest-wins sessions: how long a session's new request waits before it takes a
// slot, learned from the gaps between that session's requests. While an editor sends a request per
// keystroke, each one would otherwise start at once and be superseded by the next keystroke's a gap
// later: slot time spent on work nobody sees (33 % of a typing burst's slot time, measured). Held for
// a little more than the gap, a request is superseded before it ever leases a slot; only the last of
// the burst runs, `hold` after the last keystroke. The first request of a session, and the first
// after a pause, start at once: nothing says another keystroke is coming, and a single completion
// after a pause must not pay the hold.
// Pure functions over a plain state, and a bounded map of states; no clock (time comes in as `now`).
import { ewma } from './policy';

/** What is known of one session's pace. */
export interface PaceState {
  /** Epoch ms of the session's last request. */
  lastAt: number;
  /** EWMA of the gaps between its requests inside bursts, ms; undefined until one burst gap was seen. */
  gapMs?: number;
  /** EWMA of how far each burst gap fell from the learned one, ms (the timers' and the typist's jitter). */
  devMs?: number;
}

/** A gap this long or longer is a pause, never a burst gap, however slow the typist. */
export const MAX_BURST_GAP_MS = 1000;
/**
 * After a pause shorter than this, a session with a learned pace is still typing: its first request
 * holds too (typists pause between words and lines, then go on), so the first keystroke after a short
 * pause does not take a slot only to be superseded 50 ms later. After a longer pause, or in a session
 * with no pace yet, the first request starts at once.
 */
export const STILL_TYPING_MS = 2000;
/** A gap up to this many learned gaps still belongs to the burst; longer is a pause. */
export const BURST_WINDOW_GAPS = 2;
/** The hold covers at least the learned gap plus this much slack. */
export const HOLD_PER_GAP = 1.2;
/**
 * And the learned gap plus this many mean deviations (as TCP sizes its retransmit timer from RTT and
 * its variation): human typing and a loaded machine's timers both jitter, and a hold that ends before
 * the next keystroke lets a request take a slot only to be superseded.
 */
export const HOLD_DEVIATIONS = 4;
/** Weight of the newest gap: a typist's pace changes within a few keystrokes. */
export const GAP_EWMA_ALPHA = 0.3;

/**
 * The gap below which a request is still part of its session's burst: twice the learned gap, at
 * least twice the hold bound (so a session with no learned gap yet, or one typing a little slower
 * than it did, still learns), never `MAX_BURST_GAP_MS` or more.
 */
export function burstWindowMs(gapMs: number | undefined, maxHoldMs: number): number {
  const learned = gapMs === undefined ? 0 : BURST_WINDOW_GAPS * gapMs;
  return Math.min(MAX_BURST_GAP_MS, Math.max(learned, 2 * maxHoldMs));
}

/**
 * A request of the session arrives at `now`: the state to keep and how long the request waits before
 * it may take a slot (0 = at once). It holds only inside a burst (the gap since the session's last
 * request is under `burstWindowMs`), and only when the learned gap fits under `maxHoldMs`: a hold
 * shorter than the next keystroke's gap would only add latency and save nothing. `maxHoldMs` 0: never.
 */
export function arrive(prev: PaceState | undefined, now: number, maxHoldMs: number): { next: PaceState; holdMs: number } {
  if (prev === undefined) return { next: { lastAt: now }, holdMs: 0 };
  const gap = Math.max(0, now - prev.lastAt);
  if (gap >= burstWindowMs(prev.gapMs, maxHoldMs)) {
    // A pause, not learned: the pace learned so far is kept for the next burst. A short one holds the
    // burst's first request at that pace; after a long one it starts at once.
    const next = { ...prev, lastAt: now };
    return { next, holdMs: gap < STILL_TYPING_MS && prev.gapMs !== undefined ? holdFor(prev.gapMs, prev.devMs, maxHoldMs) : 0 };
  }
  const devMs = prev.gapMs === undefined ? undefined : ewma(prev.devMs, Math.abs(gap - prev.gapMs), GAP_EWMA_ALPHA);
  const gapMs = ewma(prev.gapMs, gap, GAP_EWMA_ALPHA);
  return { next: { lastAt: now, gapMs, ...(devMs !== undefined ? { devMs } : {}) }, holdMs: holdFor(gapMs, devMs, maxHoldMs) };
}

/** The hold at a learned pace: the gap plus its deviations, at least 1.2 × the gap; 0 when it cannot catch the next keystroke. */
function holdFor(gapMs: number, devMs: number | undefined, maxHoldMs: number): number {
  if (maxHoldMs <= 0 || gapMs > maxHoldMs) return 0;
  return Math.min(maxHoldMs, Math.round(Math.max(HOLD_PER_GAP * gapMs, gapMs + HOLD_DEVIATIONS * (devMs ?? 0))));
}

/** Most sessions remembered; the least recently active is forgotten first (editors open many files). */
export const MAX_PACED_SESSIONS = 4096;

/** The pace of every session key seen recently, least recently active first (Map insertion order). */
export class SessionPace {
  #states = new Map<string, PaceState>();
  #max: number;

  constructor(maxSessions = MAX_PACED_SESSIONS) {
    this.#max = maxSessions;
  }

  /** Records a request of `key` at `now`; returns its hold in ms (see `arrive`). */
  arrive(key: string, now: number, maxHoldMs: number): number {
    const { next, holdMs } = arrive(this.#states.get(key), now, maxHoldMs);
    this.#states.delete(key); // re-inserted last: the map stays in order of activity
    this.#states.set(key, next);
    if (this.#states.size > this.#max) this.#states.delete(this.#states.keys().next().value!);
    return holdMs;
  }

  get(key: string): PaceState | undefined {
    return this.#states.get(key);
  }

  get size(): number {
    return this.#states.size;
  }
}
