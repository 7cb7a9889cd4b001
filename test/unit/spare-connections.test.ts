// The spare connection to each llama-server: a new request's socket is one opened ahead of time,
// and a spare that waited too long is never handed out (the server may be closing it).
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import type { buildConnector } from 'undici';
import { spareConnector } from '../../daemon/api/spare-connections';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let server: Server | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A TCP server counting the connections it accepted. */
async function listen(): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  server = createServer((s) => {
    accepted++;
    sockets.push(s);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no port');
  return { port: addr.port, accepted: () => accepted };
}

function connectWith(connector: buildConnector.connector, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    connector({ hostname: '127.0.0.1', protocol: 'http:', port: String(port) }, (err, socket) => {
      if (err) reject(err);
      else {
        sockets.push(socket as Socket);
        resolve(socket as Socket);
      }
    });
  });
}

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!cond()) throw new Error(`timed out: ${what}`);
};

describe('spareConnector', () => {
  it('opens a spare with the first connection and hands it out, already connected, for the next', async () => {
    const { port, accepted } = await listen();
    const connector = spareConnector(60_000);
    const first = await connectWith(connector, port);
    await until(() => accepted() === 2, 'the first connection and a spare');
    first.destroy(); // done with: one connection in use at a time, as one stream after another
    const second = await connectWith(connector, port); // the spare: already connected, no new connect
    expect(second).not.toBe(first);
    expect(second.readyState).toBe('open');
    await until(() => accepted() === 3, 'the next spare');
    await new Promise((r) => setTimeout(r, 30));
    expect(accepted()).toBe(3); // one in use: one spare
  });

  it('keeps as many spares as connections in use, up to its limit, so a burst finds them connected', async () => {
    const { port, accepted } = await listen();
    const connector = spareConnector(60_000, Date.now, 3);
    const held = [await connectWith(connector, port)];
    await until(() => accepted() === 2, 'a spare');
    for (let i = 0; i < 4; i++) held.push(await connectWith(connector, port)); // 5 in use
    await until(() => accepted() === 5 + 3, 'three spares: the limit, not five');
    const before = accepted();
    const burst = await Promise.all([connectWith(connector, port), connectWith(connector, port), connectWith(connector, port)]);
    expect(burst.every((s) => s.readyState === 'open')).toBe(true);
    expect(accepted()).toBe(before); // all three were spares: no connect on their path
    await until(() => accepted() === before + 3, 'the spares refilled');
    for (const s of [...held, ...burst]) s.destroy();
    await new Promise((r) => setTimeout(r, 20)); // their closes are seen: none in use
    const next = await connectWith(connector, port);
    await new Promise((r) => setTimeout(r, 30));
    expect(next.readyState).toBe('open');
    expect(accepted()).toBe(before + 3); // a spare taken, and one in use wants one spare: two were left
  });

  it('never hands out a spare older than its idle limit: it opens a new connection instead', async () => {
    const { port, accepted } = await listen();
    let t = 0;
    const connector = spareConnector(1_000, () => t);
    await connectWith(connector, port);
    await until(() => accepted() === 2, 'a spare');
    t = 1_500; // the spare waited past its limit
    const before = accepted();
    const socket = await connectWith(connector, port);
    await until(() => accepted() >= before + 1, 'a fresh connection');
    expect(socket.readyState).toBe('open');
    expect(socket.destroyed).toBe(false);
  });

  it('drops a spare the server closed, so the next request connects anew', async () => {
    const { port, accepted } = await listen();
    const connector = spareConnector(60_000);
    await connectWith(connector, port);
    await until(() => accepted() === 2, 'a spare');
    for (const s of sockets.filter((x) => x.localPort === port)) s.destroy(); // the server side of both
    const socket = await connectWith(connector, port);
    expect(socket.readyState).toBe('open');
    await until(() => accepted() >= 3, 'a new connection');
  });

  it('connects to a UNIX socket when the options name one, with spares of its own, and says ENOENT once it is gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-spare-'));
    const path = join(dir, 'm_1.sock');
    let accepted = 0;
    server = createServer((s) => {
      accepted++;
      sockets.push(s);
    });
    await new Promise<void>((resolve) => server!.listen(path, resolve));
    const connector = spareConnector(60_000);
    const viaSocket = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        // The port is one nobody listens on: only the socket can answer.
        connector({ hostname: '127.0.0.1', protocol: 'http:', port: '9', socketPath: path }, (err, socket) => (err ? reject(err) : resolve(sockets[sockets.push(socket as Socket) - 1]!)));
      });
    try {
      const first = await viaSocket();
      expect(first.remoteAddress).toBeUndefined(); // not a TCP socket
      await until(() => accepted === 2, 'the first connection and a spare on the socket');
      first.destroy(); // one stream after another: one in use, one spare
      const second = await viaSocket();
      expect(second.readyState).toBe('open');
      await until(() => accepted === 3, 'the next spare');
      for (const s of sockets.splice(0)) s.destroy();
      await new Promise<void>((resolve) => server!.close(() => resolve()));
      server = undefined;
      rmSync(path, { force: true });
      await new Promise((r) => setTimeout(r, 20)); // the spare's close is seen
      await expect(viaSocket()).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("serves undici's Agent: back-to-back requests on fresh connections each get their answer", async () => {
    // As the daemon sends streams: a connection per request (reset), the next one a spare.
    let accepted = 0;
    const http = createHttpServer((_req, res) => res.end('ok'));
    http.on('connection', (s: Socket) => {
      accepted++;
      sockets.push(s);
    });
    server = http;
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const port = (http.address() as { port: number }).port;
    const agent = new Agent({ connect: spareConnector(60_000), headersTimeout: 5_000, bodyTimeout: 5_000 });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await request(`http://127.0.0.1:${port}/`, { dispatcher: agent, reset: true });
        expect(await res.body.text()).toBe('ok');
        await until(() => accepted === i + 2, `request ${i + 1}'s connection and the next spare`);
      }
    } finally {
      await agent.close();
    }
  });
});
