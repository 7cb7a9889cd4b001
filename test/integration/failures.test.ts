// What a client sees when its llama-server dies: after the first byte, the stream ends with an
// error event (real llama-server, kill -9 mid-stream); the request counts as failed exactly once.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAST_SUPERVISOR, startTestDaemon, tempDir, waitUntil } from '../helpers/daemon';

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

describe('a llama-server binary that exits at once (a stand-in script: a missing shared library)', () => {
  // The exit raced the launch's pid record: where it came first, the instance went back to "starting" and
  // polled a dead process's health. It came first at some launches, so six of them are made here.
  it('is counted as a crash each time, backs off, and fails with its reason: it does not sit in "starting"', async () => {
    const dir = tempDir('exit127');
    const binary = join(dir, 'llama-server');
    writeFileSync(binary, '#!/bin/sh\necho "llama-server: error while loading shared libraries: libcuda.so.1: cannot open shared object file" >&2\nexit 127\n', { mode: 0o755 });
    const d = await startTestDaemon({
      models: { m: { slots: 1 } },
      config: { llamaServer: binary, supervisor: { ...FAST_SUPERVISOR, backoffInitialMs: 200, backoffMaxMs: 400, maxCrashes: 6 } },
    });
    const s = await d.waitFor((x) => x.models[0]!.instances[0]?.state === 'failed', 'failed', 30_000);
    const inst = s.models[0]!.instances[0]!;
    expect(inst.lastError).toMatch(/libcuda\.so\.1/);
    expect(inst.pid).toBeUndefined();
    // The model is not "loading" any more: nothing is, until a request or `slotwise up` tries again.
    expect(s.models[0]!.load).toMatchObject({ state: 'unloaded', reason: 'failed', error: { code: 'SW_ERR_INSTANCE_FAILED', message: expect.stringMatching(/^\[m#1\] failed: .*libcuda\.so\.1/) } });
    // Every exit was seen as one: the crash log in the daemon's output has each of them.
    expect(d.output().match(/exited with code 127/g)?.length ?? 0).toBeGreaterThanOrEqual(6);
  }, 60_000);
});
