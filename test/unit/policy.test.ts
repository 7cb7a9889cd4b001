import { describe, expect, it } from 'vitest';
import {
  admit,
  expired,
  freeSlots,
  oldestWaitMs,
  pickInstance,
  plan,
  positions,
  type InstanceLoad,
  type PlanInput,
  type Waiter,
} from '../../daemon/scheduler/policy';

function inst(id: string, over: Partial<InstanceLoad> = {}): InstanceLoad {
  return { id, ready: true, slots: 4, inFlight: 0, busySeen: 0, ...over };
}

function waiter(id: string, enqueuedAt = 0, deadline = 1_000_000): Waiter {
  return { id, enqueuedAt, deadline };
}

describe('freeSlots', () => {
  it.each([
    { name: 'idle instance', load: { slots: 4, inFlight: 0, busySeen: 0 }, free: 4 },
    { name: 'own requests visible in /slots are not counted twice', load: { slots: 4, inFlight: 2, busySeen: 2 }, free: 2 },
    { name: 'own requests not yet visible in /slots', load: { slots: 4, inFlight: 2, busySeen: 0 }, free: 2 },
    { name: 'foreign requests only', load: { slots: 4, inFlight: 0, busySeen: 1 }, free: 3 },
    { name: 'own and foreign mixed', load: { slots: 4, inFlight: 1, busySeen: 3 }, free: 1 },
    { name: 'foreign use fills the instance', load: { slots: 4, inFlight: 0, busySeen: 4 }, free: 0 },
    { name: 'overcommitted (round-robin) floors at 0', load: { slots: 4, inFlight: 6, busySeen: 4 }, free: 0 },
    { name: 'ownBusySeen: own request finished since the poll frees its slot at once', load: { slots: 4, inFlight: 1, busySeen: 2, ownBusySeen: 2 }, free: 3 },
    { name: 'without ownBusySeen the same slot reads foreign until the next poll', load: { slots: 4, inFlight: 1, busySeen: 2 }, free: 2 },
    { name: 'ownBusySeen: dispatch after the poll does not hide a foreign slot', load: { slots: 4, inFlight: 1, busySeen: 1, ownBusySeen: 0 }, free: 2 },
    { name: 'without ownBusySeen that dispatch is mistaken for the foreign slot', load: { slots: 4, inFlight: 1, busySeen: 1 }, free: 3 },
    { name: 'ownBusySeen above busySeen is clamped', load: { slots: 4, inFlight: 2, busySeen: 1, ownBusySeen: 5 }, free: 2 },
  ])('$name → $free', ({ load, free }) => {
    expect(freeSlots(inst('m#1', load))).toBe(free);
  });
});

describe('pickInstance, slot-aware', () => {
  it.each<{ name: string; instances: InstanceLoad[]; avoid?: string; want: string | undefined }>([
    {
      name: 'most free slots first',
      instances: [inst('m#1', { inFlight: 3 }), inst('m#2', { inFlight: 1 }), inst('m#3', { inFlight: 2 })],
      want: 'm#2',
    },
    {
      name: 'tie → least recently assigned',
      instances: [inst('m#1', { lastAssignedAt: 200 }), inst('m#2', { lastAssignedAt: 100 })],
      want: 'm#2',
    },
    {
      name: 'tie → never assigned before assigned',
      instances: [inst('m#1', { lastAssignedAt: 1 }), inst('m#2')],
      want: 'm#2',
    },
    { name: 'full tie → id', instances: [inst('m#2'), inst('m#1')], want: 'm#1' },
    {
      name: 'not-ready instance skipped even with most free',
      instances: [inst('m#1', { ready: false }), inst('m#2', { inFlight: 3 })],
      want: 'm#2',
    },
    {
      name: 'never a full instance while another has a free slot',
      instances: [inst('m#1', { inFlight: 4, busySeen: 4 }), inst('m#2', { inFlight: 3, lastAssignedAt: 999 })],
      want: 'm#2',
    },
    {
      name: 'foreign busy slots count against an instance',
      instances: [inst('m#1', { busySeen: 3 }), inst('m#2', { inFlight: 2, busySeen: 2 })],
      want: 'm#2',
    },
    { name: 'all full → wait', instances: [inst('m#1', { inFlight: 4 }), inst('m#2', { busySeen: 4 })], want: undefined },
    { name: 'none ready → wait', instances: [inst('m#1', { ready: false })], want: undefined },
    { name: 'no instances → wait', instances: [], want: undefined },
    {
      name: 'avoid: another free instance is preferred even with fewer free slots',
      instances: [inst('m#1'), inst('m#2', { inFlight: 3 })],
      avoid: 'm#1',
      want: 'm#2',
    },
    {
      name: 'avoid: falls back to the avoided one when it is the only one free',
      instances: [inst('m#1'), inst('m#2', { inFlight: 4 })],
      avoid: 'm#1',
      want: 'm#1',
    },
  ])('$name', ({ instances, avoid, want }) => {
    const pick = pickInstance(instances, 'slot-aware', 7, avoid);
    expect(pick?.instanceId).toBe(want);
    if (pick) expect(pick.nextCursor).toBe(7);
  });
});

