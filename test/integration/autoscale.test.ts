// replicas: "auto" against the real llama-server: a saturated model gets a second replica, and an
// idle extra replica is drained and stopped. Short windows here; the defaults are 30 s and 5 min.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestDaemon } from '../helpers/daemon';

describe('autoscale (real llama-server)', () => {
  it('adds a replica when saturated and removes it when idle, with reasons in status', async () => {
    const d = await startTestDaemon({
      models: { tiny: { slots: 1, ctxPerSlot: 4096, size: 'slow', replicas: 'auto', maxReplicas: 2 } },
      config: { autoscale: { saturatedForMs: 1000, idleForMs: 2000, saturatedWaitMs: 100 }, queue: { maxWaiting: 50, timeoutMs: 60_000 } },
      env: { SLOTWISE_LOG_LEVEL: 'debug' }, // hold decisions (and why) land in daemon.log if this fails
    });
    await d.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready' && s.models[0]!.instances[0]!.slots.length === 1, 'one replica ready');
    const snap0 = await d.status();
    // Two replicas on one host split its cores instead of each taking all of them (daemon/runtime/threads.ts).
    expect(readFileSync(join(d.stateDir, 'logs', 'daemon.log'), 'utf8')).toMatch(/2 llama-server instance\(s\) may run at once on \d+ cores: each gets --threads \d+/);
    expect(snap0.models[0]!.scaling).toMatchObject({ mode: 'auto', min: 1, max: 2 });
    expect(snap0.models[0]!.instances).toHaveLength(1);

    // Keep the one slot busy and a queue waiting until the second replica has taken work, however fast
    // this machine decodes: a fixed batch can drain before the saturation window has passed.
    const reqs: Promise<Response>[] = [];
    let loading = true;
    const send = (): void => {
      reqs.push(d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'x', max_tokens: 200, ignore_eos: true }) }));
    };
    const loader = (async () => {
      for (let i = 0; i < 4; i++) send();
      while (loading) {
        const s = await d.status();
        const m = s.models[0]!;
        if (m.queue.waiting < 3 && reqs.length < 100) send();
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const up = await d.waitFor((s) => s.models[0]!.instances.length === 2, 'scale up to 2 replicas', 60_000);
      expect(up.models[0]!.scaling?.last?.action).toBe('up');
      expect(up.models[0]!.scaling?.last?.reason).toMatch(/saturated for \d+ s \(all 1 slots busy, \d+ waiting .*RAM free ≥ .* needed with its .* prompt cache: adding replica 2/);
      await d.waitFor((s) => s.models[0]!.instances.every((i) => i.state === 'ready') && (s.models[0]!.instances[1]!.inFlight ?? 0) > 0, 'second replica takes work', 60_000);
    } finally {
      loading = false;
      await loader;
    }

    for (const r of await Promise.all(reqs)) expect(r.status).toBe(200);
    const down = await d.waitFor((s) => s.models[0]!.instances[1]?.state === 'stopped', 'extra replica drained and stopped', 60_000);
    expect(down.models[0]!.replicas).toBe(1);
    expect(down.models[0]!.instances[0]!.state).toBe('ready');
    expect(down.models[0]!.outcomes).toMatchObject({ completed: reqs.length, failed: 0, rejected: 0 });
    // Each decision is logged with its reason.
    const log = readFileSync(join(d.stateDir, 'logs', 'daemon.log'), 'utf8');
    expect(log).toMatch(/\[tiny\] autoscale up: saturated for \d+ s/);
    expect(log).toMatch(/\[tiny\] autoscale down: idle for \d+ s: draining and stopping replica 2/);
    expect(log).toMatch(/\[tiny\] autoscale: tiny#2 drained; stopping/);
  }, 200_000);
});
