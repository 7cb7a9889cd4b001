// The streamed request on its own connection (daemon/api/stream-upstream.ts): the body framing, and
// what ends a stream — its end, a cut connection, an abort. The servers here are raw TCP servers so
// each test can send exactly the bytes (and the cut) it needs, which no real llama-server does on demand.
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConnector } from 'undici';
import { ChunkedBody, openStream, originParts, parseHead, UPSTREAM_EOF, type StreamTarget } from '../../daemon/api/stream-upstream';

const connect = buildConnector({});
const live = new AbortController().signal;

function decode(body: ChunkedBody, pieces: string[]): { out: string; done: boolean } {
  let out = '';
  let done = false;
  for (const p of pieces) done = body.push(Buffer.from(p, 'latin1'), (b) => (out += b.toString('latin1')));
  return { out, done };
}

describe('originParts', () => {
  it('gives the connect options and Host of an origin, port 80 when none is given, the same object on a second call', () => {
    expect(originParts('http://127.0.0.1:8123')).toEqual({ protocol: 'http:', hostname: '127.0.0.1', host: '127.0.0.1:8123', port: '8123' });
    expect(originParts('http://localhost')).toEqual({ protocol: 'http:', hostname: 'localhost', host: 'localhost', port: '80' });
    expect(originParts('http://[::1]:9000')).toMatchObject({ hostname: '[::1]', host: '[::1]:9000', port: '9000' });
    expect(originParts('http://127.0.0.1:8123')).toBe(originParts('http://127.0.0.1:8123'));
  });

  it('stays bounded when origins keep changing (instances restart on new ports)', () => {
    const first = originParts('http://127.0.0.1:1');
    for (let port = 2; port < 200; port++) expect(originParts(`http://127.0.0.1:${port}`).port).toBe(String(port));
    expect(originParts('http://127.0.0.1:1')).toEqual(first);
    expect(originParts('http://127.0.0.1:1')).not.toBe(first); // evicted and parsed again
  });
});

describe('ChunkedBody', () => {
  it('decodes a chunked body split anywhere, extensions and trailers included', () => {
    const wire = '5;ext=1\r\nhello\r\n7 ; a=b\r\n, world\r\na\r\n, and you!\r\nB\r\n 0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n';
    for (let cut = 1; cut < wire.length; cut++) {
      const body = new ChunkedBody();
      body.mode({ 'transfer-encoding': 'chunked' });
      expect(decode(body, [wire.slice(0, cut), wire.slice(cut)])).toEqual({ out: 'hello, world, and you! 0123456789', done: true });
    }
  });

  it('is not done before the last chunk, and a close then is no proper end', () => {
    const body = new ChunkedBody();
    body.mode({ 'transfer-encoding': 'chunked' });
    expect(decode(body, ['5\r\nhel'])).toEqual({ out: 'hel', done: false });
    expect(body.endsAtClose()).toBe(false);
  });

  it('refuses a malformed chunk size', () => {
    const body = new ChunkedBody();
    body.mode({ 'transfer-encoding': 'chunked' });
    expect(() => decode(body, ['zz\r\n'])).toThrow(/malformed chunk size/);
    const long = new ChunkedBody();
    long.mode({ 'transfer-encoding': 'chunked' });
    expect(() => decode(long, ['1234567890abc\r\n'])).toThrow(/malformed chunk size/); // 13 hex digits
    const noCrlf = new ChunkedBody();
    noCrlf.mode({ 'transfer-encoding': 'chunked' });
    expect(() => decode(noCrlf, ['2\r\nabX\r\n'])).toThrow(/malformed chunked body/); // data longer than its size
  });

  it('reads a Content-Length body to its length, and a body without either to the close', () => {
    const fixed = new ChunkedBody();
    fixed.mode({ 'content-length': '5' });
    expect(decode(fixed, ['hel', 'lo', 'ignored'])).toEqual({ out: 'hello', done: true });
    const open = new ChunkedBody();
    open.mode({});
    expect(decode(open, ['a', 'b'])).toEqual({ out: 'ab', done: false });
    expect(open.endsAtClose()).toBe(true);
  });
});

