// Priority classes, aging, reserved slots and the ETA in the pure policy (daemon/scheduler/policy.ts).
import { describe, expect, it } from 'vitest';
import { countByClass, etaMs, ewma, plan, positions, servedAs, serviceOrder, type InstanceLoad, type PlanInput, type Waiter } from '../../daemon/scheduler/policy';
import { Sessions } from '../../daemon/scheduler/sessions';

const inst = (id: string, over: Partial<InstanceLoad> = {}): InstanceLoad => ({ id, ready: true, slots: 4, inFlight: 0, busySeen: 0, ...over });
const bg = (id: string, enqueuedAt = 0): Waiter => ({ id, enqueuedAt, deadline: 1e9, priority: 'background' });
const ia = (id: string, enqueuedAt = 0): Waiter => ({ id, enqueuedAt, deadline: 1e9, priority: 'interactive' });
const input = (waiters: Waiter[], instances: InstanceLoad[], over: Partial<PlanInput> = {}): PlanInput => ({ mode: 'slot-aware', rrCursor: 0, waiters, instances, ...over });
const ids = (ws: Waiter[]): string[] => ws.map((w) => w.id);

describe('serviceOrder', () => {
  it('serves interactive before background, FIFO inside each class', () => {
    expect(ids(serviceOrder([bg('b1'), ia('i1'), bg('b2'), ia('i2')], 0))).toEqual(['i1', 'i2', 'b1', 'b2']);
  });
  it('a waiter without a priority is interactive', () => {
    expect(ids(serviceOrder([bg('b1'), { id: 'x', enqueuedAt: 0, deadline: 1e9 }], 0))).toEqual(['x', 'b1']);
  });
  it('background work that waited backgroundMaxWaitMs is served like interactive, in arrival order', () => {
    const ws = [bg('old', 0), ia('i1', 100), bg('young', 900)];
    expect(ids(serviceOrder(ws, 999, 1000))).toEqual(['i1', 'old', 'young']);
    expect(ids(serviceOrder(ws, 1000, 1000))).toEqual(['old', 'i1', 'young']); // exactly at the bound
    expect(servedAs(ws[0]!, 1000, 1000)).toBe('interactive');
    expect(servedAs(ws[2]!, 1000, 1000)).toBe('background');
  });
  it('without a bound background work never ages', () => {
    expect(servedAs(bg('b', 0), 1e12)).toBe('background');
  });
  it('does not mutate its input', () => {
    const ws = [bg('b'), ia('i')];
    serviceOrder(ws, 0);
    expect(ids(ws)).toEqual(['b', 'i']);
  });
  it('positions follow service order; countByClass counts the class sent', () => {
    const ws = [bg('b1', 0), ia('i1', 10), bg('b2', 20)];
    expect([...positions(ws, 50, 1000)]).toEqual([['i1', 1], ['b1', 2], ['b2', 3]]);
    expect(countByClass(ws)).toEqual({ interactive: 1, background: 2 });
  });
});

describe('plan with priorities', () => {
  it('one free slot goes to the interactive waiter that arrived after 12 background ones', () => {
    const waiters = [...Array.from({ length: 12 }, (_, i) => bg(`b${i}`, i)), ia('late', 100)];
    const p = plan(input(waiters, [inst('m#1', { inFlight: 3 })]), 200);
    expect(p.assignments).toEqual([{ waiterId: 'late', instanceId: 'm#1' }]);
  });
  it('aged background work goes before younger interactive work', () => {
    const p = plan(input([bg('old', 0), ia('i', 5000)], [inst('m#1', { inFlight: 3 })], { backgroundMaxWaitMs: 5000 }), 6000);
    expect(p.assignments.map((a) => a.waiterId)).toEqual(['old']);
  });
  it('reservedSlots: background work leaves that many slots free', () => {
    const waiters = [bg('b1'), bg('b2'), bg('b3'), bg('b4')];
    const p = plan(input(waiters, [inst('m#1')], { reservedSlots: 1 }), 0);
    expect(p.assignments.map((a) => a.waiterId)).toEqual(['b1', 'b2', 'b3']);
  });
  it('reservedSlots: an interactive waiter takes the reserved slot', () => {
    const p = plan(input([ia('i1'), bg('b1')], [inst('m#1', { inFlight: 3 })], { reservedSlots: 1 }), 0);
    expect(p.assignments.map((a) => a.waiterId)).toEqual(['i1']);
  });
  it('reservedSlots count over all ready instances', () => {
    const p = plan(input([bg('b1'), bg('b2')], [inst('m#1', { inFlight: 3 }), inst('m#2', { inFlight: 3 }), inst('m#3', { ready: false })], { reservedSlots: 1 }), 0);
    expect(p.assignments.map((a) => a.waiterId)).toEqual(['b1']);
  });
  it('reservedSlots: aged background work is ordered first but still leaves the reserved slot', () => {
    const p = plan(input([bg('old', 0), ia('i', 100)], [inst('m#1', { inFlight: 3 })], { reservedSlots: 1, backgroundMaxWaitMs: 10 }), 200);
    expect(p.assignments.map((a) => a.waiterId)).toEqual(['i']);
  });
  it('round-robin ignores reservedSlots (llama-server queues there itself)', () => {
    const p = plan(input([bg('b1')], [inst('m#1', { inFlight: 4 })], { mode: 'round-robin', reservedSlots: 1 }), 0);
    expect(p.assignments.map((a) => a.waiterId)).toEqual(['b1']);
  });
  it('deadlines still expire background work', () => {
    const p = plan(input([{ ...bg('b1'), deadline: 50 }], [inst('m#1', { inFlight: 4 })]), 50);
    expect(p.expired).toEqual(['b1']);
  });
});

describe('service time and ETA', () => {
  it('ewma starts at the first sample and moves by alpha', () => {
    expect(ewma(undefined, 1000)).toBe(1000);
    expect(ewma(1000, 2000, 0.5)).toBe(1500);
  });
  it('etaMs: position × service time ÷ slots; unknown without a service time', () => {
    expect(etaMs(1, 4, 4000)).toBe(1000);
    expect(etaMs(12, 4, 4000)).toBe(12000);
    expect(etaMs(3, 4, undefined)).toBeUndefined();
    expect(etaMs(3, 0, 1000)).toBeUndefined();
  });
});

describe('Sessions (newest wins)', () => {
  it('returns the older items of the same model and key, and only those', () => {
    const s = new Sessions<string>();
    expect(s.replace('m', 'k', 'a')).toEqual([]);
    expect(s.replace('m', 'other', 'x')).toEqual([]);
    expect(s.replace('n', 'k', 'y')).toEqual([]);
    expect(s.replace('m', 'k', 'b')).toEqual(['a']);
    s.remove('m', 'k', 'a'); // a superseded item finishing later must not drop the newest
    expect(s.replace('m', 'k', 'c')).toEqual(['b']);
    s.remove('m', 'k', 'c');
    s.remove('m', 'other', 'x');
    s.remove('n', 'k', 'y');
    expect(s.size).toBe(0);
  });
});

describe('plan with held waiters', () => {
  it('skips a held waiter (its superseded request still holds a slot) and lets the next one start', () => {
    const p = plan(input([{ ...ia('new'), held: true }, ia('other')], [inst('m#1', { inFlight: 3 })]), 0);
    expect(p.assignments.map((a) => a.waiterId)).toEqual(['other']);
  });
});
