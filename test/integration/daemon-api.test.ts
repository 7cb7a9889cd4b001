// The daemon's HTTP and WebSocket surface: auth, origin/host checks, JSON-RPC errors, bad config.
// A real daemon process with no models (these cases do not need a llama-server).
import { execFile, spawn } from 'node:child_process';
import { request } from 'node:http';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CLI, startTestDaemon, tempDir, writeConfig } from '../helpers/daemon';

const run = promisify(execFile);

/** Runs the CLI and returns its exit code and output, never throwing on a non-zero exit. */
async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A WebSocket handshake's HTTP status, or 101 when it upgraded. */
function wsStatus(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`, { headers });
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101, body: '' });
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('error', (err) => {
      if (!/Unexpected server response/.test(err.message)) reject(err);
    });
  });
}

/** A raw HTTP GET with a chosen Host header (fetch does not allow overriding Host). */
function getWithHost(url: string, path: string, host: string, token: string): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, headers: { Host: host, Authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('daemon API security and errors', () => {
  it('serves /healthz without a token and everything else only with it', async () => {
    const d = await startTestDaemon();
    const health = await fetch(`${d.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', version: expect.any(String) });

    const anon = await fetch(`${d.url}/api/status`);
    expect(anon.status).toBe(401);
    expect(await anon.json()).toEqual({ error: { code: 'SW_ERR_UNAUTHORIZED', type: 'authentication_error', message: expect.stringContaining('missing or wrong token') } });

    const wrong = await fetch(`${d.url}/api/status`, { headers: { Authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { message: string } }).error.message).toMatch(/missing or wrong token/);

    const ok = await d.fetch('/api/status');
    expect(ok.status).toBe(200);

    expect((await wsStatus(d.url, {})).status).toBe(401);
    expect((await wsStatus(d.url, { Authorization: `Bearer ${d.token}` })).status).toBe(101);
  });

  it('refuses a foreign Origin and a non-loopback Host with 403, on HTTP and WebSocket', async () => {
    const d = await startTestDaemon();
    const evil = await d.fetch('/api/status', { headers: { Origin: 'https://evil.example' } });
    expect(evil.status).toBe(403);
    expect(((await evil.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'SW_ERR_FORBIDDEN',
      message: expect.stringContaining('listen.allowedOrigins'),
    });
    const ws = await wsStatus(d.url, { Authorization: `Bearer ${d.token}`, Origin: 'https://evil.example' });
    expect(ws.status).toBe(403);
    expect(JSON.parse(ws.body).error.code).toBe('SW_ERR_FORBIDDEN');

    const rebinding = await getWithHost(d.url, '/api/status', 'attacker.example:7373', d.token);
    expect(rebinding.status).toBe(403);
    expect(rebinding.body).toContain('loopback');
    const localhost = await getWithHost(d.url, '/api/status', `localhost:${new URL(d.url).port}`, d.token);
    expect(localhost.status).toBe(200);
  });

  it('allows an Origin listed in listen.allowedOrigins', async () => {
    const d = await startTestDaemon({ config: { listen: { allowedOrigins: ['http://localhost:8080'] } } });
    const res = await d.fetch('/api/status', { headers: { Origin: 'http://localhost:8080' } });
    expect(res.status).toBe(200);
  });

  it('answers malformed JSON-RPC with errors and keeps the connection and daemon up', async () => {
    const d = await startTestDaemon();
    const c = await d.client();
    expect(await c.raw('{not json')).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    expect(await c.raw(Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'status.get' })))).toMatchObject({
      id: null,
      error: { code: -32700, message: 'binary frames are not accepted: send JSON-RPC as text frames' },
    });
    expect(await c.raw('[]')).toMatchObject({ id: null, error: { code: -32600, message: expect.stringContaining('batch') } });
    expect(await c.raw(JSON.stringify({ jsonrpc: '1.0', id: 1, method: 'status.get' }))).toMatchObject({ id: 1, error: { code: -32600 } });
    expect(await c.raw(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'nope' }))).toMatchObject({
      id: 2,
      error: { code: -32601, message: expect.stringContaining('unknown method "nope"') },
    });
    expect(await c.raw(JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'models.start', params: { model: 42 } }))).toMatchObject({
      id: 3,
      error: { code: -32602, message: 'models.start: "model" must be a non-empty string, got the number 42', data: { code: 'SW_ERR_BAD_REQUEST' } },
    });
    expect(await c.raw(JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'models.start', params: { model: 'ghost' } }))).toMatchObject({
      id: 4,
      error: { code: -32000, data: { code: 'SW_ERR_MODEL_NOT_FOUND' }, message: expect.stringContaining('unknown model "ghost"') },
    });
    // Still alive on the same connection:
    const s = await c.call('status.get');
    expect(s.protocol).toBe(1);
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
  });

  it('refuses a client speaking another protocol version', async () => {
    const d = await startTestDaemon();
    const c = await d.client();
    await expect(c.call('daemon.hello', { protocol: 99 as 1 })).rejects.toMatchObject({ code: 'SW_ERR_PROTOCOL_MISMATCH' });
    await expect(c.call('daemon.hello', { protocol: 1 })).resolves.toMatchObject({ protocol: 1 });
  });

  it('exits 2 on a bad config, naming the key, the value and the fix', async () => {
    const dir = tempDir('badcfg');
    const configPath = writeConfig(dir, { models: { coder: { path: '/nonexistent.gguf', slots: 0 } } });
    const res = await cli(['daemon', '--state-dir', `${dir}/state`, '--config', configPath, '--port', '0']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^slotwise: .*models\.coder\.slots must be "auto" or an integer >= 1, got the number 0 — set it/m);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('exits 2 on an unknown key and on unknown CLI usage', async () => {
    const dir = tempDir('badcfg');
    const configPath = writeConfig(dir, { queue: { maxWait: 3 } });
    const res = await cli(['daemon', '--state-dir', `${dir}/state`, '--config', configPath, '--port', '0']);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('queue.maxWait');
    expect(res.stderr).toContain('queue.maxWaiting');
    const usage = await cli(['frobnicate']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('unknown command "frobnicate"');
    const option = await cli(['--frobnicate', 'status']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('unknown option "--frobnicate" before the command');
    const badPort = await cli(['status', '--port', 'x']);
    expect(badPort.code).toBe(2);
  });

  it('start returns once the daemon accepts requests; status and stop work against it', async () => {
    const dir = tempDir('cli');
    const stateDir = `${dir}/state`;
    const configPath = writeConfig(dir, { models: {} });
    try {
      const started = await cli(['start', '--state-dir', stateDir, '--config', configPath, '--port', '0']);
      expect(started.code).toBe(0);
      const url = started.stdout.trim();
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const status = await cli(['status', '--json', '--state-dir', stateDir]);
      expect(status.code).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ protocol: 1, daemon: { url }, models: [] });
      // The options for every command may also come before it.
      const before = await cli(['--state-dir', stateDir, 'status', '--json']);
      expect(before.code).toBe(0);
      expect(JSON.parse(before.stdout)).toMatchObject({ daemon: { url } });
      // `status --watch | head -3`: the reader leaves; the CLI exits as a SIGPIPE'd tool does, without an error line.
      const watch = spawn(process.execPath, [CLI, 'status', '--watch', '--state-dir', stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let watchErr = '';
      watch.stderr.on('data', (b: Buffer) => (watchErr += b));
      await new Promise((resolve) => watch.stdout.once('data', resolve));
      watch.stdout.destroy();
      expect(await new Promise((resolve) => watch.on('exit', resolve))).toBe(141);
      expect(watchErr).toBe('');
      const again = await cli(['start', '--state-dir', stateDir, '--config', configPath, '--port', '0']);
      expect(again.stdout).toContain('already running');
    } finally {
      const stopped = await cli(['stop', '--state-dir', stateDir]);
      expect(stopped.code).toBe(0);
    }
    const after = await cli(['status', '--state-dir', stateDir]);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain('no daemon running');
  });
});
