// The WebSocket server's per-peer bounds, on a plain loopback HTTP server with short limits:
// a peer that stops answering pings is dropped; a peer that stops reading gets status pushes
// coalesced and is closed past the hard cap, so the daemon's send buffer never grows without bound.
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { attachWebSocket, type RpcConnection, type RpcHandlers } from '../../daemon/server/ws';
import { createLogger } from '../../platform/log';
import type { Snapshot } from '../../shared/protocol';

const TOKEN = 'test-token';
const logger = createLogger({ level: 'error', sinks: [] });
const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((fn) => fn()));

async function serve(handlers: RpcHandlers, limits: { heartbeatMs?: number; softBufferBytes?: number; hardBufferBytes?: number }) {
  const server: Server = createServer((_req, res) => res.end());
  const ws = attachWebSocket(server, { guard: { token: TOKEN, allowedOrigins: [], listenHost: '127.0.0.1', allowedHosts: [] }, handlers, maxPayload: 1 << 20, logger, ...limits });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    ws.close();
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  return { port, ws };
}

/** A client frame (masked, as RFC 6455 requires of clients). */
function frame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x81, 0x80 | len]) : Buffer.from([0x81, 0x80 | 126, len >> 8, len & 0xff]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, body]);
}

/** A raw socket that completes the upgrade and then never reads again. */
async function rawPeer(port: number): Promise<Socket> {
  const s = connect(port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  s.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
  await new Promise<void>((resolve) => {
    let got = '';
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) {
        s.off('data', onData);
        s.pause(); // from here on the peer reads nothing
        resolve();
      }
    };
    s.on('data', onData);
  });
  cleanups.push(() => s.destroy());
  return s;
}

async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return pred();
}

const big = 'x'.repeat(64 * 1024);

describe('WebSocket per-peer bounds', () => {
  it('drops a peer that misses two pongs, keeps one that answers', async () => {
    const { port, ws } = await serve({}, { heartbeatMs: 100 });
    const polite = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    const mute = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { Authorization: `Bearer ${TOKEN}` }, autoPong: false });
    await Promise.all([polite, mute].map((c) => new Promise((r) => c.once('open', r))));
    let muteClosed = false;
    mute.on('close', () => (muteClosed = true));
    cleanups.push(() => polite.terminate());
    expect(ws.connections()).toBe(2);
    expect(await until(() => muteClosed, 2000)).toBe(true);
    await new Promise((r) => setTimeout(r, 400)); // several more heartbeats
    expect(polite.readyState).toBe(WebSocket.OPEN);
    expect(ws.connections()).toBe(1);
  });

  it('closes a peer that stops reading once its unsent replies pass the hard cap', async () => {
    const { port, ws } = await serve({ 'status.get': () => ({ big }) as unknown as Snapshot }, { softBufferBytes: 64 * 1024, hardBufferBytes: 1024 * 1024 });
    const s = await rawPeer(port);
    expect(ws.connections()).toBe(1);
    // 400 replies × 64 KiB = 25 MiB: far past what the kernel buffers and the hard cap.
    for (let i = 0; i < 400; i++) s.write(frame(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'status.get' })));
    expect(await until(() => ws.connections() === 0, 5000)).toBe(true);
  });

  it('coalesces status pushes to a slow peer instead of buffering each, then sends the latest', async () => {
    let conn: RpcConnection | undefined;
    const handlers: RpcHandlers = {
      'status.subscribe': (_p, c) => {
        conn = c;
        return { ok: true } as unknown as Snapshot;
      },
    };
    const { port, ws } = await serve(handlers, { softBufferBytes: 64 * 1024, hardBufferBytes: 4 * 1024 * 1024 });
    const s = await rawPeer(port);
    s.write(frame(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'status.subscribe' })));
    expect(await until(() => conn !== undefined, 2000)).toBe(true);
    // 2,000 pushes × 64 KiB = 125 MiB if each were kept; the peer is not reading.
    for (let i = 0; i < 2000; i++) conn!.notify('status', { snapshot: { seq: i, big } as unknown as Snapshot });
    await new Promise((r) => setTimeout(r, 300));
    expect(ws.connections()).toBe(1); // coalesced, so never past the hard cap: still connected
    expect(conn!.closed).toBe(false);
    // The peer catches up: it reads everything and the newest push is the last one it gets.
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.resume();
    expect(await until(() => text.includes('"seq":1999'), 5000)).toBe(true);
    const seqs = [...text.matchAll(/"seq":(\d+)/g)].map((m) => Number(m[1]));
    expect(seqs.length).toBeLessThan(2000);
    expect(seqs.at(-1)).toBe(1999);
  });
});
