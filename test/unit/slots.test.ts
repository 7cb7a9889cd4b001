import { describe, expect, it } from 'vitest';
import type { InstanceStatus, ModelStatus, SlotStatus } from '../../shared/protocol';
import { busySlotsOf, modelSlots, totalSlotsOf } from '../../shared/slots';

const slots = (busy: number, total: number): SlotStatus[] => Array.from({ length: total }, (_, id) => ({ id, busy: id < busy }));
const inst = (over: Partial<InstanceStatus>): InstanceStatus => ({ id: 'm#1', state: 'ready', since: 0, restarts: 0, slots: [], ...over });

describe('busySlotsOf', () => {
  it.each<[string, Partial<InstanceStatus>, number, number]>([
    ['/slots alone', { slots: slots(2, 4) }, 4, 2],
    ['in flight ahead of a lagging poll', { slots: slots(0, 4), inFlight: 3 }, 4, 3],
    ['foreign use the daemon did not send', { slots: slots(3, 4), inFlight: 1 }, 4, 3],
    ['capped at the slot count', { slots: slots(1, 4), inFlight: 9 }, 4, 4],
    ['no poll yet: the configured slots cap it', { slots: [], inFlight: 6 }, 4, 4],
  ])('%s', (_name, over, perInstance, want) => {
    expect(busySlotsOf(inst(over), perInstance)).toBe(want);
  });
});

describe('totalSlotsOf', () => {
  it('prefers what /slots listed, else the configured count', () => {
    expect(totalSlotsOf(inst({ slots: slots(0, 3) }), 8)).toBe(3);
    expect(totalSlotsOf(inst({ slots: [] }), 8)).toBe(8);
  });
});

describe('modelSlots', () => {
  it('counts ready instances only', () => {
    const m = {
      slotsPerInstance: 4,
      instances: [inst({ slots: slots(1, 4), inFlight: 2 }), inst({ id: 'm#2', state: 'loading', slots: [], inFlight: 0 }), inst({ id: 'm#3', slots: slots(4, 4) })],
    } satisfies Pick<ModelStatus, 'instances' | 'slotsPerInstance'>;
    expect(modelSlots(m)).toEqual({ busy: 6, total: 8 });
  });
});
