// Hardening of the network surface (issue 12): hostile bodies, out-of-range numbers, JSON-RPC method
// names from Object.prototype, client errors answered by llama-server, HTTP semantics, slow clients,
// connection limits, Host checks and TLS. Real daemon processes; the model cases use the real llama-server.
import { execFileSync } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestDaemon, tempDir, waitUntil, writeConfig, CLI, type TestDaemon } from '../helpers/daemon';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { Snapshot } from '../../shared/protocol';

const run = promisify(execFile);

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request with full control of method and headers (fetch forbids Host and hides some statuses). */
function raw(url: string, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string; ca?: string } = {}): Promise<Answer> {
  const u = new URL(url);
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: opts.method ?? 'GET', headers: opts.headers, ca: opts.ca, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

function errorOf(text: string): { code: string; type: string; message: string } {
  return (JSON.parse(text) as { error: { code: string; type: string; message: string } }).error;
}

/** A request's outcomes for one model, and whether they add up to what was received. */
function balance(s: Snapshot): { received: number; outcomes: Record<string, number>; balanced: boolean } {
  const m = s.models[0]!;
  const outcomes: Record<string, number> = m.outcomes ?? {};
  const total = Object.values(outcomes).reduce((a, b) => a + b, 0);
  return { received: m.requests ?? 0, outcomes, balanced: total === (m.requests ?? 0) };
}

async function ready(d: TestDaemon): Promise<void> {
  await d.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready', 'model ready');
}

function post(d: TestDaemon, path: string, body: unknown): Promise<Response> {
  return d.fetch(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
}

describe('hostile request bodies and numbers (real llama-server)', () => {
  it('a compressed body and one not in UTF-8 are refused naming why; a leading BOM is dropped', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 128 } } });
    await ready(d);
    const body = JSON.stringify({ model: 'tiny', prompt: 'café', max_tokens: 2 });
    const send = (bytes: Uint8Array, headers: Record<string, string> = {}): Promise<Response> => d.fetch('/v1/completions', { method: 'POST', body: bytes, headers });
    const gz = await send(gzipSync(body), { 'Content-Encoding': 'gzip' });
    expect(gz.status).toBe(400);
    expect(errorOf(await gz.text())).toMatchObject({ code: 'SW_ERR_BAD_REQUEST', message: 'request body has Content-Encoding "gzip", which the daemon does not decode — send it uncompressed' });
    // Latin-1 é would have reached llama-server as U+FFFD, the prompt changed unseen.
    const latin1 = await send(Buffer.from(body, 'latin1'));
    expect(latin1.status).toBe(400);
    expect(errorOf(await latin1.text()).message).toBe(`request body is not UTF-8 (byte 0xe9 at offset ${body.indexOf('é')}) — send JSON in UTF-8`);
    const bom = await send(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(body)]));
    expect(bom.status).toBe(200);
    expect((await send(Buffer.from(body))).status).toBe(200);
  });

  it('D1: deep nesting is refused with 400 naming the field, and every counted request gets an outcome', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 2, ctxPerSlot: 256 } } });
    await ready(d);
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const res = await post(d, '/v1/chat/completions', `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"logit_bias":${deep}}`);
    expect(res.status).toBe(400);
    const err = errorOf(await res.text());
    expect(err.code).toBe('SW_ERR_BAD_REQUEST');
    expect(err.message).toMatch(/"logit_bias\[0\]\[0\].*" nests deeper than 64 levels/);
    const ok = await post(d, '/v1/completions', { model: 'tiny', prompt: 'x', max_tokens: 2 });
    expect(ok.status).toBe(200);
    const b = balance(await d.status());
    expect(b).toMatchObject({ balanced: true, outcomes: { completed: 1, failed: 0 } });
  });

  it('D6: token counts, n, n_probs, top_k and seed must be integers in range; token counts within ctxPerSlot', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 2, ctxPerSlot: 256 } } });
    await ready(d);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ max_tokens: 4294967301 }, /"max_tokens" must be an integer from 1 to 256 \(the model's context per slot, models\.tiny\.ctxPerSlot\), got the number 4294967301/],
      [{ max_tokens: 2 ** 53 }, /"max_tokens" must be an integer from 1 to 256/],
      [{ max_tokens: 1e12 }, /"max_tokens" must be an integer from 1 to 256/],
      [{ max_completion_tokens: 257 }, /"max_completion_tokens" must be an integer from 1 to 256/],
      [{ n_predict: 1e12 }, /"n_predict" must be an integer from -1 to 256/],
      [{ n: 2 }, /"n" must be 1 .*llama-server/],
      [{ n: 1000 }, /"n" must be 1/],
      [{ n_probs: 1000 }, /"n_probs" must be an integer from 0 to 100/],
      [{ top_k: 2 ** 32 }, /"top_k" must be an integer from 0 to/],
      [{ seed: 2 ** 33 }, /"seed" must be an integer from -1 to 4294967295/],
      [{ seed: 1.5 }, /"seed" must be an integer/],
    ];
    for (const [extra, message] of cases) {
      const res = await post(d, '/v1/completions', { model: 'tiny', prompt: 'x', ...extra });
      const text = await res.text();
      expect({ extra, status: res.status }).toEqual({ extra, status: 400 });
      expect(errorOf(text)).toMatchObject({ code: 'SW_ERR_BAD_REQUEST', message: expect.stringMatching(message) });
    }
    // In range still works, up to the bound.
    const ok = await post(d, '/v1/completions', { model: 'tiny', prompt: 'x', max_tokens: 3, n: 1, seed: 4294967295, top_k: 40 });
    expect(ok.status).toBe(200);
    // WebSocket prompt jobs are bounded alike.
    const c = await d.client();
    await expect(c.call('prompt.submit', { model: 'tiny', prompt: 'x', maxTokens: 1e12 })).rejects.toMatchObject({
      code: 'SW_ERR_BAD_REQUEST',
      message: expect.stringMatching(/"maxTokens" must be an integer from 1 to 256/),
    });
    // A field it does not know is refused, not dropped (max_tokens was ignored: the job ran to the context's end).
    await expect(c.call('prompt.submit', { model: 'tiny', prompt: 'x', max_tokens: 3 } as never)).rejects.toMatchObject({
      code: 'SW_ERR_BAD_REQUEST',
      message: 'prompt.submit: "max_tokens" is not a prompt.submit field — use "maxTokens"',
    });
    await expect(c.call('prompt.submit', { model: 'tiny', prompt: 'x', temprature: 0 } as never)).rejects.toMatchObject({ message: expect.stringContaining('use "temperature"') });
    expect(balance(await d.status())).toMatchObject({ balanced: true, outcomes: { completed: 1, failed: 0 } });
  });

  it('R6: requests llama-server refuses (prompt longer than the context, a lone surrogate) are "rejected" with SW_ERR_UPSTREAM_REJECTED in the OpenAI shape', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 128 } } });
    await ready(d);
    const long = Array.from({ length: 600 }, (_, i) => `word${i}`).join(' ');
    for (const stream of [false, true]) {
      const res = await post(d, '/v1/completions', { model: 'tiny', prompt: long, max_tokens: 4, stream });
      const text = await res.text();
      expect({ stream, status: res.status }).toEqual({ stream, status: 400 });
      const err = errorOf(text);
      expect(err).toMatchObject({ code: 'SW_ERR_UPSTREAM_REJECTED', type: 'invalid_request_error' });
      expect(err.message).toMatch(/llama-server refused the request \(HTTP 400\): .*context/i);
      expect(err.message).not.toContain('\n');
    }
    // A lone surrogate: llama-server's JSON parser refuses it with a 500; still the request's fault.
    const surrogate = await post(d, '/v1/completions', '{"model":"tiny","prompt":"\\ud800 x","max_tokens":2}');
    expect(surrogate.status).toBe(400);
    expect(errorOf(await surrogate.text())).toMatchObject({ code: 'SW_ERR_UPSTREAM_REJECTED', message: expect.stringContaining('surrogate') });
    const c = await d.client();
    const { jobId } = await c.call('prompt.submit', { model: 'tiny', prompt: long, maxTokens: 4 });
    const end = await new Promise<{ code: string }>((resolve) => {
      c.on('job.error', (p) => p.jobId === jobId && resolve(p));
      c.on('job.end', () => resolve({ code: 'none' }));
    });
    expect(end.code).toBe('SW_ERR_UPSTREAM_REJECTED');
    const s = await d.waitFor((x) => balance(x).balanced && balance(x).received === 4, 'four outcomes');
    expect(balance(s).outcomes).toMatchObject({ rejected: 4, failed: 0, completed: 0 });
  });
});