describe('pickInstance, round-robin', () => {
  it.each<{ name: string; instances: InstanceLoad[]; cursor: number; want: string | undefined; next?: number }>([
    { name: 'cursor 0 → first', instances: [inst('a'), inst('b'), inst('c')], cursor: 0, want: 'a', next: 1 },
    { name: 'cursor 2 → third', instances: [inst('a'), inst('b'), inst('c')], cursor: 2, want: 'c', next: 3 },
    { name: 'cursor wraps', instances: [inst('a'), inst('b'), inst('c')], cursor: 3, want: 'a', next: 1 },
    { name: 'negative cursor wraps', instances: [inst('a'), inst('b'), inst('c')], cursor: -1, want: 'c', next: 3 },
    { name: 'skips not-ready', instances: [inst('a', { ready: false }), inst('b'), inst('c')], cursor: 0, want: 'b', next: 1 },
    {
      name: 'sends to a full instance (llama-server queues it)',
      instances: [inst('a', { inFlight: 4, busySeen: 4 }), inst('b')],
      cursor: 0,
      want: 'a',
      next: 1,
    },
    { name: 'none ready → undefined', instances: [inst('a', { ready: false })], cursor: 0, want: undefined },
    { name: 'no instances → undefined', instances: [], cursor: 0, want: undefined },
  ])('$name', ({ instances, cursor, want, next }) => {
    const pick = pickInstance(instances, 'round-robin', cursor);
    expect(pick?.instanceId).toBe(want);
    if (next !== undefined) expect(pick?.nextCursor).toBe(next);
  });

  it('rotates over ready instances call after call', () => {
    const instances = [inst('a'), inst('b', { ready: false }), inst('c'), inst('d', { inFlight: 9 })];
    const seen: string[] = [];
    let cursor = 0;
    for (let k = 0; k < 6; k += 1) {
      const pick = pickInstance(instances, 'round-robin', cursor);
      if (!pick) throw new Error('expected a pick');
      seen.push(pick.instanceId);
      cursor = pick.nextCursor;
    }
    expect(seen).toEqual(['a', 'c', 'd', 'a', 'c', 'd']);
  });
});