describe('parseHead', () => {
  it('reads the status and lower-cases header names, joining repeats', () => {
    expect(parseHead('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-A: 1\r\nx-a: 2')).toEqual({
      statusCode: 200,
      headers: { 'content-type': 'text/event-stream', 'x-a': '1, 2' },
    });
    expect(parseHead('SSH-2.0-OpenSSH')).toBeUndefined();
  });
});

describe('openStream', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  /** A server that answers each connection with `answer(socket, request text)`. */
  async function serve(answer: (s: Socket, request: string) => void): Promise<string> {
    server = createServer((s) => {
      let req = '';
      s.on('data', (d) => {
        req += d.toString('latin1');
        const head = req.indexOf('\r\n\r\n');
        const len = Number(/content-length: (\d+)/i.exec(req)?.[1] ?? 0);
        if (head >= 0 && req.length >= head + 4 + len) answer(s, req);
      });
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
  }

  const target = (origin: string, signals: AbortSignal[] = [live]): StreamTarget => ({ origin, path: '/v1/completions', headers: { authorization: 'Bearer k' }, payload: ['{"é":1}'], signals });

  it('sends one request with its length and key, and relays the chunked body that came with the head', async () => {
    let request = '';
    const origin = await serve((s, req) => {
      request = req;
      // Head and the whole body in one write: the body must wait for each() without being lost.
      s.end('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata: \r\n3\r\nhi\n\r\n0\r\n\r\n');
    });
    const res = await openStream(connect, target(origin));
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    const seen: string[] = [];
    await res.each((c) => seen.push(c.toString()) > 0);
    expect(seen.join('')).toBe('data: hi\n');
    expect(request).toMatch(/^POST \/v1\/completions HTTP\/1\.1\r\n/);
    expect(request).toContain('Content-Length: 8\r\n'); // bytes, not characters
    expect(request).toContain('authorization: Bearer k\r\n');
    expect(Buffer.from(request, 'latin1').toString('utf8').endsWith('\r\n\r\n{"é":1}')).toBe(true);
  });

  it('sends a body in pieces (a client\'s buffer, then the daemon\'s fields) as one request of their total length', async () => {
    let request = '';
    const origin = await serve((s, req) => {
      request = req;
      s.end('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
    });
    const photo = Buffer.from(`{"url":"${'A'.repeat(200_000)}","é":1`);
    const res = await openStream(connect, { ...target(origin), payload: [photo, ',"id_slot":2}'] });
    await res.each(() => true);
    expect(request).toContain(`Content-Length: ${photo.length + 13}\r\n`);
    expect(Buffer.from(request, 'latin1').toString('utf8').endsWith(`\r\n\r\n${photo.toString()},"id_slot":2}`)).toBe(true);
  });

  it('rejects with UPSTREAM_EOF when the connection ends mid-body, and before any answer', async () => {
    const cut = await serve((s) => s.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel'));
    const res = await openStream(connect, target(cut));
    await expect(res.each(() => true)).rejects.toMatchObject({ code: UPSTREAM_EOF });
    server!.close();
    const silent = await serve((s) => s.end());
    await expect(openStream(connect, target(silent))).rejects.toMatchObject({ code: UPSTREAM_EOF });
  });

  it('an abort closes the connection: the server sees it and the body rejects', async () => {
    let closed!: () => void;
    const serverSawClose = new Promise<void>((r) => (closed = r));
    const origin = await serve((s) => {
      s.on('close', closed);
      s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'); // and never ends
    });
    const abort = new AbortController();
    const res = await openStream(connect, target(origin, [live, abort.signal]));
    const body = res.each(() => true);
    abort.abort(new Error('client left'));
    await expect(body).rejects.toMatchObject({ name: 'AbortError' });
    await serverSawClose;
  });

  it('the error answer of an upstream reads as text', async () => {
    const origin = await serve((s) => s.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 20\r\n\r\n{"error":"too long"}'));
    const res = await openStream(connect, target(origin));
    expect(res.statusCode).toBe(400);
    expect(await res.text()).toBe('{"error":"too long"}');
  });

  it('a refused connection rejects with its errno', async () => {
    const origin = await serve(() => undefined);
    server!.close();
    await new Promise((r) => setTimeout(r, 20));
    await expect(openStream(connect, target(origin))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
