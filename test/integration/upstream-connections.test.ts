// llama-server closes its connection after every streamed response while still answering
// "Keep-Alive". A daemon that reuses that socket for the next request loses the request to
// "other side closed" whenever the FIN is still in flight, and takes the instance out of routing
// until /health answers. Back-to-back short streams through the daemon must never hit that.
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { instanceAuth, startTestDaemon, type TestDaemon } from '../helpers/daemon';

const STAND_IN = resolve(__dirname, '../fixtures/fake-llama-server.mjs');

/**
 * Sends one streamed completion on a fresh keep-alive connection (no `Connection: close`), reads the
 * response to its last chunk, and says whether the server then closed the connection (within 2 s).
 */
function closesAfterStream(port: number, headers: Record<string, string>): Promise<boolean> {
  return new Promise((done, fail) => {
    const body = JSON.stringify({ prompt: 'hello', max_tokens: 4, stream: true });
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      text += d;
      if (!timer && text.includes('\r\n0\r\n\r\n')) timer = setTimeout(() => (socket.destroy(), done(false)), 2_000);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (!text.includes('data: [DONE]')) fail(new Error(`the stream did not end: ${text.slice(0, 300)}`));
      else done(true);
    });
    socket.on('error', fail);
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`);
  });
}

async function instancePort(d: TestDaemon): Promise<{ port: number; pid: number }> {
  await d.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready', 'ready');
  const inst = (await d.status()).models[0]!.instances[0]!;
  return { port: inst.port!, pid: inst.pid! };
}

describe('closing a stream\'s connection: llama-server and the stand-in', () => {
  it('llama-server closes the connection after a streamed response; the stand-in does so with --fake-close-after-stream only', async () => {
    const real = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 256 } } });
    const r = await instancePort(real);
    expect(await closesAfterStream(r.port, instanceAuth(r.pid))).toBe(true);
    // The GPU-pace bench runs the stand-in with the flag, so its direct client, the bare proxy and the
    // daemon each need a connection per stream, as in front of a real llama-server.
    for (const [args, closes] of [[['--fake-close-after-stream'], true], [[], false]] as const) {
      const d = await startTestDaemon({ config: { llamaServer: STAND_IN }, models: { m: { slots: 1, args: [...args] } } });
      const s = await instancePort(d);
      expect(await closesAfterStream(s.port, instanceAuth(s.pid))).toBe(closes);
    }
  });
});

describe('upstream connections (real llama-server)', () => {
  it('back-to-back streams never lose their connection to llama-server', async () => {
    // -lv 3: its 400 streams would fill the prompt cache past the 256 prompts at which a first load's
    // -lv 4 process is relaunched at -lv 3 (instance.ts), on a new port, under the direct requests' feet.
    const d = await startTestDaemon({ models: { tiny: { slots: 4, ctxPerSlot: 256, args: ['-lv', '3'] } } });
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
