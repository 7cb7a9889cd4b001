// The seed's point, end to end: GPU utilization reads ~96% while slots are free → not saturated, and
// the reason says why; all slots busy with requests waiting → saturated. Real daemon + llama-server;
// the GPU figures come from a stand-in nvidia-smi on PATH (test/fixtures/gpu/fake-nvidia-smi.sh),
// because this machine has no GPU and a real nvidia-smi cannot be made to read 96% on demand.
import { chmodSync, copyFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startTestDaemon, tempDir, type TestDaemon } from '../helpers/daemon';

const FIX = resolve(__dirname, '../fixtures/gpu');

function fakeNvidiaSmi(): NodeJS.ProcessEnv {
  const dir = tempDir('gpu');
  copyFileSync(join(FIX, 'fake-nvidia-smi.sh'), join(dir, 'nvidia-smi'));
  chmodSync(join(dir, 'nvidia-smi'), 0o755);
  // One line in the recorded --query-gpu format (index, name, util %, used MiB, total MiB, °C, W).
  writeFileSync(join(dir, 'gpu.csv'), '0, NVIDIA GeForce RTX 4090, 96, 20480, 24564, 71, 310.50\n');
  writeFileSync(join(dir, 'apps.csv'), '');
  return { PATH: `${dir}:${process.env.PATH}`, FAKE_LIST: join(FIX, 'nvidia-smi-L.txt'), FAKE_GPU: join(dir, 'gpu.csv'), FAKE_APPS: join(dir, 'apps.csv') };
}

/** Busy/total slots as /v1/models and /metrics report them. */
async function slotCounts(d: TestDaemon): Promise<{ models: number[]; metrics: number[] }> {
  const models = (await (await d.fetch('/v1/models')).json()) as { data: { slotwise: { busySlots: number; slots: number } }[] };
  const text = await (await d.fetch('/metrics')).text();
  const gauge = (name: string): number => [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
  return { models: [models.data[0]!.slotwise.busySlots, models.data[0]!.slotwise.slots], metrics: [gauge('slotwise_slots_busy'), gauge('slotwise_slots_total')] };
}

describe('capacity verdict with GPU figures (real llama-server, stand-in nvidia-smi)', () => {
  it('is not saturated at GPU 96% with free slots, and saturated with all slots busy and a queue', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 4, ctxPerSlot: 4096, size: 'slow' } }, env: fakeNvidiaSmi() });
    await d.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready' && s.models[0]!.instances[0]!.slots.length === 4 && s.gpus[0]?.utilizationPct === 96, 'ready with GPU figures');
    const aborts: AbortController[] = [];
    const send = (): void => {
      const c = new AbortController();
      aborts.push(c);
      void d
        .fetch('/v1/completions', { method: 'POST', signal: c.signal, body: JSON.stringify({ model: 'tiny', prompt: 'x', max_tokens: 3500, ignore_eos: true, stream: true }) })
        .then((r) => r.arrayBuffer()) // keep reading: a client that stops reading is not a client that left
        .catch(() => undefined); // aborted at the end of the test
    };
    try {
      send();
      const one = await d.waitFor((s) => s.capacity.busySlots === 1, 'one slot busy');
      expect(one.gpus[0]).toMatchObject({ name: 'NVIDIA GeForce RTX 4090', utilizationPct: 96, memoryUsedMiB: 20480 });
      expect(one.capacity.verdict).not.toBe('saturated');
      expect(one.capacity.verdict).toBe('ok');
      expect(one.capacity.headroomSlots).toBe(3);
      expect(one.capacity.reason).toMatch(/GPU at 96% but 3 of 4 slots free: room for 3 more requests, no need to scale/);
      expect(await slotCounts(d)).toEqual({ models: [1, 4], metrics: [1, 4] }); // one count everywhere (shared/slots.ts)

      for (let i = 0; i < 7; i++) send();
      const sat = await d.waitFor((s) => s.capacity.verdict === 'saturated', 'saturated', 30_000);
      expect(sat.capacity.busySlots).toBe(4);
      expect(sat.capacity.queued).toBeGreaterThan(0);
      expect(sat.capacity.reason).toMatch(/All 4 slots busy and \d+ requests waiting \(oldest [\d.]+ s\)/);
      expect(await slotCounts(d)).toEqual({ models: [4, 4], metrics: [4, 4] });
    } finally {
      for (const c of aborts) c.abort();
    }
  }, 90_000);
});
