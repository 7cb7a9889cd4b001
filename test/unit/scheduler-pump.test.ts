// One pump can start several waiters at once (slots freed in the same tick, a model becoming ready):
// the free slots it plans with are listed once per pump and must stay current as each waiter takes one.
import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../daemon/config/validate';
import { Scheduler } from '../../daemon/scheduler/scheduler';
import { fakeSupervisor } from '../helpers/fake-supervisor';

describe('scheduler pump', () => {
  it.each([false, true])('starts every waiter that slots freed in one tick make room for, each in a slot of its own (affinity %s)', async (affinity) => {
    const s = new Scheduler({ supervisor: fakeSupervisor(4, affinity), config: defaultConfig() });
    // One long prompt for all: with affinity every free slot is an equal cache hit for every waiter.
    const prompt = 'You are a helpful assistant. '.repeat(100);
    const acquire = () => s.acquire(s.open('coder', 'http', prompt), {});
    const first = [];
    for (let i = 0; i < 4; i++) first.push(await acquire());
    expect(first.map((l) => l.slot).sort()).toEqual([0, 1, 2, 3]);
    const waiting = [0, 1, 2, 3].map(() => acquire());
    await new Promise((r) => setImmediate(r));
    expect(s.waiting('coder')).toBe(4);
    for (const lease of first) lease.release(); // one tick: the pump after it starts all four
    const second = await Promise.all(waiting);
    expect(second.map((l) => l.slot).sort()).toEqual([0, 1, 2, 3]);
    expect(s.waiting('coder')).toBe(0);
    s.close();
  });

  it('asks for a /slots poll now when work waits for slots the last poll read busy with no lease, and takes them once it reads them idle', async () => {
    const sup = fakeSupervisor(2, false);
    const s = new Scheduler({ supervisor: sup, config: defaultConfig() });
    const own = await s.acquire(s.open('coder', 'http', 'a'), {});
    sup.poll([true, true]); // `own`'s slot, and the other busy with no lease: someone else's, or a stale read
    expect(sup.rechecks).toBe(0); // nobody waits
    let started = false;
    const waiter = s.acquire(s.open('coder', 'http', 'b'), {}).then((l) => ((started = true), l));
    await new Promise((r) => setImmediate(r));
    expect(started).toBe(false);
    expect(sup.rechecks).toBeGreaterThan(0); // rather than waiting for the next poll or for `own` to end
    sup.poll([0, 1].map((id) => id === own.slot)); // the recheck reads the other idle
    const second = await waiter;
    expect(second.slot).toBe(own.slot === 0 ? 1 : 0);
    const before = sup.rechecks;
    own.release();
    second.release();
    expect(sup.rechecks).toBe(before); // nothing waits: no poll asked for
    s.close();
  });

  it('is active while a request holds a slot or waits for one, and only then (the loop-lag timer runs on it)', async () => {
    const s = new Scheduler({ supervisor: fakeSupervisor(1, false), config: defaultConfig() });
    expect(s.active()).toBe(false);
    const lease = await s.acquire(s.open('coder', 'http', 'a'), {});
    expect(s.active()).toBe(true);
    const waiter = s.acquire(s.open('coder', 'http', 'b'), {});
    lease.release(); // the waiter takes the slot: still active
    const second = await waiter;
    expect(s.active()).toBe(true);
    second.release();
    expect(s.active()).toBe(false);
    s.close();
  });
});
