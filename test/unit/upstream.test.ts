// How a failed upstream request is classified: client gone, instance gone (retryable before the
// first byte), or anything else.
import { describe, expect, it } from 'vitest';
import { InstanceGoneError } from '../../daemon/scheduler/dispatch';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { payloadOf } from '../../daemon/api/payload';
import { classifyUpstreamError, midResponseError, poolFor, postJson } from '../../daemon/api/upstream';
import type { LlamaInstance } from '../../daemon/runtime/instance';
import { SlotwiseError } from '../../shared/errors';
import { stallReason } from '../../daemon/runtime/stall-watchdog';

const live = new AbortController().signal;
const inst = { id: 'm#1', requestSignal: live };

function parserError(message: string): Error {
  return Object.assign(new Error(message), { name: 'HTTPParserError' });
}

describe('classifyUpstreamError', () => {
  it.each([
    ['refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })],
    ['its UNIX socket gone', Object.assign(new Error('connect ENOENT /state/sockets/m_1.sock'), { code: 'ENOENT' })],
    ["its socket's accept queue full (frozen)", Object.assign(new Error('connect EAGAIN /state/sockets/m_1.sock'), { code: 'EAGAIN' })],
    ['socket closed', Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })],
    ['cause carries the code', Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNRESET' } })],
    // undici's error when a Connection: close stream's process dies mid-body (recorded with kill -9)
    ['EOF inside a chunked body', parserError('Response does not match the HTTP/1.1 protocol (Invalid EOF state)')],
  ])('%s → instance gone', (_name, err) => {
    expect(classifyUpstreamError(err, inst, live)).toBeInstanceOf(InstanceGoneError);
  });

  it('any other error is an upstream error naming the instance', () => {
    const e = classifyUpstreamError(parserError('Response does not match the HTTP/1.1 protocol (Invalid header value char)'), inst, live);
    expect(e).not.toBeInstanceOf(InstanceGoneError);
    expect(e).toMatchObject({ code: 'SW_ERR_UPSTREAM', message: expect.stringContaining('[m#1]') });
  });

  it('an aborted client wins over everything', () => {
    const ctrl = new AbortController();
    ctrl.abort();
    expect(classifyUpstreamError(Object.assign(new Error('x'), { code: 'ECONNRESET' }), inst, ctrl.signal)).toMatchObject({ code: 'SW_ERR_CANCELLED' });
  });

  it('a stalled instance: retryable before the first byte, SW_ERR_INSTANCE_STALLED either way', () => {
    const stall = new AbortController();
    stall.abort(new SlotwiseError('SW_ERR_INSTANCE_STALLED', '[m#1] llama-server stalled (x) — it was killed and restarts'));
    const e = classifyUpstreamError(new Error('This operation was aborted'), { id: 'm#1', requestSignal: stall.signal }, live);
    expect(e).toBeInstanceOf(InstanceGoneError);
    expect(e).toMatchObject({ code: 'SW_ERR_INSTANCE_STALLED', message: '[m#1] llama-server stalled (x) — it was killed and restarts' });
    expect(midResponseError(e as InstanceGoneError, 'm#1', new Error('aborted'))).toMatchObject({ code: 'SW_ERR_INSTANCE_STALLED' });
    expect(midResponseError(new InstanceGoneError('m#1', new Error('other side closed')), 'm#1', new Error('other side closed'))).toMatchObject({ code: 'SW_ERR_UPSTREAM' });
  });
});

describe('stallReason', () => {
  const base = { healthAt: 10_000, progressAt: 10_000, inFlight: 0, timeoutMs: 1500 };
  it('idle with /health answering is alive however long nothing happens', () => {
    expect(stallReason(11_400, { ...base, progressAt: 0 })).toBeUndefined();
  });
  it('requests in flight without progress for longer than the timeout are a stall', () => {
    expect(stallReason(11_500, { ...base, inFlight: 2 })).toBeUndefined();
    expect(stallReason(11_501, { ...base, healthAt: 11_000, inFlight: 2 })).toBe('2 request(s) in flight made no progress for 1501 ms');
  });
  it('/health silent for longer than the timeout is a stall even with nothing in flight', () => {
    expect(stallReason(11_600, { ...base, progressAt: 11_600 })).toBe('/health did not answer for 1600 ms');
  });
  it('names the stranded requests whichever sign tripped first', () => {
    expect(stallReason(11_600, { ...base, progressAt: 11_300, inFlight: 3 })).toBe('3 request(s) in flight made no progress for 300 ms, /health did not answer for 1600 ms');
  });
});

describe('poolFor (connections to one instance)', () => {
  it('keeps one pool per origin across streams whose connection llama-server closes', async () => {
    // Like llama-server after a stream: the answer ends the connection.
    const server = createServer((_req, res) => {
      res.setHeader('Connection', 'close');
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const instance = { id: 'm#1', endpoint: { origin: url }, apiKey: undefined, requestSignal: live } as unknown as LlamaInstance;
      const pool = poolFor(url);
      for (let i = 0; i < 3; i++) {
        const res = await postJson(instance, '/v1/completions', payloadOf('{}'), true, live);
        expect(await res.body.text()).toBe('{}');
      }
      // undici's Agent dropped an origin's pool whenever its last connection closed: a new pool and client per stream.
      expect(poolFor(url)).toBe(pool);
      expect(pool.closed).toBe(false);
    } finally {
      server.close();
    }
  });

  it("reaches an instance that listens on a UNIX socket over that socket, one pool per socket", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-pool-'));
    const socketPath = join(dir, 'm_1.sock');
    const hosts: string[] = [];
    // A plain server on a socket stands in for llama-server's listener (the real one: test/integration/unix-socket.test.ts).
    const server = createServer((req, res) => {
      hosts.push(`${req.headers.host} ${req.socket.remoteAddress ?? 'unix'}`);
      res.end('{"ok":1}');
    });
    await new Promise<void>((r) => server.listen(socketPath, r));
    try {
      const endpoint = { origin: 'http://127.0.0.1:9', socketPath };
      const instance = { id: 'm#1', endpoint, apiKey: undefined, requestSignal: live } as unknown as LlamaInstance;
      const res = await postJson(instance, '/v1/completions', payloadOf('{}'), false, live);
      expect(await res.body.text()).toBe('{"ok":1}');
      // Host names the instance's origin; the connection is the socket's (port 9 has no listener).
      expect(hosts).toEqual(['127.0.0.1:9 unix']);
      expect(poolFor(endpoint)).not.toBe(poolFor('http://127.0.0.1:9'));
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('closes the pool of an origin unused for a minute once a new origin appears', () => {
    const t0 = 1_000_000;
    const old = poolFor('http://127.0.0.1:1', t0);
    poolFor('http://127.0.0.1:2', t0 + 30_000);
    expect(old.closed).toBe(false); // used 30 s ago: kept
    poolFor('http://127.0.0.1:3', t0 + 61_000);
    expect(old.closed).toBe(true);
    expect(poolFor('http://127.0.0.1:1', t0 + 62_000)).not.toBe(old);
  });
});
