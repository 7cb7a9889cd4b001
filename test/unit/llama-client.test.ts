// The daemon's polls of llama-server (daemon/runtime/llama-client.ts) against a local HTTP server
// standing in for it: what matters here is the connection (one per poll, closed after, so no
// keep-alive connection keeps llama-server's HTTP thread waking), the key, and a server that never
// answers. Why not the real one: only the server side sees which connections a client opened and
// left open, llama-server reports none of that, and a body split mid-line or an accept without an
// answer are cases it does not produce on demand. The endpoints themselves are read from the real
// llama-server in the integration tests (metrics, leases, hardening, chaos).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { getHealth, getMetrics, getSlots } from '../../daemon/runtime/llama-client';

interface Fake {
  url: string;
  server: Server;
  open: Set<Socket>;
  connections: number;
  requests: IncomingMessage[];
}

let fake: Fake | undefined;

async function serve(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<Fake> {
  const open = new Set<Socket>();
  const f: Fake = { url: '', server: createServer(), open, connections: 0, requests: [] };
  f.server.on('connection', (s: Socket) => {
    f.connections++;
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  f.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    f.requests.push(req);
    handle(req, res);
  });
  await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', r));
  f.url = `http://127.0.0.1:${(f.server.address() as { port: number }).port}`;
  fake = f;
  return f;
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
}

afterEach(async () => {
  if (!fake) return;
  for (const s of fake.open) s.destroy();
  await new Promise((r) => fake!.server.close(r));
  fake = undefined;
});

const SLOTS = JSON.stringify([{ id: 0, n_ctx: 512, is_processing: false }, { id: 1, n_ctx: 512, is_processing: true, id_task: 7 }]);

describe('llama-client', () => {
  it('polls on a connection of its own each time, asks to close it, and leaves none open', async () => {
    // A server that would keep connections alive if asked: whatever stays open is the client's doing.
    const f = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(SLOTS);
    });
    f.server.keepAliveTimeout = 60_000;
    for (let i = 0; i < 3; i++) {
      const slots = await getSlots(f.url, { apiKey: 'k' });
      expect(slots.map((s) => s.busy)).toEqual([false, true]);
      await until(() => f.open.size === 0);
    }
    expect(f.connections).toBe(3);
    expect(f.requests.map((r) => r.headers.connection)).toEqual(['close', 'close', 'close']);
    expect(f.requests.every((r) => r.headers.authorization === 'Bearer k' && r.method === 'GET' && r.url === '/slots')).toBe(true);
  });

  it('reads a body that comes in pieces, and names the endpoint and status of a refusal', async () => {
    const f = await serve((req, res) => {
      if (req.headers.authorization !== 'Bearer right') {
        res.writeHead(401, { 'content-type': 'application/json' });
        return res.end('{"error":{"message":"Invalid API Key"}}');
      }
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('# HELP llamacpp:tokens_predicted_total x\nllamacpp:tokens_predicted_');
      setTimeout(() => res.end('total 42\nllamacpp:requests_deferred 3\n'), 20);
    });
    const m = await getMetrics(f.url, { apiKey: 'right' });
    expect(m.get('tokens_predicted_total')).toBe(42);
    expect(m.get('requests_deferred')).toBe(3);
    await expect(getSlots(f.url, { apiKey: 'wrong' })).rejects.toThrow(/^\/slots answered 401: .*Invalid API Key/);
  });

  it('gives up on a server that accepts and never answers (frozen) within its timeout', async () => {
    const f = await serve(() => {
      // never answers
    });
    const started = Date.now();
    await expect(getSlots(f.url, { timeoutMs: 150 })).rejects.toThrow('GET /slots: no answer within 150 ms');
    expect(Date.now() - started).toBeLessThan(2000);
    const h = await getHealth(f.url, { timeoutMs: 150 });
    expect(h).toEqual({ kind: 'down', message: 'GET /health: no answer within 150 ms' });
    await until(() => f.open.size === 0); // the abandoned connections are closed, not leaked
  });

  it('reports a refused connection as down, and an abort as an abort', async () => {
    const f = await serve(() => {
      // never answers
    });
    const abort = new AbortController();
    const pending = getHealth(f.url, { signal: abort.signal, timeoutMs: 10_000 });
    await until(() => f.requests.length === 1);
    abort.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    const url = f.url;
    for (const s of f.open) s.destroy();
    await new Promise((r) => f.server.close(r));
    fake = undefined;
    const h = await getHealth(url);
    expect(h.kind).toBe('down');
    expect(h.kind === 'down' && h.message).toMatch(/ECONNREFUSED/);
  });
});
