// The typing-burst hold of newest-wins sessions: the pure pace (daemon/scheduler/session-pace.ts),
// plan() skipping a held waiter, and the scheduler holding, superseding and then dispatching with a
// fake clock (a stand-in supervisor: no process, no network).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { arrive, burstWindowMs, MAX_BURST_GAP_MS, SessionPace, type PaceState } from '../../daemon/scheduler/session-pace';
import { plan, type InstanceLoad, type Waiter } from '../../daemon/scheduler/policy';
import { Scheduler, type Lease, type LeaseRecord } from '../../daemon/scheduler/scheduler';
import { defaultConfig } from '../../daemon/config/validate';
import { fakeSupervisor } from '../helpers/fake-supervisor';

/** Feeds arrivals at the given times through `arrive`; returns each hold. */
function holds(times: number[], maxHoldMs = 150): number[] {
  let state: PaceState | undefined;
  return times.map((t) => {
    const r = arrive(state, t, maxHoldMs);
    state = r.next;
    return r.holdMs;
  });
}
const every = (gap: number, n: number, from = 0): number[] => Array.from({ length: n }, (_, i) => from + i * gap);

describe('arrive (session pace)', () => {
  it('a session with no history starts at once; inside a burst each request holds 1.2 × the learned gap', () => {
    expect(holds(every(50, 5))).toEqual([0, 60, 60, 60, 60]);
  });

  it('after a pause of 2 s or more the first request starts at once, and the pace learned before is kept for the next burst', () => {
    expect(holds([...every(50, 4), ...every(50, 3, 2150)])).toEqual([0, 60, 60, 60, 0, 60, 60]);
  });

  it('after a shorter pause the session is still typing: the first request holds at the pace learned before', () => {
    expect(holds([...every(50, 4), ...every(50, 3, 1000)])).toEqual([0, 60, 60, 60, 60, 60, 60]);
    // No pace learned yet (one request, then a pause): nothing to hold by.
    expect(holds([0, 1000])).toEqual([0, 0]);
  });

  it('learns the pace as an EWMA of the burst gaps (α = 0.3)', () => {
    let state: PaceState | undefined;
    for (const t of [0, 100, 160]) state = arrive(state, t, 150).next;
    expect(state!.gapMs).toBeCloseTo(100 + 0.3 * (60 - 100), 6); // 88
    expect(state!.devMs).toBeCloseTo(40, 6); // |60 − 100|: the first deviation seen
    const next = arrive(state, 230, 250); // gap 70
    const gap = 88 + 0.3 * (70 - 88); // 82.6
    const dev = 40 + 0.3 * (Math.abs(70 - 88) - 40); // 33.4
    expect(next.holdMs).toBe(Math.round(Math.max(1.2 * gap, gap + 4 * dev))); // 216: jittery gaps, a longer hold
  });

  it('holds the learned gap plus four mean deviations, at least 1.2 × the gap: steady typing holds little, jittery typing more', () => {
    const jittery = [0, 50, 110, 150, 220, 260];
    const h = holds(jittery);
    expect(h[0]).toBe(0);
    // Each hold outlasts the gap that followed it (the next keystroke came inside the hold).
    for (let i = 2; i < jittery.length - 1; i++) expect(h[i]!).toBeGreaterThan(jittery[i + 1]! - jittery[i]!);
  });

  it('never holds longer than maxHoldMs, and not at all when the learned gap is longer than it (the hold could not catch the next keystroke)', () => {
    expect(holds(every(140, 4))).toEqual([0, 150, 150, 150]); // 1.2 × 140 = 168, capped
    expect(holds(every(200, 4))).toEqual([0, 0, 0, 0]);
  });

  it('maxHoldMs 0 turns the hold off', () => {
    expect(holds(every(50, 5), 0)).toEqual([0, 0, 0, 0, 0]);
  });

  it('a gap beyond twice the learned one is a pause, not learned; the window never reaches 1 s', () => {
    let state: PaceState | undefined;
    for (const t of every(50, 4)) state = arrive(state, t, 150).next;
    expect(burstWindowMs(state!.gapMs, 150)).toBe(300); // 2 × the hold bound beats 2 × 50
    const paused = arrive(state, 150 + 400, 150);
    expect(paused.holdMs).toBe(60); // a short pause: still typing, held at the pace learned before
    expect(paused.next.gapMs).toBe(50); // and the 400 ms gap is not learned
    expect(burstWindowMs(5000, 150)).toBe(MAX_BURST_GAP_MS);
    expect(burstWindowMs(undefined, 150)).toBe(300);
  });
});

