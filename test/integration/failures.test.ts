// What a client sees when its llama-server dies: after the first byte, the stream ends with an
// error event (real llama-server, kill -9 mid-stream); the request counts as failed exactly once.
import { describe, expect, it } from 'vitest';
import { startTestDaemon, waitUntil } from '../helpers/daemon';

describe('instance failure during a request (real llama-server)', () => {
  it('ends a stream with an error event when its instance is killed mid-stream', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 2, ctxPerSlot: 4096, size: 'slow' } } });
    const s = await d.waitFor((x) => x.models[0]!.instances[0]?.state === 'ready' && x.models[0]!.instances[0]!.slots.length === 2, 'ready');
    const pid = s.models[0]!.instances[0]!.pid!;
    const res = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'x', max_tokens: 3000, ignore_eos: true, stream: true }) });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    let killed = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (!killed && (text.match(/^data: /gm)?.length ?? 0) >= 5) {
        killed = true;
        process.kill(pid, 'SIGKILL');
      }
    }
    expect(killed).toBe(true);
    const events = text.split('\n\n').filter(Boolean);
    const last = JSON.parse(events.at(-1)!.replace(/^data: /, '')) as { error?: { code: string; message: string } };
    expect(last.error?.code).toBe('SW_ERR_UPSTREAM');
    expect(last.error?.message).toMatch(/\[tiny#1\] llama-server stopped mid-response/);
    expect(text).not.toContain('[DONE]');
    const after = await d.waitFor((x) => x.models[0]!.outcomes?.failed === 1, 'failed outcome counted');
    expect(after.models[0]!.outcomes).toMatchObject({ completed: 0, cancelled: 0, failed: 1 });
    // The supervisor brings the instance back and it serves again.
    await d.waitFor((x) => x.models[0]!.instances[0]!.state === 'ready' && x.models[0]!.instances[0]!.restarts === 1, 'restarted', 30_000);
    await waitUntil(async () => {
      const r = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'tiny', prompt: 'x', max_tokens: 3 }) });
      return r.status === 200;
    }, 'serving again');
  });
});
