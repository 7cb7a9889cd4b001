// A request that asks to upgrade to anything but WebSocket is answered in HTTP/1.1, as a server may
// ignore an Upgrade header (RFC 9110 §7.8). `curl --http2` and Java's HttpClient send `Upgrade: h2c` on
// every http:// request; Node hands any request with an Upgrade header to the server's 'upgrade'
// listener (there is one, for /ws), so without this each of them got a 404 for /ws.
import { ServerResponse, type IncomingMessage, type RequestListener } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Whether an upgrade request asks for WebSocket. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return /^websocket$/i.test(req.headers.upgrade ?? '');
}

/**
 * Serves `req` with `handler` as a plain request on `socket`, closed after the answer. Node's parser
 * stopped at the headers, so a Content-Length body is read here from `head` and the socket (within
 * `bodyTimeoutMs`, else the connection is dropped) and handed to the request before the handler reads it.
 */
export function serveIgnoringUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, handler: RequestListener, limits: { maxBodyBytes: number; bodyTimeoutMs: number }): void {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.on('finish', () => {
    res.detachSocket(socket as Socket);
    socket.end();
  });
  const declared = Number(req.headers['content-length'] ?? 0);
  // No body, or one too large to read (the handler refuses it by its declared length): serve at once.
  const length = Number.isSafeInteger(declared) && declared > 0 && declared <= limits.maxBodyBytes ? declared : 0;
  const parts: Buffer[] = [head];
  let got = head.length;
  const timer = setTimeout(() => socket.destroy(), limits.bodyTimeoutMs);
  const serve = (): void => {
    clearTimeout(timer);
    socket.off('data', more);
    const body = Buffer.concat(parts).subarray(0, length);
    if (body.length > 0) req.unshift(body); // the request was ended empty at the headers; its 'end' is not emitted yet
    handler(req, res);
  };
  const more = (chunk: Buffer): void => {
    parts.push(chunk);
    got += chunk.length;
    if (got >= length) serve();
  };
  if (got >= length) serve();
  else socket.on('data', more);
}
