// Slot handoff: the pure decision (handoff.ts: when a request is near its end, which waiter gets its
// slot) and the scheduler's effects around it with a fake clock and a stand-in supervisor (no process,
// no network): the successor is handed the slot early, counted as queued, leased at the release.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { chooseHandoffs, endTokens, nearEnd, type EndingSlot, type HandoffInput } from '../../daemon/scheduler/handoff';
import type { InstanceLoad, Waiter } from '../../daemon/scheduler/policy';
import { HANDOFF_INTERACTIVE_QUIET_MS, Scheduler, type Lease, type LeaseRecord, type Ticket } from '../../daemon/scheduler/scheduler';
import { MAX_SKIPS } from '../../daemon/scheduler/cache-order';
import { defaultConfig } from '../../daemon/config/validate';
import { fakeSupervisor } from '../helpers/fake-supervisor';

describe('endTokens', () => {
  it.each([
    [{ max_tokens: 16 }, 16],
    [{ max_completion_tokens: 8 }, 8],
    [{ n_predict: 4, max_tokens: 16 }, 4], // llama-server: n_predict overrides max_tokens
    [{ n_predict: -1, max_tokens: 16 }, undefined], // until the context is full: unknown
    [{ max_tokens: 16, max_completion_tokens: 8 }, 16],
    [{}, undefined],
    [{ max_tokens: null }, undefined],
    [{ max_tokens: '16' }, undefined],
  ])('%j → %s', (body, end) => {
    expect(endTokens(body)).toBe(end);
  });
});

describe('nearEnd', () => {
  it.each([
    { end: 16, tokens: 13, handoff: 2, near: false },
    { end: 16, tokens: 14, handoff: 2, near: true },
    { end: 16, tokens: 17, handoff: 2, near: true }, // a chat stream's role event runs one ahead
    { end: 16, tokens: 15, handoff: 0, near: false }, // 0 = off
    { end: undefined, tokens: 1000, handoff: 2, near: false }, // unknown end: never
    { end: 1, tokens: 0, handoff: 2, near: true }, // shorter than the handoff window: at once
  ])('end $end, $tokens events, handoffTokens $handoff → $near', ({ end, tokens, handoff, near }) => {
    expect(nearEnd(end, tokens, handoff)).toBe(near);
  });
});

describe('chooseHandoffs', () => {
  const inst = (id: string, over: Partial<InstanceLoad> = {}): InstanceLoad => ({ id, ready: true, slots: 1, inFlight: 1, busySeen: 0, ownBusySeen: 0, ...over });
  interface W extends Waiter {
    ws?: boolean;
  }
  const w = (id: string, over: Partial<W> = {}): W => ({ id, enqueuedAt: 0, deadline: 1e9, ...over });
  const ending = (instanceId: string, slot: number, remaining = 2): EndingSlot => ({ instanceId, slot, remaining });
  const choose = (over: Partial<HandoffInput<W>>) =>
    chooseHandoffs<W>({ mode: 'slot-aware', waiters: [], instances: [inst('a')], ending: [ending('a', 0)], canHandoff: (x) => !x.ws, now: 100, ...over }).map((h) => [h.waiter.id, h.instanceId, h.slot]);

  it('hands the ending slot to the waiter plan() would start next, one per slot', () => {
    expect(choose({ waiters: [w('1'), w('2')] })).toEqual([['1', 'a', 0]]);
  });
  it('never while the instance has a truly free slot (normal dispatch applies)', () => {
    expect(choose({ waiters: [w('1')], instances: [inst('a', { slots: 2 })] })).toEqual([]);
  });
  it('nothing without an ending slot, a waiter, or in round-robin mode', () => {
    expect(choose({ waiters: [w('1')], ending: [] })).toEqual([]);
    expect(choose({ waiters: [] })).toEqual([]);
    expect(choose({ waiters: [w('1')], mode: 'round-robin' })).toEqual([]);
  });
  it('two ending slots: the nearer end goes to the first in service order; interactive before background', () => {
    const got = choose({
      waiters: [w('bg', { priority: 'background' }), w('i1'), w('i2')],
      instances: [inst('a', { slots: 2, inFlight: 2 })],
      ending: [ending('a', 0, 2), ending('a', 1, 1)],
    });
    expect(got).toEqual([['i1', 'a', 1], ['i2', 'a', 0]]);
  });
  it('held waiters (a cache home elsewhere, a session hold, already handed off) are passed over as plan() does', () => {
    expect(choose({ waiters: [w('1', { held: true }), w('2')] })).toEqual([['2', 'a', 0]]);
    expect(choose({ waiters: [w('1', { holdUntil: 500 }), w('2')] })).toEqual([['2', 'a', 0]]);
  });
  it('a next waiter that cannot be sent early keeps the slot from the ones behind it (no queue jumping)', () => {
    expect(choose({ waiters: [w('ws', { ws: true }), w('2')] })).toEqual([]);
  });
  it('reserved slots: background work is not handed the last slot', () => {
    expect(choose({ waiters: [w('bg', { priority: 'background' })], reservedSlots: 1 })).toEqual([]);
  });
  it('an ending slot on a full replica while another replica is full too', () => {
    const got = choose({ waiters: [w('1'), w('2')], instances: [inst('a'), inst('b')], ending: [ending('b', 0)] });
    expect(got).toEqual([['1', 'b', 0]]);
  });
  it('expired waiters are not handed a slot', () => {
    expect(choose({ waiters: [w('old', { deadline: 50 }), w('2')] })).toEqual([['2', 'a', 0]]);
  });
});

