// An idle instance is polled every 2 s instead of every 250 ms, and a request starting brings the fine
// cadence back at once (daemon/runtime/scraper.ts). Stand-in upstream: it counts the /slots polls it
// answers (llamacpp:fake_slots_polls_total), which a real llama-server does not.
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IDLE_AFTER_MS } from '../../daemon/runtime/scraper';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon';

const STAND_IN = resolve(__dirname, '../fixtures/fake-llama-server.mjs');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** /slots polls the stand-in has answered, read from its own /metrics with the replica's key. */
async function polls(d: TestDaemon): Promise<number> {
  const s = await d.status();
  const inst = s.models[0]!.instances[0]!;
  const keys = (await (await d.fetch('/api/instance-keys')).json()) as Record<string, string>;
  const text = await (await fetch(`http://127.0.0.1:${inst.port}/metrics`, { headers: { authorization: `Bearer ${keys[inst.id]}` } })).text();
  return Number(/^llamacpp:fake_slots_polls_total (\d+)$/m.exec(text)?.[1]);
}

describe('idle /slots cadence', () => {
  it('polls an idle instance every 2 s, and every 250 ms again from a request on', async () => {
    const d = await startTestDaemon({ models: { fake: { slots: 2, args: ['--fake-token-ms', '10'] } }, config: { llamaServer: STAND_IN } });
    try {
      await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready', 'ready');
      await sleep(IDLE_AFTER_MS + 1500); // quiet since ready
      const idle0 = await polls(d);
      await sleep(4000);
      const idle = (await polls(d)) - idle0;
      expect(idle).toBeGreaterThanOrEqual(1); // still polled (foreign use, drift)
      expect(idle).toBeLessThanOrEqual(3); // ~2 in 4 s; at 250 ms it would be ~16

      // Right after an idle poll (the next one ~2 s away), a 3 s stream starts: its start brings the
      // next poll within 250 ms, and the fine cadence holds while it runs.
      const before = await polls(d);
      for (let i = 0; i < 200 && (await polls(d)) === before; i++) await sleep(20);
      const started = await polls(d);
      const res = d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'fake', prompt: 'hi', max_tokens: 300, stream: true }) });
      await sleep(900);
      const early = (await polls(d)) - started;
      expect(early).toBeGreaterThanOrEqual(2); // ~3 at 250 ms from the start; without the wake, none before ~2 s
      expect((await res).status).toBe(200);
      await (await res).text();
    } finally {
      await d.stop();
    }
  }, 60_000);
});
