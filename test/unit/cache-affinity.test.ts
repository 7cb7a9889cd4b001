// Prompt-cache affinity beyond one slot: the daemon's model of each replica's host prompt cache, the
// slot picker using it, and the cache-aware dequeue with its fairness bounds.
import { describe, expect, it } from 'vitest';
import { CHUNK_CHARS, promptKey, type PromptKey } from '../../daemon/scheduler/prompt-key';
import { HostCache, TOKENS_PER_CHUNK } from '../../daemon/scheduler/host-cache';
import { busyRange, cachedAt, pickSlot, spanWith, type SlotCandidate } from '../../daemon/scheduler/slot-pick';
import { cacheAwareOrder, holdMs, HOLD_PREFILL_TIMES, MAX_HOLD_MS, MAX_SKIPS, SKIP_WINDOW } from '../../daemon/scheduler/cache-order';
import type { Waiter } from '../../daemon/scheduler/policy';
import { SlotTable } from '../../daemon/scheduler/slot-table';
import { mulberry32 } from '../../platform/prng';

/** Text that differs from the first character for each seed. */
const text = (n: number, seed: string): string => {
  const random = mulberry32(seed.charCodeAt(0));
  return seed + Array.from({ length: n - 1 }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join('');
};
/** Conversation `c` at turn `t`: t + 4 chunks, every turn extending the last. */
const conv = (c: string, t: number): PromptKey => promptKey(text(CHUNK_CHARS * (t + 4), c));
const cand = (instanceId: string, slot: number, key?: PromptKey, lastUsedAt = 0): SlotCandidate => ({ instanceId, slot, key, lastUsedAt });

describe('HostCache (what a replica saved to host RAM)', () => {
  it('holds a prompt once its slot moved on, and forgets it once restored', () => {
    const h = new HostCache(Number.POSITIVE_INFINITY);
    h.save(conv('a', 1));
    expect(h.shared(conv('a', 2))).toBe(5); // turn 2 extends turn 1's 5 chunks
    expect(h.shared(conv('b', 2))).toBe(0);
    // a restore moves it into the slot: llama-server erases the entry
    expect(h.restore(conv('a', 2), conv('b', 1))).toBe(5);
    expect(h.shared(conv('a', 2))).toBe(0);
  });

  it('does not restore what the slot already holds at least as well', () => {
    const h = new HostCache(Number.POSITIVE_INFINITY);
    h.save(conv('a', 1));
    expect(h.restore(conv('a', 3), conv('a', 2))).toBe(0);
    expect(h.size).toBe(1);
  });

  it('drops saved prompts a newer save contains, and skips one already contained', () => {
    const h = new HostCache(Number.POSITIVE_INFINITY);
    h.save(conv('a', 1));
    h.save(conv('a', 3));
    expect(h.size).toBe(1);
    h.save(conv('a', 2)); // contained in turn 3
    expect(h.size).toBe(1);
    expect(h.shared(conv('a', 4))).toBe(7);
  });

  it('evicts the oldest save when the capacity (tokens) is reached, and never holds one larger than it', () => {
    const h = new HostCache(12 * TOKENS_PER_CHUNK);
    h.save(conv('a', 1)); // 5 chunks
    h.save(conv('b', 1)); // 10
    h.save(conv('c', 1)); // 15 > 12: a goes
    expect([h.shared(conv('a', 2)), h.shared(conv('b', 2)), h.shared(conv('c', 2))]).toEqual([0, 5, 5]);
    h.save(conv('d', 20)); // 24 chunks: over the limit, skipped as llama-server does
    expect(h.shared(conv('d', 21))).toBe(0);
    expect(h.size).toBe(2);
    new HostCache(0).save(conv('a', 1)); // no cache: nothing to hold, no error
  });

  it('ignores a saved prompt that would keep less than a quarter of itself (llama-server will not restore it)', () => {
    const h = new HostCache(Number.POSITIVE_INFINITY);
    const system = text(CHUNK_CHARS * 2, 's');
    h.save(promptKey(system + text(CHUNK_CHARS * 10, 'x')));
    expect(h.shared(promptKey(system + text(CHUNK_CHARS * 10, 'y')))).toBe(0);
  });
});

describe('SlotTable for affinity', () => {
  it('returns the prompt a slot held when leased (what llama-server saves), matches busy slots too, and empties slots on restart', () => {
    const t = new SlotTable(2);
    expect(t.take(0, { requestId: 'r1', source: 'http', since: 10 }, conv('a', 1))).toBeUndefined();
    t.release(0, 20);
    expect(t.take(0, { requestId: 'r2', source: 'http', since: 30 }, conv('b', 1))).toEqual(conv('a', 1));
    expect(t.shared(conv('b', 2))).toBe(5); // busy, still counted: its replica is the prompt's home
    t.release(0, 40);
    t.forget();
    expect(t.free('m#1').map((f) => [f.key, f.lastUsedAt])).toEqual([[undefined, 0], [undefined, 0]]);
  });
});

describe('pickSlot with host caches', () => {
  it("goes to the replica whose host cache holds the conversation, into its least recently used slot that has served", () => {
    const candidates = [cand('m#1', 0, conv('b', 1), 50), cand('m#2', 0), cand('m#2', 1, conv('c', 1), 30), cand('m#2', 2, conv('d', 1), 10)];
    const hostShared = new Map([['m#1', 0], ['m#2', 5]]);
    // not the empty slot 0: with id_slot set, llama-server skips its cache for an empty slot
    expect(pickSlot({ candidates, instanceId: 'm#1', key: conv('a', 2), affinity: true, hostShared })).toEqual({ instanceId: 'm#2', slot: 2, sharedChunks: 0, restoreChunks: 5 });
  });

  it('prefers a free slot holding as much in place over a restore', () => {
    const candidates = [cand('m#1', 0, conv('a', 1), 50), cand('m#2', 0, conv('c', 1), 30)];
    const hostShared = new Map([['m#1', 0], ['m#2', 5]]);
    expect(pickSlot({ candidates, instanceId: 'm#2', key: conv('a', 2), affinity: true, hostShared })).toEqual({ instanceId: 'm#1', slot: 0, sharedChunks: 5 });
    // a longer saved prompt beats a shorter one in place
    const longer = new Map([['m#1', 0], ['m#2', 6]]);
    expect(pickSlot({ candidates, instanceId: 'm#1', key: conv('a', 3), affinity: true, hostShared: longer })).toMatchObject({ instanceId: 'm#2', restoreChunks: 6 });
  });

  it('ignores host caches without affinity, of an avoided instance, or of an instance with no free slot', () => {
    const candidates = [cand('m#1', 0, conv('b', 1), 50), cand('m#1', 1)];
    const hostShared = new Map([['m#2', 5]]);
    expect(pickSlot({ candidates, instanceId: 'm#1', key: conv('a', 2), affinity: true, hostShared })).toEqual({ instanceId: 'm#1', slot: 1, sharedChunks: 0 });
    const both = [...candidates, cand('m#2', 0, conv('c', 1), 5)];
    expect(pickSlot({ candidates: both, instanceId: 'm#1', key: conv('a', 2), affinity: false, hostShared })).toMatchObject({ instanceId: 'm#1' });
    expect(pickSlot({ candidates: both, instanceId: 'm#1', key: conv('a', 2), affinity: true, hostShared, avoid: 'm#2' })).toMatchObject({ instanceId: 'm#1' });
    expect(pickSlot({ candidates: both, instanceId: 'm#1', key: conv('a', 2), affinity: true, hostShared })).toMatchObject({ instanceId: 'm#2', slot: 0 });
  });

  it('cachedAt names where the prompt hits now: a free slot or an open host cache', () => {
    const candidates = [cand('m#1', 0, conv('a', 1)), cand('m#2', 0, conv('z', 1))];
    expect(cachedAt({ candidates, key: conv('a', 2) })).toEqual({ instanceId: 'm#1', shared: 5 });
    expect(cachedAt({ candidates, key: conv('b', 2), hostShared: new Map([['m#2', 5]]) })).toEqual({ instanceId: 'm#2', shared: 5 });
    expect(cachedAt({ candidates, key: conv('b', 2), hostShared: new Map([['m#3', 5]]) })).toBeUndefined(); // no free slot there
    expect(cachedAt({ candidates, key: conv('b', 2) })).toBeUndefined();
  });
});

describe('pickSlot keeps the slots in use together (llama-server attends over the range of busy slots)', () => {
  it('spanWith is the distance from the lowest to the highest slot in use with the pick', () => {
    expect(spanWith(undefined, 5)).toBe(0);
    expect(spanWith(busyRange(), 5)).toBe(0);
    expect(spanWith(busyRange([4, 5, 6]), 7)).toBe(3);
    expect(spanWith(busyRange([4, 5, 6]), 0)).toBe(6);
    expect(spanWith(busyRange([6, 2]), 4)).toBe(4);
  });

  it('with no shared prefix: the free slot next to the busy ones, before an empty or a least recently used one far off', () => {
    // Slots 1-3 busy; free: 0 (used long ago), 4 (used recently), 7 (never used).
    const candidates = [cand('m#1', 0, conv('x', 1), 10), cand('m#1', 4, conv('y', 1), 900), cand('m#1', 7)];
    const busy = new Map([['m#1', busyRange([1, 2, 3])]]);
    expect(pickSlot({ candidates, instanceId: 'm#1', key: conv('z', 1), affinity: true, busy })).toMatchObject({ slot: 0 }); // span 3, like 4: 0 is less recently used
    expect(pickSlot({ candidates: candidates.slice(1), instanceId: 'm#1', key: conv('z', 1), affinity: true, busy })).toMatchObject({ slot: 4 }); // not the empty slot 7
    // Without busy slots (an idle replica), as before: the empty slot first, then the least recently used.
    expect(pickSlot({ candidates, instanceId: 'm#1', key: conv('z', 1), affinity: true })).toMatchObject({ slot: 7 });
    expect(pickSlot({ candidates, instanceId: 'm#1', key: conv('z', 1), affinity: false, busy })).toMatchObject({ slot: 0 });
    // A gap between busy slots: an empty one there first, then the least recently used one there.
    const gaps = [cand('m#1', 1, conv('x', 1), 500), cand('m#1', 2, conv('y', 1), 100), cand('m#1', 5)];
    const around = new Map([['m#1', busyRange([0, 3])]]);
    expect(pickSlot({ candidates: gaps, instanceId: 'm#1', key: conv('z', 1), affinity: true, busy: around })).toMatchObject({ slot: 2 });
    expect(pickSlot({ candidates: [...gaps, cand('m#1', 1)].slice(1), instanceId: 'm#1', affinity: false, busy: around })).toMatchObject({ slot: 1 });
  });

  it('among slots holding as much of the prompt: the one next to the busy ones; a longer prefix still wins', () => {
    // The same system prompt in slots 0, 5 and 7 (7 most recent); slots 4 and 6 busy.
    const sys = conv('s', 1);
    const candidates = [cand('m#1', 0, sys, 100), cand('m#1', 5, sys, 200), cand('m#1', 7, sys, 300)];
    const busy = new Map([['m#1', busyRange([4, 6])]]);
    expect(pickSlot({ candidates, instanceId: 'm#1', key: conv('s', 2), affinity: true, busy })).toMatchObject({ slot: 5, sharedChunks: 5 });
    const longer = [...candidates, cand('m#1', 0, conv('s', 2), 50)].slice(1);
    expect(pickSlot({ candidates: longer, instanceId: 'm#1', key: conv('s', 3), affinity: true, busy })).toMatchObject({ slot: 0, sharedChunks: 6 });
  });

  it('restores a host-cached prompt into the used slot next to the busy ones', () => {
    const candidates = [cand('m#2', 0, conv('b', 1), 10), cand('m#2', 3, conv('c', 1), 20), cand('m#2', 7)];
    const busy = new Map([['m#2', busyRange([2])]]);
    expect(pickSlot({ candidates, instanceId: 'm#1', key: conv('a', 2), affinity: true, hostShared: new Map([['m#2', 5]]), busy })).toEqual({ instanceId: 'm#2', slot: 3, sharedChunks: 0, restoreChunks: 5 });
  });
});

describe('cache-aware dequeue', () => {
  type W = Waiter & { hit?: string };
  const w = (id: string, hit?: string, over: Partial<W> = {}): W => ({ id, enqueuedAt: 0, deadline: 1e9, hit, ...over });
  const order = (ws: W[], free: Record<string, number>, now = 100, backgroundMaxWaitMs?: number) =>
    cacheAwareOrder({ ordered: ws, freeByInstance: new Map(Object.entries(free)), hitAt: (x) => x.hit, now, backgroundMaxWaitMs });
  const ids = (ws: W[]): string[] => ws.map((x) => x.id);

  it('starts a request whose prompt is cached where the slot is free before one that misses anyway', () => {
    const r = order([w('miss'), w('elsewhere', 'B'), w('hit', 'A')], { A: 1 });
    expect(ids(r.order)).toEqual(['hit', 'elsewhere', 'miss']);
    expect(ids(r.passedOver)).toEqual(['miss']);
  });

  it('changes nothing when everyone can start, when the head hits, or when nothing behind hits', () => {
    expect(ids(order([w('a'), w('b', 'A')], { A: 2 }).order)).toEqual(['a', 'b']);
    expect(ids(order([w('a', 'A'), w('b', 'A')], { A: 1 }).order)).toEqual(['a', 'b']);
    expect(ids(order([w('a'), w('b', 'B')], { A: 1 }).order)).toEqual(['a', 'b']);
  });

  it('pulls no more hits to an instance than it has free slots', () => {
    const r = order([w('x'), w('y'), w('h1', 'A'), w('h2', 'A'), w('h3', 'B')], { A: 1, B: 1 });
    expect(ids(r.order).slice(0, 2).sort()).toEqual(['h1', 'h3']);
  });

  it(`passes a request over at most ${MAX_SKIPS} times, and pulls only from ${SKIP_WINDOW} places behind`, () => {
    expect(ids(order([w('old', undefined, { skips: MAX_SKIPS }), w('hit', 'A')], { A: 1 }).order)).toEqual(['old', 'hit']);
    const far = [w('head'), ...Array.from({ length: SKIP_WINDOW }, (_, i) => w(`m${i}`)), w('hit', 'A')];
    expect(order(far, { A: 1 }).order[0]!.id).toBe('head');
    const near = [w('head'), ...Array.from({ length: SKIP_WINDOW - 1 }, (_, i) => w(`m${i}`)), w('hit', 'A')];
    expect(order(near, { A: 1 }).order[0]!.id).toBe('hit');
  });

  it('never crosses a priority class, aged or not, and never moves retries or held requests', () => {
    expect(ids(order([w('i'), w('bg', 'A', { priority: 'background' })], { A: 1 }).order)).toEqual(['i', 'bg']);
    // an aged background request is served as interactive, but is not swapped with a fresh one of either class
    const aged = order([w('aged', undefined, { priority: 'background', enqueuedAt: 0 }), w('young', 'A', { priority: 'background', enqueuedAt: 90 })], { A: 1 }, 100, 50);
    expect(ids(aged.order)).toEqual(['aged', 'young']);
    expect(ids(order([w('retry', undefined, { avoid: 'B' }), w('hit', 'A')], { A: 1 }).order)).toEqual(['retry', 'hit']);
    expect(ids(order([w('held', undefined, { held: true }), w('hit', 'A')], { A: 1 }).order)).toEqual(['held', 'hit']);
    expect(ids(order([w('a'), w('held', 'A', { held: true })], { A: 1 }).order)).toEqual(['a', 'held']);
    expect(ids(order([w('a'), w('gone', 'A', { deadline: 50 })], { A: 1 }).order)).toEqual(['a', 'gone']);
  });

  describe('hold for the home replica', () => {
    type H = W & { home?: string };
    const h = (id: string, home?: string, over: Partial<H> = {}): H => ({ ...w(id, undefined, over), home });
    const held = (ws: H[], free: Record<string, number>, ms = 100, now = 1000) =>
      cacheAwareOrder({ ordered: ws, freeByInstance: new Map(Object.entries(free)), hitAt: (x) => x.hit, homeAt: (x) => x.home, holdMs: () => ms, now });

    it('holds a request whose prompt only a full replica has cached, even with nobody else waiting', () => {
      const r = held([h('a', 'B')], { A: 1 });
      expect(r.holds).toEqual([{ waiter: expect.objectContaining({ id: 'a' }), until: 1100 }]);
    });

    it('keeps the first hold end, and never holds the same request twice', () => {
      expect(held([h('a', 'B', { cacheHoldUntil: 1050 })], { A: 1 }).holds[0]!.until).toBe(1050);
      expect(held([h('a', 'B', { cacheHoldUntil: 1000 })], { A: 1 }).holds).toEqual([]);
    });

    it('does not hold a miss without a home, a hit, a retry, or when holding is worth nothing', () => {
      expect(held([h('new')], { A: 1 }).holds).toEqual([]);
      expect(held([h('hit', 'B', { hit: 'A' })], { A: 1 }).holds).toEqual([]);
      expect(held([h('retry', 'B', { avoid: 'A' })], { A: 1 }).holds).toEqual([]);
      expect(held([h('a', 'B')], { A: 1 }, 0).holds).toEqual([]);
      expect(held([h('a', 'B')], {}).holds).toEqual([]); // nothing free: nothing to hold back from
    });

    it('holds the second of two hits on one free slot, rather than let it start on another replica', () => {
      const r = held([h('first', undefined, { hit: 'A' }), h('second', undefined, { hit: 'A' }), h('other', undefined, { hit: 'B' })], { A: 1, B: 1 });
      expect(r.holds).toEqual([{ waiter: expect.objectContaining({ id: 'second' }), until: 1100 }]);
      // with a slot left for each, nobody waits; once held, it goes where it can
      expect(held([h('first', undefined, { hit: 'A' }), h('second', undefined, { hit: 'A' })], { A: 2 }).holds).toEqual([]);
      expect(held([h('first', undefined, { hit: 'A' }), h('second', undefined, { hit: 'A', cacheHoldUntil: 900 })], { A: 1, B: 1 }).holds).toEqual([]);
    });

    it('caps a hold at MAX_HOLD_MS', () => {
      expect(held([h('a', 'B')], { A: 1 }, 60_000).holds[0]!.until).toBe(1000 + MAX_HOLD_MS);
    });

    it('holds about what recomputing the extra cached part would cost, within two lease durations', () => {
      // 10 extra chunks of ~16 tokens at 0.5 ms a token: 80 ms of prefill saved
      expect(holdMs(10, 1000, 0.5)).toBe(HOLD_PREFILL_TIMES * 80);
      expect(holdMs(10, 50, 0.5)).toBe(100); // two lease durations
      expect(holdMs(1000, 10_000, 5)).toBe(MAX_HOLD_MS);
      expect(holdMs(0, 1000, 0.5)).toBe(0);
      expect(holdMs(10, undefined, 0.5)).toBe(0); // rates unknown: no hold
      expect(holdMs(10, 1000, undefined)).toBe(0);
    });
  });
});