// ---------------------------------------------------------------------------------------------
// The scheduler (fake clock, stand-in supervisor of one ready instance).


describe('Scheduler: slot handoff (fake clock)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function setup(slots = 1, handoffTokens = 2, affinity = false) {
    const config = defaultConfig();
    config.queue.handoffTokens = handoffTokens;
    const s = new Scheduler({ supervisor: fakeSupervisor(slots, affinity), config });
    const records: LeaseRecord[] = [];
    s.on('lease', (r) => records.push(r));
    const leases = new Map<string, Lease>();
    const errors = new Map<string, string>();
    const tickets = new Map<string, Ticket>();
    const take = (name: string, opts: { handoff?: boolean; maxTokens?: number; signal?: AbortSignal; prompt?: string; priority?: 'interactive' | 'background' } = {}): void => {
      const t = s.open('coder', 'http', opts.prompt, { maxTokens: opts.maxTokens ?? 16, ...(opts.priority ? { priority: opts.priority } : {}) });
      tickets.set(name, t);
      s.acquire(t, { handoff: opts.handoff ?? true, signal: opts.signal }).then(
        (lease) => void leases.set(name, lease),
        (err: { code: string }) => void errors.set(name, err.code),
      );
    };
    const rows = () => s.queueView('coder')!.slots('coder#1', []);
    return { s, records, leases, errors, tickets, take, rows };
  }

  it('1 slot: the second stream is handed the slot near the first one\'s end, queued until it is released, then leased', async () => {
    const { s, records, leases, tickets, take, rows } = setup();
    take('a');
    await vi.advanceTimersByTimeAsync(0);
    take('b');
    await vi.advanceTimersByTimeAsync(0);
    const a = leases.get('a')!;
    expect(a.handoff).toBeUndefined();
    a.progress(13);
    await vi.advanceTimersByTimeAsync(0);
    expect(leases.has('b')).toBe(false); // 3 tokens left: not yet
    a.progress(14);
    await vi.advanceTimersByTimeAsync(0);
    const b = leases.get('b')!;
    expect(b.slot).toBe(0);
    expect(b.handoff).toBeInstanceOf(Promise);
    let began = false;
    void b.handoff!.then(() => (began = true));
    // Still queued: status counts it waiting; the slot row names it as next.
    expect(s.waiting('coder')).toBe(1);
    expect(rows()[0]).toMatchObject({ busy: true, requestId: tickets.get('a')!.id, next: tickets.get('b')!.id });
    // One successor per slot.
    take('c');
    a.progress(15);
    await vi.advanceTimersByTimeAsync(0);
    expect(leases.has('c')).toBe(false);
    await vi.advanceTimersByTimeAsync(40);
    s.finish(tickets.get('a')!, 'completed');
    a.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(began).toBe(true);
    expect(rows()[0]).toMatchObject({ busy: true, requestId: tickets.get('b')!.id });
    expect(rows()[0]!.next).toBeUndefined();
    expect(s.waiting('coder')).toBe(1); // c
    // Its queue wait and lease start at the predecessor's release, not at the handoff.
    expect(b.waitedMs).toBe(40);
    b.progress(14); // near its own end: c is handed the slot in turn
    await vi.advanceTimersByTimeAsync(0);
    expect(leases.get('c')!.handoff).toBeInstanceOf(Promise);
    await vi.advanceTimersByTimeAsync(10);
    b.release();
    await vi.advanceTimersByTimeAsync(0);
    // The record keeps when the slot was handed off (the scheduler's decision) beside when its lease began.
    expect(records.map((r) => [r.requestId, r.leasedAt - 1_000_000, r.releasedAt - 1_000_000, r.handedOffAt === undefined ? undefined : r.handedOffAt - 1_000_000])).toEqual([
      [tickets.get('a')!.id, 0, 40, undefined],
      [tickets.get('b')!.id, 40, 50, 0],
    ]);
    leases.get('c')!.release();
    expect(s.busy('coder')).toBe(false);
    s.close();
  });

  it('a successor whose client leaves while handed off frees nothing, leaves the queue, and the slot goes to the next waiter', async () => {
    const { s, leases, errors, tickets, take, rows } = setup();
    take('a');
    await vi.advanceTimersByTimeAsync(0);
    const client = new AbortController();
    take('b', { signal: client.signal });
    take('c');
    leases.get('a')!.progress(14);
    await vi.advanceTimersByTimeAsync(0);
    const b = leases.get('b')!;
    let rejected: string | undefined;
    b.handoff!.catch((e: { code: string }) => (rejected = e.code));
    client.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(rejected).toBe('SW_ERR_CANCELLED');
    b.release(); // the way in ends it (dispatch's finally): harmless, nothing was leased
    await vi.advanceTimersByTimeAsync(0);
    expect(s.queueView('coder')!.queue.entries!.map((e) => e.id)).toEqual([tickets.get('c')!.id]);
    // a is still the slot's lease; its next is c now.
    expect(rows()[0]).toMatchObject({ requestId: tickets.get('a')!.id, next: tickets.get('c')!.id });
    leases.get('a')!.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(rows()[0]).toMatchObject({ busy: true, requestId: tickets.get('c')!.id });
    expect(errors.size).toBe(0);
    leases.get('c')!.release();
    expect(s.busy('coder')).toBe(false);
    s.close();
  });

  it('a handed-off request superseded by a newer one of its session: counted unstarted, the newer one is handed the slot', async () => {
    const config = defaultConfig();
    config.queue.sessionHoldMs = 0;
    const s = new Scheduler({ supervisor: fakeSupervisor(1), config });
    const open = (session?: string) => s.open('coder', 'http', undefined, { maxTokens: 16, ...(session ? { session } : {}) });
    const a = open();
    const la = await s.acquire(a, { handoff: true });
    const b = open('k');
    let lb: Lease | undefined;
    void s.acquire(b, { handoff: true }).then((l) => (lb = l));
    la.progress(14);
    await vi.advanceTimersByTimeAsync(0);
    let code: string | undefined;
    lb!.handoff!.catch((e: { code: string }) => (code = e.code));
    const c = open('k');
    let lc: Lease | undefined;
    void s.acquire(c, { handoff: true }).then((l) => (lc = l));
    await vi.advanceTimersByTimeAsync(0);
    expect(code).toBe('SW_ERR_SUPERSEDED');
    s.finish(b, 'cancelled');
    lb!.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(s.queueView('coder')!.slots('coder#1', [])[0]).toMatchObject({ requestId: a.id, next: c.id });
    expect(s.queueView('coder')!).toMatchObject({ superseded: 1, supersededUnstarted: 1 });
    la.release();
    await vi.advanceTimersByTimeAsync(0);
    expect(s.queueView('coder')!.slots('coder#1', [])[0]).toMatchObject({ requestId: c.id });
    lc!.release();
    s.close();
  });

  it('handoffTokens 0, a waiter that cannot be sent early, or an unknown end: the slot is given at its release as before', async () => {
    for (const [handoffTokens, handoff, maxTokens] of [[0, true, 16], [2, false, 16], [2, true, undefined]] as const) {
      const { s, leases, take } = setup(1, handoffTokens);
      const t = s.open('coder', 'http', undefined, maxTokens === undefined ? {} : { maxTokens });
      let a: Lease | undefined;
      void s.acquire(t, { handoff: true }).then((l) => (a = l));
      await vi.advanceTimersByTimeAsync(0);
      take('b', { handoff });
      a!.progress(15);
      await vi.advanceTimersByTimeAsync(0);
      expect(leases.has('b')).toBe(false);
      a!.release();
      await vi.advanceTimersByTimeAsync(0);
      expect(leases.get('b')!.handoff).toBeUndefined();
      leases.get('b')!.release();
      s.close();
    }
  });

  it('no background work is handed a slot while interactive requests arrived in the last 5 s: one arriving in the window would wait a slot more', async () => {
    const { s, leases, take } = setup();
    take('i', { priority: 'interactive' }); // an editor's request: runs at once
    await vi.advanceTimersByTimeAsync(0);
    take('bg', { priority: 'background' });
    leases.get('i')!.progress(15);
    await vi.advanceTimersByTimeAsync(0);
    expect(leases.has('bg')).toBe(false); // not handed off: the slot stays uncommitted
    leases.get('i')!.release();
    await vi.advanceTimersByTimeAsync(0);
    const bg = leases.get('bg')!;
    expect(bg.handoff).toBeUndefined(); // given at the release, as without handoff
    // Quiet for HANDOFF_INTERACTIVE_QUIET_MS: background work is handed slots again.
    await vi.advanceTimersByTimeAsync(HANDOFF_INTERACTIVE_QUIET_MS);
    take('bg2', { priority: 'background' });
    bg.progress(15);
    await vi.advanceTimersByTimeAsync(0);
    expect(leases.get('bg2')!.handoff).toBeInstanceOf(Promise);
    bg.release();
    await vi.advanceTimersByTimeAsync(0);
    leases.get('bg2')!.release();
    s.close();
  });

  it('a cache hit handed a slot ahead of a miss counts as passing it over: the miss is handed the slot after MAX_SKIPS', async () => {
    const { s, leases, take } = setup(1, 2, true);
    const conv = 'system: you are a helpful assistant. '.repeat(8); // several 64-char chunks
    const other = 'user: something else entirely, nothing in common with it. '.repeat(8);
    take('a', { prompt: conv });
    await vi.advanceTimersByTimeAsync(0);
    take('miss', { prompt: other });
    let prev = 'a';
    const seen = new Set<string>();
    for (const [k, next] of ['h1', 'h2', 'h3'].entries()) {
      take(next, { prompt: conv + `turn ${k} `.repeat(10) }); // the slot's prefix: a hit
      leases.get(prev)!.progress(15);
      await vi.advanceTimersByTimeAsync(0);
      const handed = [...leases.keys()].find((n) => leases.get(n)!.handoff !== undefined && !seen.has(n));
      if (handed) seen.add(handed);
      if (k < MAX_SKIPS) {
        expect(handed, `handoff ${k + 1}`).toBe(next); // the hit jumps the miss
      } else {
        expect(handed, `handoff ${k + 1}`).toBe('miss'); // passed over MAX_SKIPS times: its turn
        break;
      }
      leases.get(prev)!.release();
      await vi.advanceTimersByTimeAsync(0);
      prev = next;
    }
    s.close();
  });

  it('never while a slot is free: the waiter takes the free slot', async () => {
    const { s, leases, take } = setup(2);
    take('a');
    await vi.advanceTimersByTimeAsync(0);
    leases.get('a')!.progress(15);
    take('b');
    await vi.advanceTimersByTimeAsync(0);
    expect(leases.get('b')!.handoff).toBeUndefined();
    expect(leases.get('b')!.slot).not.toBe(leases.get('a')!.slot);
    s.close();
  });

  it('a predecessor that ends early starts its successor at once; a queue deadline does not expire a handed-off request', async () => {
    const { s, leases, errors, take } = setup();
    take('a');
    await vi.advanceTimersByTimeAsync(0);
    take('b');
    leases.get('a')!.progress(14);
    await vi.advanceTimersByTimeAsync(0);
    let began = false;
    void leases.get('b')!.handoff!.then(() => (began = true));
    await vi.advanceTimersByTimeAsync(defaultConfig().queue.timeoutMs + 1);
    expect(errors.size).toBe(0);
    expect(s.waiting('coder')).toBe(1);
    // Its past deadline does not re-arm the timer over and over while it waits for the release.
    let changes = 0;
    s.on('change', () => changes++);
    await vi.advanceTimersByTimeAsync(100);
    expect(changes).toBe(0);
    leases.get('a')!.release(); // e.g. cancelled, or EOS before max_tokens
    await vi.advanceTimersByTimeAsync(0);
    expect(began).toBe(true);
    expect(s.waiting('coder')).toBe(0);
    s.close();
  });
});
