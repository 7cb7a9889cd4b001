// The daemon supervising real llama-server processes with the tiny model (no stand-ins).
import { writeFileSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Snapshot, InstanceState } from '../../shared/protocol';
import { instanceAuth, isAlive, llamaServersWith, startTestDaemon, waitUntil, recordedPids, tempDir } from '../helpers/daemon';

const ready = (name: string, n = 1) => (s: Snapshot) => {
  const m = s.models.find((x) => x.name === name);
  return !!m && m.instances.length === n && m.instances.every((i) => i.state === 'ready' && i.slots.length > 0);
};

describe('supervisor (real llama-server)', () => {
  it('brings a model up with 4 slots, visible in /api/status and pushed over a WebSocket subscription', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 4, ctxPerSlot: 512 } } });
    const client = await d.client();
    const pushed: Snapshot[] = [];
    client.on('status', ({ snapshot }) => pushed.push(snapshot));
    const first = await client.call('status.subscribe');
    expect(first.protocol).toBe(1);
    expect(first.models.map((m) => m.name)).toEqual(['tiny']);

    // Slot rows come from the leases at once; n_ctx arrives with the first /slots poll after ready.
    const polled = (x: Snapshot) => ready('tiny')(x) && x.models[0]!.instances[0]!.slots.every((sl) => sl.nCtx !== undefined);
    const s = await d.waitFor(polled, 'tiny ready and its slots polled');
    const inst = s.models[0]!.instances[0]!;
    expect(inst.id).toBe('tiny#1');
    expect(inst.slots.map((x) => x.id)).toEqual([0, 1, 2, 3]);
    expect(inst.slots.every((x) => !x.busy && x.nCtx === 512)).toBe(true);
    expect(inst.restarts).toBe(0);
    expect(s.capacity.totalSlots).toBe(4);
    // GGUF facts before launch, llama-server's own placement after.
    expect(s.models[0]!.info).toMatchObject({ architecture: 'llama', layers: 2, fileBytes: expect.any(Number) });
    expect(s.models[0]!.info!.fileBytes).toBeGreaterThan(17_000_000);
    expect(inst.offload?.layersTotal).toBe(2);
    expect(inst.offload?.buffers['model CPU_Mapped']).toBeGreaterThan(15);
    expect(inst.offload?.buffers['kv CPU']).toBeGreaterThan(0);

    await waitUntil(() => pushed.some(ready('tiny')), 'a pushed snapshot with 4 ready slots', 5000);
    // The pushed sequence shows the lifecycle in order.
    const states = [...new Set(pushed.map((p) => p.models[0]!.instances[0]?.state).filter(Boolean))] as InstanceState[];
    expect(states.at(-1)).toBe('ready');
    expect(states.indexOf('ready')).toBeGreaterThan(-1);
    for (const st of states) expect(['starting', 'loading', 'ready']).toContain(st);
  });

  it('shows a busy slot in the pushed status while a request sent straight to the instance runs', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 4, ctxPerSlot: 1024, size: 'slow' } } });
    const s = await d.waitFor(ready('tiny'), 'tiny ready');
    const port = s.models[0]!.instances[0]!.port!;
    const client = await d.client();
    let sawBusy: Snapshot | undefined;
    client.on('status', ({ snapshot }) => {
      if (snapshot.models[0]!.instances[0]!.slots.some((x) => x.busy)) sawBusy ??= snapshot;
    });
    await client.call('status.subscribe');
    const abort = new AbortController();
    const req = fetch(`http://127.0.0.1:${port}/completion`, {
      method: 'POST',
      headers: instanceAuth(s.models[0]!.instances[0]!.pid!),
      body: JSON.stringify({ prompt: 'Once upon a time', n_predict: 800, ignore_eos: true, stream: true }),
      signal: abort.signal,
    });
    try {
      await waitUntil(() => sawBusy !== undefined, 'a pushed snapshot with a busy slot', 10_000);
      const busy = sawBusy!.models[0]!.instances[0]!.slots.find((x) => x.busy)!;
      expect(typeof busy.taskId).toBe('number');
      expect(sawBusy!.capacity.busySlots).toBeGreaterThanOrEqual(1);
    } finally {
      abort.abort();
      await req.then(
        (r) => r.body?.cancel().catch(() => undefined),
        () => undefined, // aborted before the headers came: nothing to cancel
      );
    }
    await d.waitFor((x) => x.models[0]!.instances[0]!.slots.every((sl) => !sl.busy), 'slot idle again after disconnect', 5000);
  });

  it('restarts llama-server after kill -9: crashed → backoff → ready with restarts: 1', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 2, ctxPerSlot: 256 } } });
    const before = (await d.waitFor(ready('tiny'), 'tiny ready')).models[0]!.instances[0]!;
    const client = await d.client();
    const seen: string[] = [];
    client.on('status', ({ snapshot }) => {
      const st = snapshot.models[0]!.instances[0]!.state;
      if (seen.at(-1) !== st) seen.push(st);
    });
    await client.call('status.subscribe');
    process.kill(before.pid!, 'SIGKILL');
    const after = (await d.waitFor((s) => ready('tiny')(s) && s.models[0]!.instances[0]!.restarts === 1, 'restart after kill -9', 30_000)).models[0]!.instances[0]!;
    expect(after.pid).not.toBe(before.pid);
    expect(after.lastError).toMatch(/killed by SIGKILL/); // kept after recovery: the last crash's reason
    expect(isAlive(before.pid!)).toBe(false);
    await waitUntil(() => seen.at(-1) === 'ready', 'pushed ready', 5000);
    // The transitions pushed after the kill (250 ms coalescing may merge the shortest ones):
    expect(seen).toContain('backoff');
    expect(seen.indexOf('backoff')).toBeLessThan(seen.lastIndexOf('ready'));
    const status = await d.status();
    expect(status.models[0]!.instances[0]!.restarts).toBe(1);
  });

  it('leaves no orphan llama-server when the daemon is killed with SIGKILL (parent-death signal)', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 256 } } });
    const pid = (await d.waitFor(ready('tiny'), 'tiny ready')).models[0]!.instances[0]!.pid!;
    d.proc.kill('SIGKILL');
    await waitUntil(() => !isAlive(pid), `llama-server ${pid} gone after daemon SIGKILL`, 5000);
  });

  it('reaps an orphan recorded in the state dir when a new daemon starts', async () => {
    // Parent-death signalling off, to leave a real orphan behind as a crash on a system without it would.
    const d1 = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 256 } }, env: { SLOTWISE_NO_PDEATHSIG: '1' } });
    const pid = (await d1.waitFor(ready('tiny'), 'tiny ready')).models[0]!.instances[0]!.pid!;
    d1.proc.kill('SIGKILL');
    await waitUntil(() => d1.proc.exitCode !== null || d1.proc.signalCode !== null, 'daemon 1 dead');
    expect(isAlive(pid)).toBe(true); // the orphan exists
    expect(recordedPids(d1.stateDir)).toContain(pid);

    const d2 = await startTestDaemon({ stateDir: d1.stateDir, models: {} });
    await waitUntil(() => !isAlive(pid), `orphan ${pid} reaped by the new daemon`, 15_000);
    expect(recordedPids(d2.stateDir)).not.toContain(pid);
    expect(llamaServersWith(d1.dir)).toEqual([]);
  });

  it('marks a corrupt model file failed with a clear reason while the daemon keeps serving', async () => {
    const badDir = tempDir('bad');
    const badPath = join(badDir, 'broken.gguf');
    writeFileSync(badPath, 'this is not a model\n'.repeat(10));
    const d = await startTestDaemon({ models: { good: { slots: 1, ctxPerSlot: 256 }, bad: { slots: 1, path: badPath } } });
    const s = await d.waitFor((x) => ready('good')(x) && x.models[1]!.instances[0]?.state === 'failed', 'good ready, bad failed');
    const bad = s.models[1]!.instances[0]!;
    expect(bad.lastError).toMatch(/broken\.gguf.*not a GGUF file/);
    expect(bad.restarts).toBe(0); // a bad file is not retried in a crash loop
    const health = await fetch(`${d.url}/healthz`);
    expect(health.status).toBe(200);
  });

  it('fails an instance whose model file disappeared, with the path in the reason', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 256 } } });
    await d.waitFor(ready('tiny'), 'tiny ready');
    rmSync(join(d.dir, 'tiny.gguf'));
    const client = await d.client();
    await client.call('models.restart', { model: 'tiny' });
    const s = await d.waitFor((x) => x.models[0]!.instances[0]!.state === 'failed', 'failed after the file was removed');
    expect(s.models[0]!.instances[0]!.lastError).toContain(join(d.dir, 'tiny.gguf'));
    expect(s.models[0]!.instances[0]!.lastError).toMatch(/not found/);
  });

  it('stop leaves no process behind', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 2, ctxPerSlot: 256 } } });
    const pid = (await d.waitFor(ready('tiny'), 'tiny ready')).models[0]!.instances[0]!.pid!;
    const client = await d.client();
    await client.call('daemon.stop');
    await waitUntil(() => d.proc.exitCode !== null, 'daemon exit', 20_000);
    expect(d.proc.exitCode).toBe(0);
    expect(isAlive(pid)).toBe(false);
    expect(llamaServersWith(d.dir)).toEqual([]);
    expect(existsSync(join(d.stateDir, 'daemon.json'))).toBe(false);
    expect(recordedPids(d.stateDir)).toEqual([]);
  });
});

