// The daemon reaches each llama-server over a UNIX socket in its state dir (daemon/runtime/endpoint.ts),
// and the loopback port stays open for everyone else. Against the real llama-server: the socket is
// there (a stale file left in its place does not stop it), the daemon's streams are connected to it,
// a client still gets answers on the port, and the file goes with the process. The stand-in (it counts
// completions per listener, and can act as a build without socket support, which is not at hand here)
// shows which listener each request used and the fallback to the port alone.
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../shared/protocol';
import { startTestDaemon, tempDir, type TestDaemon } from '../helpers/daemon';

const STAND_IN = resolve(__dirname, '../fixtures/fake-llama-server.mjs');
const ready = (s: Snapshot): boolean => s.models.length > 0 && s.models.every((m) => m.instances.length > 0 && m.instances.every((i) => i.state === 'ready'));

/** Connected sockets whose address is `path` (/proc/net/unix: an accepted connection carries its listener's path; St 03 = connected). */
function connectedTo(path: string): number {
  return readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .filter((l) => l.endsWith(` ${path}`) && l.trim().split(/\s+/)[5] === '03').length;
}

async function instanceKey(d: TestDaemon, id: string): Promise<string> {
  const keys = (await (await d.fetch('/api/instance-keys')).json()) as Record<string, string>;
  return keys[id]!;
}

async function standInCount(d: TestDaemon, listener: 'socket' | 'port'): Promise<number> {
  const inst = (await d.status()).models[0]!.instances[0]!;
  const text = await (await fetch(`http://127.0.0.1:${inst.port}/metrics`, { headers: { authorization: `Bearer ${await instanceKey(d, inst.id)}` } })).text();
  return Number(new RegExp(`^llamacpp:fake_completions_${listener}_total (\\d+)$`, 'm').exec(text)?.[1]);
}

const completion = (d: TestDaemon, maxTokens: number, signal?: AbortSignal): Promise<Response> =>
  d.fetch('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', prompt: 'Once upon a time', max_tokens: maxTokens, stream: true }), signal });

describe('llama-server on a UNIX socket', () => {
  it.skipIf(process.platform !== 'linux')('real llama-server: the daemon streams over its socket, others use the port, the file goes with the process', async () => {
    const stateDir = join(tempDir('sock'), 'state');
    mkdirSync(join(stateDir, 'sockets'), { recursive: true, mode: 0o700 });
    writeFileSync(join(stateDir, 'sockets', 'm_1.sock'), 'left by a process that died'); // would fail the bind
    const d = await startTestDaemon({ stateDir, models: { m: { slots: 4, ctxPerSlot: 4096, size: 'long' } } });
    const s = await d.waitFor(ready, 'ready', 120_000);
    const inst = s.models[0]!.instances[0]!;
    expect(inst.socket).toBe(join(stateDir, 'sockets', 'm_1.sock'));
    expect(statSync(inst.socket!).isSocket()).toBe(true);
    expect(statSync(join(stateDir, 'sockets')).mode & 0o777).toBe(0o700);
    expect(inst.port).toBeGreaterThan(0);

    // Three streams through the daemon: each is a connection to the socket while it runs (polls and a
    // spare may add more; a count taken before would include polls that end meanwhile, so none is taken).
    const abort = new AbortController();
    const streams = await Promise.all([0, 1, 2].map(() => completion(d, 4000, abort.signal)));
    expect(streams.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(connectedTo(inst.socket!)).toBeGreaterThanOrEqual(3);
    abort.abort();
    await Promise.all(streams.map((r) => r.body?.cancel().catch(() => undefined)));

    // The port still answers a client that is not the daemon (with the replica's key).
    const direct = await fetch(`http://127.0.0.1:${inst.port}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await instanceKey(d, inst.id)}` },
      body: JSON.stringify({ prompt: 'Hello', max_tokens: 4 }),
    });
    expect(direct.status).toBe(200);
    expect(((await direct.json()) as { choices: unknown[] }).choices).toHaveLength(1);

    await d.stop();
    expect(existsSync(inst.socket!)).toBe(false);
  }, 180_000);

  it("stand-in: the daemon's requests arrive on the socket, a direct client's on the port", async () => {
    const d = await startTestDaemon({ models: { m: { slots: 2, args: ['--fake-token-ms', '1'] } }, config: { llamaServer: STAND_IN } });
    await d.waitFor(ready, 'ready');
    for (let i = 0; i < 3; i++) await (await completion(d, 3)).text();
    const chat = await d.fetch('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }) });
    expect(chat.status).toBe(200); // not streamed: the pooled path
    await chat.text();
    expect(await standInCount(d, 'socket')).toBe(4);
    expect(await standInCount(d, 'port')).toBe(0);

    const inst = (await d.status()).models[0]!.instances[0]!;
    const direct = await fetch(`http://127.0.0.1:${inst.port}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${await instanceKey(d, inst.id)}` }, body: JSON.stringify({ prompt: 'hi', max_tokens: 2 }) });
    await direct.text();
    expect(await standInCount(d, 'port')).toBe(1);
    expect(await standInCount(d, 'socket')).toBe(4);

    // The sockets dir removed under the running daemon, then the process dies: the restart makes both anew.
    rmSync(join(d.stateDir, 'sockets'), { recursive: true, force: true });
    process.kill(inst.pid!, 'SIGKILL');
    const again = await d.waitFor((s) => s.models[0]!.instances[0]!.state === 'ready' && s.models[0]!.instances[0]!.pid !== inst.pid, 'restarted');
    expect(again.models[0]!.instances[0]!.socket).toBe(inst.socket);
    expect(statSync(inst.socket!).isSocket()).toBe(true);
    await (await completion(d, 2)).text();
    expect(await standInCount(d, 'socket')).toBe(1); // a new process: its own counts
  }, 60_000);

  it('stand-in as a build that cannot listen on a socket: retried on the port alone, and it serves', async () => {
    const d = await startTestDaemon({ models: { m: { slots: 2, args: ['--fake-token-ms', '1', '--fake-no-unix'] } }, config: { llamaServer: STAND_IN } });
    const s = await d.waitFor(ready, 'ready');
    const inst = s.models[0]!.instances[0]!;
    expect(inst.socket).toBeUndefined();
    expect(inst.port).toBeGreaterThan(0);
    expect(d.output()).toMatch(/cannot listen on a UNIX socket besides its port .*; retrying on its port alone/);
    const res = await completion(d, 3);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('[DONE]');
    expect(await standInCount(d, 'port')).toBe(1);
  }, 60_000);

  it('a state dir too deep for a socket path: the port alone, and the daemon log says why', async () => {
    const stateDir = join(tempDir('deep'), 'd'.repeat(100), 'state');
    const d = await startTestDaemon({ stateDir, models: { m: { slots: 1, args: ['--fake-token-ms', '1'] } }, config: { llamaServer: STAND_IN } });
    const inst = (await d.waitFor(ready, 'ready')).models[0]!.instances[0]!;
    expect(inst.socket).toBeUndefined();
    expect(d.output()).toMatch(/no UNIX socket for this instance: .* is too long for one or holds a comma or quote; the daemon uses its TCP port/);
    expect(await (await completion(d, 2)).text()).toContain('[DONE]');
    expect(await standInCount(d, 'port')).toBe(1);
  }, 60_000);
});