describe('admit', () => {
  it.each([
    { name: 'empty queue', queue: 0, max: 256, rate: 0, want: { ok: true } },
    { name: 'one place left', queue: 255, max: 256, rate: 0, want: { ok: true } },
    { name: 'full, rate unknown → 5 s', queue: 256, max: 256, rate: 0, want: { ok: false, code: 'SW_ERR_QUEUE_FULL', retryAfterS: 5 } },
    { name: 'full, fast service → floor 1 s', queue: 256, max: 256, rate: 4, want: { ok: false, code: 'SW_ERR_QUEUE_FULL', retryAfterS: 1 } },
    { name: 'full, one request per 20 s → 20 s', queue: 8, max: 8, rate: 0.05, want: { ok: false, code: 'SW_ERR_QUEUE_FULL', retryAfterS: 20 } },
    { name: 'full, very slow → capped at 60 s', queue: 8, max: 8, rate: 0.001, want: { ok: false, code: 'SW_ERR_QUEUE_FULL', retryAfterS: 60 } },
    { name: 'over the limit (limit lowered) → overflow / rate', queue: 10, max: 8, rate: 0.5, want: { ok: false, code: 'SW_ERR_QUEUE_FULL', retryAfterS: 6 } },
    { name: 'maxWaiting 0 refuses everything', queue: 0, max: 0, rate: 2, want: { ok: false, code: 'SW_ERR_QUEUE_FULL', retryAfterS: 1 } },
  ])('$name', ({ queue, max, rate, want }) => {
    expect(admit(queue, max, rate)).toEqual(want);
  });
});

describe('queue helpers', () => {
  const waiters = [waiter('w1', 100, 1_100), waiter('w2', 200, 1_000), waiter('w3', 300, 1_300)];

  it.each([
    { now: 999, want: [] },
    { now: 1_000, want: ['w2'] },
    { now: 1_100, want: ['w1', 'w2'] },
    { now: 5_000, want: ['w1', 'w2', 'w3'] },
  ])('expired at $now → $want (deadline inclusive, queue order)', ({ now, want }) => {
    expect(expired(waiters, now)).toEqual(want);
  });

  it('positions are 1-based in queue order', () => {
    expect([...positions(waiters)]).toEqual([
      ['w1', 1],
      ['w2', 2],
      ['w3', 3],
    ]);
    expect(positions([]).size).toBe(0);
  });

  it.each([
    { name: 'empty queue', list: [], now: 500, want: 0 },
    { name: 'oldest waiter', list: waiters, now: 500, want: 400 },
    { name: 'oldest even when not at the head', list: [waiter('x', 300), waiter('y', 50)], now: 500, want: 450 },
    { name: 'clock behind enqueue time floors at 0', list: [waiter('x', 600)], now: 500, want: 0 },
  ])('oldestWaitMs: $name', ({ list, now, want }) => {
    expect(oldestWaitMs(list, now)).toBe(want);
  });
});