describe('SessionPace', () => {
  it('keeps one pace per key and forgets the least recently active beyond its bound', () => {
    const p = new SessionPace(2);
    expect(p.arrive('a', 0, 150)).toBe(0);
    expect(p.arrive('b', 10, 150)).toBe(0);
    expect(p.arrive('a', 50, 150)).toBe(60); // a is now the most recent
    expect(p.arrive('c', 60, 150)).toBe(0); // evicts b
    expect(p.size).toBe(2);
    expect(p.get('b')).toBeUndefined();
    expect(p.arrive('b', 70, 150)).toBe(0); // b starts over: no history
    expect(p.get('a')).toBeUndefined();
  });
});

describe('plan with a held waiter', () => {
  const inst: InstanceLoad = { id: 'm#1', ready: true, slots: 2, inFlight: 0, busySeen: 0 };
  const w = (id: string, holdUntil?: number): Waiter => ({ id, enqueuedAt: 0, deadline: 1e9, ...(holdUntil !== undefined ? { holdUntil } : {}) });
  it('keeps one free slot from background work while an interactive waiter is in its hold (not from interactive work)', () => {
    const bgW = (id: string): Waiter => ({ ...w(id), priority: 'background' });
    const busy = { ...inst, inFlight: 1 }; // one slot free
    const p = (waiters: Waiter[], now: number): string[] => plan({ mode: 'slot-aware', rrCursor: 0, waiters, instances: [busy] }, now).assignments.map((a) => a.waiterId);
    expect(p([w('held', 100), bgW('b')], 50)).toEqual([]);
    expect(p([w('held', 100), bgW('b')], 100)).toEqual(['held']);
    expect(p([w('held', 100), w('i')], 50)).toEqual(['i']);
    expect(p([{ ...bgW('held-bg'), holdUntil: 100 }, bgW('b')], 50)).toEqual(['b']); // a held background request keeps nothing
    expect(p([bgW('b')], 50)).toEqual(['b']);
  });

  it('skips it until its hold ends, and lets the others go ahead meanwhile', () => {
    expect(plan({ mode: 'slot-aware', rrCursor: 0, waiters: [w('held', 100), w('free')], instances: [inst] }, 99).assignments.map((a) => a.waiterId)).toEqual(['free']);
    expect(plan({ mode: 'slot-aware', rrCursor: 0, waiters: [w('held', 100), w('free')], instances: [inst] }, 100).assignments.map((a) => a.waiterId)).toEqual(['held', 'free']);
  });
});

// ---------------------------------------------------------------------------------------------
// The scheduler with a fake clock and a stand-in supervisor of one ready instance.


