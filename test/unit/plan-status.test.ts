// A plan as status shows it: the load-time plan (compared with llama-server's buffers) apart from the
// host prompt cache, which the memory checks add on top.
import { describe, expect, it } from 'vitest';
import { heldByDevice, planStatus } from '../../daemon/memory/plan-status';
import type { DevicePlan } from '../../daemon/memory/plan';

const MIB = 2 ** 20;
const dev = (device: string, total: number, promptCache?: number): DevicePlan => ({
  device, label: device === 'host' ? 'host RAM' : `GPU ${device.slice(3)}`, layers: 0, weights: 0, kv: 0, compute: 0, output: 0, total, ...(promptCache ? { promptCache } : {}),
});

describe('planStatus', () => {
  it('keeps the prompt cache out of planBytes and actualBytes, and reports it apart on the host', () => {
    const plan = { devices: [dev('host', 100 * MIB + 32 * MIB, 32 * MIB), dev('gpu0', 400 * MIB)] };
    const s = planStatus(plan, new Map([['host', 90.4 * MIB], ['gpu0', 410 * MIB]]));
    expect(s).toEqual({
      planBytes: 500 * MIB,
      actualBytes: Math.round(90.4 * MIB) + 410 * MIB,
      promptCacheBytes: 32 * MIB,
      byDevice: [
        { device: 'host', label: 'host RAM', planBytes: 100 * MIB, actualBytes: Math.round(90.4 * MIB), promptCacheBytes: 32 * MIB },
        { device: 'gpu0', label: 'GPU 0', planBytes: 400 * MIB, actualBytes: 410 * MIB },
      ],
    });
    // What a replica may hold: buffers (else the plan) plus the cache.
    expect(Object.fromEntries(heldByDevice(s, true))).toEqual({ host: Math.round(90.4 * MIB) + 32 * MIB, gpu0: 410 * MIB });
    expect(Object.fromEntries(heldByDevice(s, false))).toEqual({ host: 132 * MIB, gpu0: 400 * MIB });
  });

  it('without a cache there is no promptCacheBytes', () => {
    expect(planStatus({ devices: [dev('host', 10 * MIB)] })).toEqual({ planBytes: 10 * MIB, byDevice: [{ device: 'host', label: 'host RAM', planBytes: 10 * MIB }] });
  });
});