describe('plan', () => {
  const NOW = 10_000;

  it.each<{ name: string; input: PlanInput; assignments: [string, string][]; expired: string[]; nextCursor: number }>([
    {
      name: 'FIFO: as many as free slots allow, the rest waits',
      input: { mode: 'slot-aware', rrCursor: 0, instances: [inst('m#1', { inFlight: 2 })], waiters: [waiter('w1'), waiter('w2'), waiter('w3')] },
      assignments: [['w1', 'm#1'], ['w2', 'm#1']],
      expired: [],
      nextCursor: 0,
    },
    {
      name: 'spreads by most free, then least recently assigned',
      input: { mode: 'slot-aware', rrCursor: 0, instances: [inst('m#1'), inst('m#2', { inFlight: 2 })], waiters: [waiter('w1'), waiter('w2'), waiter('w3')] },
      assignments: [['w1', 'm#1'], ['w2', 'm#1'], ['w3', 'm#2']],
      expired: [],
      nextCursor: 0,
    },
    {
      name: 'equal instances alternate',
      input: { mode: 'slot-aware', rrCursor: 0, instances: [inst('m#1'), inst('m#2')], waiters: [waiter('w1'), waiter('w2'), waiter('w3'), waiter('w4')] },
      assignments: [['w1', 'm#1'], ['w2', 'm#2'], ['w3', 'm#1'], ['w4', 'm#2']],
      expired: [],
      nextCursor: 0,
    },
    {
      name: 'expired waiters are reported, not dispatched; the next one takes the slot',
      input: { mode: 'slot-aware', rrCursor: 0, instances: [inst('m#1', { inFlight: 3 })], waiters: [waiter('w1', 0, NOW), waiter('w2')] },
      assignments: [['w2', 'm#1']],
      expired: ['w1'],
      nextCursor: 0,
    },
    {
      name: 'no ready instance: nothing dispatched, expiry still runs',
      input: { mode: 'slot-aware', rrCursor: 0, instances: [inst('m#1', { ready: false })], waiters: [waiter('w1', 0, NOW - 1), waiter('w2')] },
      assignments: [],
      expired: ['w1'],
      nextCursor: 0,
    },
    {
      name: 'foreign busy slots are not handed out',
      input: { mode: 'slot-aware', rrCursor: 0, instances: [inst('m#1', { busySeen: 3 })], waiters: [waiter('w1'), waiter('w2')] },
      assignments: [['w1', 'm#1']],
      expired: [],
      nextCursor: 0,
    },
    {
      name: 'retry avoids the instance that failed it',
      input: {
        mode: 'slot-aware',
        rrCursor: 0,
        instances: [inst('m#1'), inst('m#2', { inFlight: 2 })],
        waiters: [{ ...waiter('w1'), avoid: 'm#1' }, waiter('w2')],
      },
      assignments: [['w1', 'm#2'], ['w2', 'm#1']],
      expired: [],
      nextCursor: 0,
    },
    {
      name: 'round-robin dispatches everyone, full or not, and advances the cursor',
      input: { mode: 'round-robin', rrCursor: 1, instances: [inst('a', { slots: 1 }), inst('b', { slots: 1 })], waiters: [waiter('w1'), waiter('w2'), waiter('w3')] },
      assignments: [['w1', 'b'], ['w2', 'a'], ['w3', 'b']],
      expired: [],
      nextCursor: 2,
    },
    {
      name: 'round-robin with no ready instance waits',
      input: { mode: 'round-robin', rrCursor: 0, instances: [inst('a', { ready: false })], waiters: [waiter('w1')] },
      assignments: [],
      expired: [],
      nextCursor: 0,
    },
    {
      name: 'empty queue: nothing to do',
      input: { mode: 'slot-aware', rrCursor: 3, instances: [inst('m#1')], waiters: [] },
      assignments: [],
      expired: [],
      nextCursor: 3,
    },
  ])('$name', ({ input, assignments, expired: gone, nextCursor }) => {
    const result = plan(input, NOW);
    expect(result.assignments.map((a) => [a.waiterId, a.instanceId])).toEqual(assignments);
    expect(result.expired).toEqual(gone);
    expect(result.nextCursor).toBe(nextCursor);
  });

  it('never overfills: assignments per instance stay within its free slots', () => {
    const instances = [inst('m#1', { busySeen: 1 }), inst('m#2', { inFlight: 1, busySeen: 1 }), inst('m#3', { slots: 2 })];
    const waiters = Array.from({ length: 20 }, (_, k) => waiter(`w${k}`));
    const result = plan({ mode: 'slot-aware', rrCursor: 0, instances, waiters }, NOW);
    const perInstance = new Map<string, number>();
    for (const a of result.assignments) perInstance.set(a.instanceId, (perInstance.get(a.instanceId) ?? 0) + 1);
    expect(Object.fromEntries(perInstance)).toEqual({ 'm#1': 3, 'm#2': 3, 'm#3': 2 });
    // FIFO: exactly the head of the queue was dispatched.
    expect(result.assignments.map((a) => a.waiterId)).toEqual(waiters.slice(0, 8).map((w) => w.id));
  });

  it('does not mutate its input', () => {
    const input: PlanInput = {
      mode: 'slot-aware',
      rrCursor: 0,
      instances: [inst('m#1'), inst('m#2')],
      waiters: [waiter('w1'), waiter('w2', 0, 0)],
    };
    const before = structuredClone(input);
    plan(input, NOW);
    expect(input).toEqual(before);
  });
});