describe('Scheduler: the typing-burst hold (fake clock)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('20 requests 50 ms apart: none leases before the last, which starts one hold after it; 19 superseded without a slot', async () => {
    const config = defaultConfig();
    const started: boolean[] = [];
    const s = new Scheduler({ supervisor: fakeSupervisor(4), config, hooks: { onSuperseded: (_m, x) => started.push(x) } });
    const records: LeaseRecord[] = [];
    s.on('lease', (r) => records.push(r));
    const leases: { i: number; at: number; lease: Lease }[] = [];
    const errors: { i: number; code: string }[] = [];
    let startedAt = 0;
    for (let i = 0; i < 20; i++) {
      const t = s.open('coder', 'http', undefined, { session: 'file:///a.py' });
      s.acquire(t).then(
        (lease) => {
          leases.push({ i, at: Date.now(), lease });
          // As the ways in do: a running request that is superseded has its upstream aborted, then releases.
          t.signal.addEventListener('abort', () => {
            lease.release();
            s.finish(t, 'cancelled');
          });
        },
        (err: { code: string }) => {
          s.finish(t, 'cancelled');
          errors.push({ i, code: err.code });
        },
      );
      if (i === 19) startedAt = Date.now();
      await vi.advanceTimersByTimeAsync(i === 19 ? 0 : 50);
    }
    // The first request of the session had no history: it started at once and was superseded running.
    expect(leases.map((l) => l.i)).toEqual([0]);
    await vi.advanceTimersByTimeAsync(59);
    expect(leases).toHaveLength(1); // the last one is still held
    await vi.advanceTimersByTimeAsync(2);
    expect(leases.map((l) => l.i)).toEqual([0, 19]);
    expect(leases[1]!.at - startedAt).toBeLessThanOrEqual(61);
    expect(errors.map((e) => e.i)).toEqual(Array.from({ length: 18 }, (_, i) => i + 1));
    expect(errors.every((e) => e.code === 'SW_ERR_SUPERSEDED')).toBe(true);
    const view = s.queueView('coder')!;
    expect(view.superseded).toBe(19);
    expect(view.supersededUnstarted).toBe(18); // all but the first never took a slot
    expect(started.filter((x) => x)).toHaveLength(1); // the metrics hook is told which ones ran
    expect(started.filter((x) => !x)).toHaveLength(18);
    expect(records).toMatchObject([{ superseded: true, session: 'file:///a.py', priority: 'interactive' }]);
    expect(records[0]!.releasedAt - records[0]!.leasedAt).toBe(50);
    leases[1]!.lease.release();
    s.close();
  });

  it('a slot that frees while an editor request is held waits for it instead of going to queued background work', async () => {
    const s = new Scheduler({ supervisor: fakeSupervisor(2), config: defaultConfig() });
    const leased: string[] = [];
    const leases = new Map<string, Lease>();
    const take = (name: string, opts: { priority?: 'background'; session?: string }): void => {
      const t = s.open('coder', 'http', undefined, opts);
      s.acquire(t).then(
        (lease) => {
          leased.push(name);
          leases.set(name, lease);
        },
        () => s.finish(t, 'cancelled'),
      );
    };
    take('bg1', { priority: 'background' });
    take('bg2', { priority: 'background' });
    take('bg3', { priority: 'background' });
    await vi.advanceTimersByTimeAsync(0);
    expect(leased).toEqual(['bg1', 'bg2']);
    take('a', { session: 'e' }); // no history: queued ahead of bg3, no hold
    await vi.advanceTimersByTimeAsync(50);
    take('b', { session: 'e' }); // supersedes a; held 60 ms
    await vi.advanceTimersByTimeAsync(20);
    leases.get('bg1')!.release();
    await vi.advanceTimersByTimeAsync(20);
    expect(leased).toEqual(['bg1', 'bg2']); // the freed slot is kept for b
    await vi.advanceTimersByTimeAsync(25);
    expect(leased).toEqual(['bg1', 'bg2', 'b']); // b, at the end of its hold
    leases.get('bg2')!.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(leased).toEqual(['bg1', 'bg2', 'b', 'bg3']);
    s.close();
  });

  it('with queue.sessionHoldMs 0 every request of the burst takes a slot in turn (no hold)', async () => {
    const config = defaultConfig();
    config.queue.sessionHoldMs = 0;
    const s = new Scheduler({ supervisor: fakeSupervisor(4), config });
    let leased = 0;
    for (let i = 0; i < 5; i++) {
      const t = s.open('coder', 'http', undefined, { session: 'k' });
      s.acquire(t).then(
        (lease) => {
          leased++;
          t.signal.addEventListener('abort', () => lease.release());
        },
        () => s.finish(t, 'cancelled'),
      );
      await vi.advanceTimersByTimeAsync(50);
    }
    expect(leased).toBe(5);
    s.close();
  });
});
