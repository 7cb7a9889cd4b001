// StatusHub's push timing: changes are coalesced and spaced 250 ms apart, but a model's load state
// change (changed({now: true})) goes out on the next turn of the event loop.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StatusHub } from '../../daemon/status/hub';
import type { Supervisor } from '../../daemon/runtime/supervisor';
import type { ModelLoadStatus, Snapshot } from '../../shared/protocol';
import { model } from './extension-fixtures';

describe('StatusHub pushes', () => {
  let load: ModelLoadStatus;
  let queued: number;
  let hub: StatusHub;
  const pushes: { at: number; snap: Snapshot }[] = [];

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    load = { state: 'unloaded', reason: 'never-loaded' };
    queued = 0;
    pushes.length = 0;
    const supervisor = { models: () => [model({ load: { ...load }, queue: { waiting: queued, oldestWaitMs: 0 } })] } as unknown as Supervisor;
    hub = new StatusHub({ version: 't', startedAt: 0, url: () => '', supervisor });
    hub.on('snapshot', (snap) => pushes.push({ at: Date.now(), snap }));
  });
  afterEach(() => {
    hub.close();
    vi.useRealTimers();
  });

  it('spaces ordinary changes 250 ms apart, coalescing a burst into one push', async () => {
    hub.changed();
    await vi.advanceTimersByTimeAsync(0);
    expect(pushes).toHaveLength(1);
    for (let i = 1; i <= 5; i++) {
      queued = i;
      hub.changed();
      await vi.advanceTimersByTimeAsync(10);
    }
    expect(pushes).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(250);
    expect(pushes).toHaveLength(2);
    expect(pushes[1]!.at - pushes[0]!.at).toBe(250);
    expect(pushes[1]!.snap.models[0]!.queue.waiting).toBe(5);
  });

  it('pushes a load state change at once, even right after a push, with the pending changes in it', async () => {
    hub.changed();
    await vi.advanceTimersByTimeAsync(0);
    const first = pushes[0]!.at;
    queued = 1;
    hub.changed(); // would go out 250 ms after the first push
    await vi.advanceTimersByTimeAsync(5);
    load = { state: 'loading', phase: 'starting' };
    hub.changed({ now: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(pushes).toHaveLength(2);
    expect(pushes[1]!.at - first).toBe(5);
    expect(pushes[1]!.snap.models[0]!.load).toEqual({ state: 'loading', phase: 'starting' });
    expect(pushes[1]!.snap.models[0]!.queue.waiting).toBe(1);
    // Ordinary changes after it are spaced from it again.
    queued = 2;
    hub.changed();
    await vi.advanceTimersByTimeAsync(249);
    expect(pushes).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(pushes).toHaveLength(3);
  });
});
