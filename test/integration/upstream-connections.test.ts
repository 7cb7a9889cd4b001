// llama-server closes its connection after every streamed response while still answering
// "Keep-Alive". A daemon that reuses that socket for the next request loses the request to
// "other side closed" whenever the FIN is still in flight, and takes the instance out of routing
// until /health answers. Back-to-back short streams through the daemon must never hit that.
import { describe, expect, it } from 'vitest';
import { instanceAuth, startTestDaemon } from '../helpers/daemon';

describe('upstream connections (real llama-server)', () => {
  it('back-to-back streams never lose their connection to llama-server', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 4, ctxPerSlot: 256 } } });
    await d.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready' && s.models[0]!.instances[0]!.slots.length === 4, 'ready');
    // Rounds of 50 requests straight to llama-server, then 50 through the daemon, from one client
    // (as `slotwise bench --direct` does). Without the fix (reusing the socket of a finished stream)
    // this failed 3 runs of 3 with a few lost connections each.
    const inst = (await d.status()).models[0]!.instances[0]!;
    const port = inst.port!;
    const direct = instanceAuth(inst.pid!);
    const send = async (url: string, i: number, auth: boolean): Promise<boolean> => {
      const init = { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: `req ${i}`, max_tokens: 32, stream: true }) };
      const res = auth ? await d.fetch('/v1/completions', init) : await fetch(`${url}/v1/completions`, { ...init, headers: direct });
      return res.status === 200 && (await res.text()).includes('data: [DONE]');
    };
    let ok = 0;
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 50; i++) await send(`http://127.0.0.1:${port}`, i, false);
      for (let i = 0; i < 50; i++) if (await send(d.url, i, true)) ok++;
    }
    expect(ok).toBe(200);
    expect(d.output()).not.toContain('lost its connection');
    const s = await d.status();
    expect(s.models[0]).toMatchObject({ requests: 200, outcomes: { completed: 200, failed: 0 } });
  });
});