describe('HTTP and JSON-RPC semantics', () => {
  it('requests Node refuses before any route (headers too large, a malformed request line or header) get a JSON error naming what was wrong', async () => {
    const d = await startTestDaemon();
    const answer = async (text: string): Promise<{ status: number; error: { code: string; message: string } }> => {
      const sock = await tcp(d.url);
      sock.write(text);
      const got = await readUntilClose(sock, 5000);
      const [head, body] = got.data.split('\r\n\r\n');
      expect(head).toMatch(/\r\nContent-Type: application\/json\r\n/);
      return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(head!)![1]), error: (JSON.parse(body!) as { error: { code: string; message: string } }).error };
    };
    expect(await answer(`GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)).toEqual({
      status: 431,
      error: expect.objectContaining({ code: 'SW_ERR_HEADERS_TOO_LARGE', message: "the request's headers are larger than 16 KiB — send fewer or shorter headers (a large cookie or token?)" }),
    });
    const badHeader = await answer('GET /api/status HTTP/1.1\r\nHo st: 127.0.0.1\r\n\r\n');
    expect(badHeader.status).toBe(400);
    expect(badHeader.error).toMatchObject({ code: 'SW_ERR_BAD_REQUEST', message: expect.stringMatching(/^malformed HTTP request: .*header.* \(HPE_[A-Z_]+\) — send HTTP\/1\.1 as RFC 9112 writes it$/i) });
    const badLine = await answer('HELLO\r\n\r\n');
    expect(badLine).toMatchObject({ status: 400, error: { code: 'SW_ERR_BAD_REQUEST', message: expect.stringContaining('(HPE_') } });
    // The daemon is fine after them.
    expect((await raw(d.url, '/healthz')).status).toBe(200);
  });

  it("prompt.submit's reply, with the jobId, comes before any notification of that job; a lone surrogate is refused at submit", async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 2, ctxPerSlot: 128 } } });
    await ready(d);
    const ws = new WebSocket(`${d.url.replace('http', 'ws')}/ws`, { headers: { Authorization: `Bearer ${d.token}` } });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    type Message = { id?: number; method?: string; result?: { jobId: string }; error?: { data: { code: string; message: string } }; params?: { jobId?: string } };
    const got: Message[] = [];
    ws.on('message', (data) => got.push(JSON.parse(data.toString()) as Message));
    // Two find a free slot at once (job.started was sent before the reply), three queue.
    for (let id = 1; id <= 5; id++) ws.send(JSON.stringify({ jsonrpc: '2.0', id, method: 'prompt.submit', params: { model: 'tiny', prompt: 'Hello', maxTokens: 3 } }));
    await waitUntil(() => got.filter((m) => m.method === 'job.end').length === 5, 'five jobs ended', 20_000);
    for (let id = 1; id <= 5; id++) {
      const at = got.findIndex((m) => m.id === id);
      const jobId = got[at]!.result!.jobId;
      const first = got.findIndex((m) => m.params?.jobId === jobId);
      expect({ id, replyBeforeNotifications: at < first }).toEqual({ id, replyBeforeNotifications: true });
      expect(got.filter((m) => m.params?.jobId === jobId).map((m) => m.method)).toEqual(expect.arrayContaining(['job.started', 'job.end']));
    }

    ws.send(JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'prompt.submit', params: { model: 'tiny', messages: [{ role: 'user', content: 'ok' }, { role: 'user', content: 'a \ud800 b' }] } }));
    await waitUntil(() => got.some((m) => m.id === 6), 'the refusal');
    expect(got.find((m) => m.id === 6)!.error!.data).toMatchObject({ code: 'SW_ERR_BAD_REQUEST', message: 'prompt.submit: messages[1].content holds a lone UTF-16 surrogate (half of a character) — send whole characters' });
    ws.close();
  });

  it('answers a request that asks to upgrade to h2c in HTTP/1.1, body and all (curl --http2 and Java clients send it)', async () => {
    const d = await startTestDaemon();
    const u = new URL(d.url);
    const exchange = (head: string, body = ''): Promise<string> =>
      new Promise((resolve, reject) => {
        const sock = connect(Number(u.port), u.hostname, () => sock.end(`${head}\r\n${body}`));
        let text = '';
        sock.on('data', (b: Buffer) => (text += b.toString()));
        sock.on('end', () => resolve(text));
        sock.on('error', reject);
      });
    const upgrade = `Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nAuthorization: Bearer ${d.token}\r\nHost: ${u.host}\r\n`;
    const get = await exchange(`GET /api/status HTTP/1.1\r\n${upgrade}`);
    expect(get).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(get).toContain('"verdict"');
    // The body, sent with the head and after it, reaches the route: its model name is in the answer.
    const body = JSON.stringify({ model: 'no-such-model', prompt: 'x' });
    const post = await exchange(`POST /v1/completions HTTP/1.1\r\n${upgrade}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`, body);
    expect(post).toMatch(/^HTTP\/1\.1 404 /);
    expect(post).toContain('no-such-model');
    // A WebSocket upgrade elsewhere than /ws is still refused as one: 404 with the token, 401 without
    // it (as HTTP routes: the token comes before the path, so a caller without it learns no paths).
    const wsUpgrade = `Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nHost: ${u.host}\r\n`;
    const ws = await exchange(`GET /v1/models HTTP/1.1\r\n${wsUpgrade}Authorization: Bearer ${d.token}\r\n`);
    expect(ws).toMatch(/^HTTP\/1\.1 404 /);
    expect(ws).toContain('use /ws');
    for (const path of ['/v1/models', '/ws']) {
      const anon = await exchange(`GET ${path} HTTP/1.1\r\n${wsUpgrade}`);
      expect({ path, head: anon.split('\r\n')[0] }).toEqual({ path, head: 'HTTP/1.1 401 Unauthorized' });
      expect(anon).toContain('SW_ERR_UNAUTHORIZED');
    }
  });

  it('R8: wrong method is 405 with Allow; HEAD is GET without the body; missing and wrong tokens get one 401, before any route is matched', async () => {
    const d = await startTestDaemon();
    const post = await raw(d.url, '/api/status', { method: 'POST', headers: { Authorization: `Bearer ${d.token}` }, body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET');
    expect(errorOf(post.body)).toMatchObject({ code: 'SW_ERR_METHOD_NOT_ALLOWED', message: expect.stringContaining('/api/status takes GET, not POST') });
    const head = await raw(d.url, '/healthz', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toMatch(/^application\/json/);
    expect(head.body).toBe('');
    const headPost = await raw(d.url, '/v1/completions', { method: 'HEAD', headers: { Authorization: `Bearer ${d.token}` } });
    expect(headPost.status).toBe(405);
    expect(headPost.headers.allow).toBe('POST');
    const ws = await raw(d.url, '/ws', { headers: { Authorization: `Bearer ${d.token}` } });
    expect(ws.status).toBe(426);
    expect(errorOf(ws.body)).toMatchObject({ code: 'SW_ERR_UPGRADE_REQUIRED', message: expect.stringContaining('connect to it with a WebSocket client') });
    const slashes = await raw(d.url, '//api/status', { headers: { Authorization: `Bearer ${d.token}` } });
    expect(slashes.status).toBe(404);
    expect(errorOf(slashes.body).message).toContain('no route GET //api/status (read as /status)');
    const get = await raw(d.url, '/v1/completions', { headers: { Authorization: `Bearer ${d.token}` } });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');

    const missing = await raw(d.url, '/api/status');
    const wrong = await raw(d.url, '/api/status', { headers: { Authorization: 'Bearer nope' } });
    const malformed = await raw(d.url, '/api/status', { headers: { Authorization: 'Basic abc' } });
    for (const r of [missing, wrong, malformed]) expect(r.status).toBe(401);
    expect(wrong.body).toBe(missing.body);
    expect(malformed.body).toBe(missing.body);
    expect(errorOf(missing.body).code).toBe('SW_ERR_UNAUTHORIZED');
    // Without the token nothing is told about routes: an unknown path, a wrong method and /ws read alike.
    for (const [path, method] of [['/no/such/path', 'GET'], ['/api/status', 'POST'], ['/ws', 'GET']] as const) {
      const anon = await raw(d.url, path, { method, body: method === 'POST' ? '{}' : undefined });
      expect({ path, status: anon.status, body: anon.body }).toEqual({ path, status: 401, body: missing.body });
    }
    expect((await raw(d.url, '/healthz')).status).toBe(200);
  });

  it('R8: user input is echoed on one line, quoted and capped', async () => {
    const d = await startTestDaemon();
    const evilModel = `ghost\nX-Injected: yes\n${'a'.repeat(500)}`;
    const res = await post(d, '/v1/completions', { model: evilModel, prompt: 'x' });
    const err = errorOf(await res.text());
    expect(err.code).toBe('SW_ERR_MODEL_NOT_FOUND');
    expect(err.message).not.toMatch(/[\n\r]/);
    expect(err.message).toContain('ghost\\nX-Injected');
    expect(err.message.length).toBeLessThanOrEqual(500);

    const badJson = await post(d, '/v1/completions', '{"model":\n"a",\nnope}');
    const parse = errorOf(await badJson.text());
    expect(parse.code).toBe('SW_ERR_BAD_REQUEST');
    expect(parse.message).not.toMatch(/[\n\r]/);

    const c = await d.client();
    const reply = (await c.raw(JSON.stringify({ jsonrpc: '2.0', id: 1, method: `x\ny${'z'.repeat(500)}` }))) as { error: { message: string } };
    expect(reply.error.message).not.toMatch(/[\n\r]/);
    expect(reply.error.message).toContain('"x\\ny');
    expect(reply.error.message.length).toBeLessThanOrEqual(500);
  });

  it('D5: method names from Object.prototype are unknown methods (-32601, SW_ERR_METHOD_NOT_FOUND)', async () => {
    const d = await startTestDaemon();
    const c = await d.client();
    for (const [i, method] of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', '__defineGetter__'].entries()) {
      const reply = await c.raw(JSON.stringify({ jsonrpc: '2.0', id: i + 1, method, params: { a: 1 } }));
      expect(reply).toEqual({
        jsonrpc: '2.0',
        id: i + 1,
        error: { code: -32601, message: expect.stringContaining(`unknown method "${method}"`), data: expect.objectContaining({ code: 'SW_ERR_METHOD_NOT_FOUND' }) },
      });
    }
    expect(d.output()).not.toMatch(/error|internal/i);
    expect((await c.call('status.get')).protocol).toBe(1);
  });

  it('R8: a flood of 1,000 WebSocket pings keeps a well-behaved client connected', async () => {
    const d = await startTestDaemon();
    const ws = new WebSocket(`${d.url.replace('http', 'ws')}/ws`, { headers: { Authorization: `Bearer ${d.token}` } });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const pongs: string[] = [];
    let closed: number | undefined;
    ws.on('pong', (data) => pongs.push(data.toString()));
    ws.on('close', (code) => (closed = code));
    // Before the fix, ws dropped the peer once 60 automatic pongs were waiting to be written.
    for (let i = 0; i < 1000; i++) ws.ping(String(i));
    const reply = await new Promise<{ id: number; result?: { protocol: number } }>((resolve) => {
      ws.on('message', (data) => resolve(JSON.parse(data.toString()) as { id: number; result?: { protocol: number } }));
      ws.send(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'status.get' }));
    });
    expect(reply).toMatchObject({ id: 7, result: { protocol: 1 } });
    // Pongs may be coalesced (RFC 6455 allows answering only the latest ping), but the latest is answered.
    await new Promise((r) => setTimeout(r, 300));
    expect(pongs.length).toBeGreaterThan(0);
    expect(pongs.at(-1)).toBe('999');
    expect(closed).toBeUndefined();
    ws.close();
  });
});

/** Opens a TCP connection and resolves once it is connected. */
function tcp(url: string): Promise<Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything the server sends until it closes the socket (or `ms` passes). */
function readUntilClose(s: Socket, ms: number): Promise<{ data: string; closed: boolean; afterMs: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    let data = '';
    const timer = setTimeout(() => resolve({ data, closed: false, afterMs: Date.now() - t0 }), ms);
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ data, closed: true, afterMs: Date.now() - t0 });
    });
  });
}

describe('slow and many clients', () => {
  it('R5: a body that never ends gets 408 within listen.bodyTimeoutMs; connections beyond listen.maxConnections are refused', async () => {
    const d = await startTestDaemon({ config: { listen: { bodyTimeoutMs: 1000, maxConnections: 4 } } });
    const slow = await tcp(d.url);
    slow.write(`POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${d.token}\r\nTransfer-Encoding: chunked\r\n\r\n`);
    const trickle = setInterval(() => slow.write('1\r\n \r\n'), 200);
    const answer = await readUntilClose(slow, 10_000);
    clearInterval(trickle);
    expect(answer.closed).toBe(true);
    expect(answer.afterMs).toBeLessThan(5000);
    expect(answer.data).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer.data).toContain('SW_ERR_BODY_TIMEOUT');
    expect(answer.data).toContain('listen.bodyTimeoutMs');

    // A connection that never sends its headers is closed too (headersTimeout), not held forever.
    const idle = await tcp(d.url);
    idle.write('GET /healthz HTTP/1.1\r\n');
    const idleEnd = await readUntilClose(idle, 20_000);
    expect(idleEnd.closed).toBe(true);
    // In the daemon's envelope, not Node's bare 408 (client-error.ts).
    expect(idleEnd.data).toMatch(/^HTTP\/1\.1 408 /);
    expect(idleEnd.data).toContain('"code":"SW_ERR_BODY_TIMEOUT"');
    expect(idleEnd.data).toContain('its headers within 1 s');

    const held = await Promise.all([1, 2, 3, 4].map(() => tcp(d.url)));
    await new Promise((r) => setTimeout(r, 200));
    const extra = await tcp(d.url);
    const refused = await readUntilClose(extra, 3000);
    expect(refused).toMatchObject({ closed: true, data: '' });
    // The client saw only a reset; the log names the limit.
    await waitUntil(() => d.output().includes('4 connections are open (listen.maxConnections): new ones are closed at once'), 'the drop logged', 3000);
    for (const s of held) s.destroy();
    await new Promise((r) => setTimeout(r, 300));
    expect((await raw(d.url, '/healthz')).status).toBe(200);
  });
});

describe('listen beyond loopback: Host check and TLS', () => {
  async function daemonExit(config: Record<string, unknown>): Promise<{ code: number; stderr: string }> {
    const dir = tempDir('listen');
    const configPath = writeConfig(dir, config);
    try {
      await run(process.execPath, [CLI, 'daemon', '--state-dir', join(dir, 'state'), '--config', configPath, '--port', '0'], { timeout: 20_000 });
      return { code: 0, stderr: '' };
    } catch (err) {
      const e = err as { code: number; stderr: string };
      return { code: e.code, stderr: e.stderr };
    }
  }

  it('R7: refuses to bind beyond loopback without TLS or listen.insecure, naming the fix', async () => {
    const res = await daemonExit({ listen: { host: '0.0.0.0' } });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/listen\.host "0\.0\.0\.0" is reachable beyond this machine .*listen\.tls .*listen\.insecure/);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    const badTls = await daemonExit({ listen: { tls: { cert: '/nonexistent/c.pem' } } });
    expect(badTls.code).toBe(2);
    expect(badTls.stderr).toContain('listen.tls.key is required');
    const missing = await daemonExit({ listen: { tls: { cert: '/nonexistent/c.pem', key: '/nonexistent/k.pem' } } });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('/nonexistent/c.pem');
  });

  it('R11: on 0.0.0.0 the Host check stays on: loopback names and listen.allowedHosts only', async () => {
    const d = await startTestDaemon({ config: { listen: { host: '0.0.0.0', insecure: true, allowedHosts: ['box.example'] } } });
    const url = d.url.replace('0.0.0.0', '127.0.0.1');
    const auth = { Authorization: `Bearer ${d.token}` };
    expect((await raw(url, '/api/status', { headers: { ...auth, Host: 'box.example:7373' } })).status).toBe(200);
    expect((await raw(url, '/api/status', { headers: { ...auth, Host: 'localhost' } })).status).toBe(200);
    const evil = await raw(url, '/api/status', { headers: { ...auth, Host: 'attacker.example' } });
    expect(evil.status).toBe(403);
    expect(errorOf(evil.body).message).toContain('listen.allowedHosts');
  });

  it('R7: serves HTTPS with listen.tls (self-signed cert made here)', async () => {
    const dir = tempDir('tls');
    const key = join(dir, 'k.pem');
    const cert = join(dir, 'c.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert, '-days', '1'], { stdio: 'ignore' });
    const d = await startTestDaemon({ config: { listen: { tls: { cert, key } } } });
    expect(d.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ca = readFileSync(cert, 'utf8');
    const res = await raw(d.url, '/api/status', { headers: { Authorization: `Bearer ${d.token}` }, ca });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ protocol: 1 });
    // Plain HTTP on the TLS port gets no answer.
    await expect(raw(d.url.replace('https', 'http'), '/healthz')).rejects.toThrow();
  });
});
