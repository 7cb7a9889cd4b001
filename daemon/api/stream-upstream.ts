// A streamed request to llama-server on a connection of its own, without undici: llama-server closes
// the connection after every streamed response anyway, so a pooled HTTP client only adds per-request
// and per-chunk work (its client, request and body stream objects, a wasm parse and a stream push per
// token, a stack-traced "reset" error to close the socket). Here the request is one write on a spare
// socket (spare-connections.ts), the head is parsed once, and each piece of the chunked body is handed
// on as a slice of the socket's own buffer.
import type { Socket } from 'node:net';
import type { buildConnector } from 'undici';
import { piecesBytes, type PayloadPieces } from './payload';

/** Response heads beyond this are not llama-server's. */
const MAX_HEAD_BYTES = 64 * 1024;

/** The error of a connection that ended before its response did; upstream.ts counts it as the instance gone. */
export const UPSTREAM_EOF = 'SW_UPSTREAM_EOF';

export interface StreamTarget {
  /** `http://host:port` */
  origin: string;
  /** Connect here instead of the origin's port (an instance's UNIX socket: daemon/runtime/endpoint.ts). */
  socketPath?: string;
  path: string;
  /** Extra request headers (authorization). */
  headers: Record<string, string>;
  /** The body, in pieces (payload.ts): a client's photo goes out as the buffer it came in. */
  payload: PayloadPieces;
  /** Aborts the request (the socket is closed): the client left, or the instance stalled. */
  signals: readonly AbortSignal[];
}

export interface StreamResponse {
  statusCode: number;
  /** Response headers by lower-case name. */
  headers: Record<string, string>;
  /**
   * Hands each piece of the body (framing removed) to `onData` as it arrives; resolves at the body's
   * end, rejects when the connection ends early, fails or is aborted. While `onData` returns false
   * the socket is paused until `resume()`. Call once.
   */
  each(onData: (chunk: Buffer) => boolean): Promise<void>;
  resume(): void;
  /** The whole body as text (error answers). */
  text(): Promise<string>;
}

/** What a connect and the Host header need of an origin. */
export interface OriginParts {
  protocol: string;
  hostname: string;
  host: string;
  port: string;
}

const originCache = new Map<string, OriginParts>();
/** Most daemons have a handful of origins; instances that restart get new ports, so the cache is bounded. */
const ORIGIN_CACHE_MAX = 64;

/** The parts of `http://host:port`, parsed once per origin rather than once per request (a WHATWG URL parse is a few µs). */
export function originParts(origin: string): OriginParts {
  let parts = originCache.get(origin);
  if (!parts) {
    const url = new URL(origin);
    parts = { protocol: url.protocol, hostname: url.hostname, host: url.host, port: url.port || '80' };
    if (originCache.size >= ORIGIN_CACHE_MAX) originCache.clear();
    originCache.set(origin, parts);
  }
  return parts;
}

/** A body this large goes out in its pieces (corked) instead of joined into one buffer first. */
const LARGE_BODY = 64 * 1024;

/** Opens the stream: resolves once the response head arrived. */
export function openStream(connect: buildConnector.connector, t: StreamTarget): Promise<StreamResponse> {
  const url = originParts(t.origin);
  return new Promise((resolveHead, rejectHead) => {
    let socket: Socket | undefined;
    let settled = false;
    let head: StreamResponse | undefined;
    let onBody: ((chunk: Buffer) => boolean) | undefined;
    let endBody: ((err?: Error) => void) | undefined;
    const early: Buffer[] = []; // body bytes that came with the head, before each() was called
    let bodyDone: Error | null | undefined; // null: ended well; an Error: failed; undefined: running
    const decoder = new ChunkedBody();
    let headBuf: Buffer | undefined;

    const fail = (err: Error): void => {
      cleanup();
      socket?.destroy();
      if (!head) {
        if (!settled) rejectHead(err);
        settled = true;
      } else finish(err);
    };
    const onAbort = (e: Event): void => fail(abortError((e.target as AbortSignal).reason));
    const cleanup = (): void => {
      for (const s of t.signals) s.removeEventListener('abort', onAbort);
    };
    const finish = (err: Error | null): void => {
      if (bodyDone !== undefined) return;
      bodyDone = err;
      cleanup();
      // llama-server closes it too; nothing else will use it. Closed on the next turn, so the last bytes
      // (written to the client on this tick) do not wait behind the close(2), which on loopback also
      // runs the peer's side of the teardown.
      if (err === null && socket) setImmediate(destroySocket, socket);
      endBody?.(err ?? undefined);
    };
    const deliver = (chunk: Buffer): void => {
      if (onBody) {
        if (onBody(chunk) === false) socket?.pause();
      } else early.push(Buffer.from(chunk)); // rare (the head and first bytes in one read): keep a copy, not the read buffer
    };

    const onData = (data: Buffer): void => {
      if (bodyDone !== undefined) return;
      let body = data;
      if (!head) {
        headBuf = headBuf ? Buffer.concat([headBuf, data]) : data;
        const end = headBuf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (headBuf.length > MAX_HEAD_BYTES) fail(new Error(`llama-server sent a response head over ${MAX_HEAD_BYTES} bytes`));
          return;
        }
        const parsed = parseHead(headBuf.toString('latin1', 0, end));
        if (!parsed) return fail(new Error('llama-server sent a malformed response head'));
        body = headBuf.subarray(end + 4);
        headBuf = undefined;
        if (parsed.statusCode < 200) return onData(body); // 100 Continue and the like: the real head follows
        decoder.mode(parsed.headers);
        head = makeResponse(parsed);
        settled = true;
        resolveHead(head);
      }
      try {
        if (decoder.push(body, deliver)) finish(null);
      } catch (err) {
        fail(err as Error);
      }
    };

    const makeResponse = (parsed: { statusCode: number; headers: Record<string, string> }): StreamResponse => {
      const each = (fn: (chunk: Buffer) => boolean): Promise<void> => {
        onBody = fn;
        for (const c of early.splice(0)) deliver(c);
        if (bodyDone !== undefined) return bodyDone ? Promise.reject(bodyDone) : Promise.resolve();
        return new Promise<void>((resolve, reject) => (endBody = (err) => (err ? reject(err) : resolve())));
      };
      const text = async (): Promise<string> => {
        const parts: Buffer[] = [];
        await each((c) => parts.push(Buffer.from(c)) > 0);
        return Buffer.concat(parts).toString('utf8');
      };
      return { ...parsed, each, text, resume: () => void socket?.resume() };
    };

    for (const s of t.signals) {
      if (s.aborted) return rejectHead(abortError(s.reason));
      s.addEventListener('abort', onAbort, { once: true });
    }
    const opts = { protocol: url.protocol, hostname: url.hostname, host: url.host, port: url.port, servername: null, socketPath: t.socketPath } as unknown as buildConnector.Options;
    connect(opts, (err, s) => {
      if (err || !s) return fail(err ?? new Error('no socket'));
      socket = s as Socket;
      if (bodyDone !== undefined || settled) return socket.destroy(); // aborted while connecting
      socket.on('data', onData);
      socket.on('error', (e) => fail(e));
      socket.on('close', () => {
        if (!head) fail(Object.assign(new Error('llama-server closed the connection before answering'), { code: UPSTREAM_EOF }));
        else if (decoder.endsAtClose()) finish(null);
        else finish(Object.assign(new Error('the connection closed before the response ended'), { code: UPSTREAM_EOF }));
      });
      const bytes = piecesBytes(t.payload);
      let req = `POST ${t.path} HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: ${bytes}\r\nConnection: close\r\n`;
      for (const [k, v] of Object.entries(t.headers)) req += `${k}: ${v}\r\n`;
      const pieces = [`${req}\r\n`, ...t.payload];
      // A body without a photo goes in one write; a photo's buffer goes as it is, not copied into one.
      if (bytes < LARGE_BODY) socket.write(pieces.join(''));
      else {
        socket.cork();
        for (const x of pieces) socket.write(x);
        socket.uncork();
      }
    });
  });
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}

function abortError(reason: unknown): Error {
  return Object.assign(new Error('request aborted', { cause: reason }), { name: 'AbortError' });
}

/** Status and headers of a response head (without its final blank line); undefined if malformed. */
export function parseHead(text: string): { statusCode: number; headers: Record<string, string> } | undefined {
  const lines = text.split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!status) return undefined;
  const headers: Record<string, string> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] !== undefined ? `${headers[name]}, ${value}` : value;
  }
  return { statusCode: Number(status[1]), headers };
}

const CR = 13;
const LF = 10;
/** Longest chunk size (hex digits) or trailer line accepted. */
const MAX_SIZE_DIGITS = 12;
const MAX_LINE = 4096;

/**
 * The body framing of an HTTP/1.1 response: chunked, a Content-Length, or until the connection closes.
 * `push` hands on the data bytes as slices of the input and says when the body is complete. The
 * chunk-size lines are read byte by byte, without making strings: this runs once per token.
 */
export class ChunkedBody {
  #kind: 'chunked' | 'length' | 'close' = 'close';
  /** length: bytes left; chunked: bytes left of the current chunk's data. */
  #left = 0;
  /** chunked: reading a size line ('size', then 'ext' after `;`), 'data', 'crlf' (after data), 'trailer' (after the 0 chunk), 'done'. */
  #state: 'size' | 'ext' | 'data' | 'crlf' | 'trailer' | 'done' = 'size';
  #size = 0;
  #digits = 0;
  /** Bytes of the current line other than CR (extensions, trailers), to bound them. */
  #lineLen = 0;

  mode(headers: Record<string, string>): void {
    if (/\bchunked\b/i.test(headers['transfer-encoding'] ?? '')) this.#kind = 'chunked';
    else if (headers['content-length'] !== undefined) {
      this.#kind = 'length';
      this.#left = Number(headers['content-length']);
      if (!Number.isSafeInteger(this.#left) || this.#left < 0) throw new Error(`bad Content-Length ${headers['content-length']}`);
      if (this.#left === 0) this.#state = 'done';
    }
  }

  /** Whether a close of the connection now is the body's proper end. */
  endsAtClose(): boolean {
    return this.#kind === 'close' || this.#state === 'done';
  }

  /** Returns true once the body is complete (bytes after it are ignored). */
  push(buf: Buffer, out: (data: Buffer) => void): boolean {
    if (this.#state === 'done') return true;
    if (this.#kind === 'close') {
      if (buf.length > 0) out(buf);
      return false;
    }
    if (this.#kind === 'length') {
      const n = Math.min(this.#left, buf.length);
      if (n > 0) out(buf.subarray(0, n));
      this.#left -= n;
      if (this.#left === 0) this.#state = 'done';
      return this.#state === 'done';
    }
    for (let i = 0; i < buf.length; ) {
      if (this.#state === 'data') {
        const n = Math.min(this.#left, buf.length - i);
        out(buf.subarray(i, i + n));
        i += n;
        this.#left -= n;
        if (this.#left === 0) this.#state = 'crlf';
        continue;
      }
      const c = buf[i++]!;
      if (c === CR) continue;
      if (this.#state === 'size') {
        const d = hexDigit(c);
        if (d >= 0 && this.#digits < MAX_SIZE_DIGITS) {
          this.#size = this.#size * 16 + d;
          this.#digits++;
        } else if (c === LF && this.#digits > 0) {
          this.#endSizeLine();
        } else if ((c === 0x3b || c === 0x20 || c === 0x09) && this.#digits > 0) {
          this.#state = 'ext'; // `;name=value` extensions (and whitespace before them) are ignored
          this.#lineLen = 0;
        } else throw new Error('llama-server sent a malformed chunk size');
      } else if (this.#state === 'ext') {
        if (c === LF) this.#endSizeLine();
        else if (++this.#lineLen > MAX_LINE) throw new Error('llama-server sent a malformed chunk size');
      } else if (this.#state === 'crlf') {
        if (c !== LF) throw new Error('llama-server sent a malformed chunked body');
        this.#state = 'size';
      } else if (c === LF) {
        // trailer: the blank line after the (usually no) trailer fields ends the body
        if (this.#lineLen === 0) {
          this.#state = 'done';
          return true;
        }
        this.#lineLen = 0;
      } else if (++this.#lineLen > MAX_LINE) throw new Error('llama-server sent a malformed chunked body');
    }
    return false;
  }

  #endSizeLine(): void {
    const size = this.#size;
    this.#size = 0;
    this.#digits = 0;
    this.#lineLen = 0;
    if (size === 0) this.#state = 'trailer';
    else {
      this.#state = 'data';
      this.#left = size;
    }
  }
}

/** The value of an ASCII hex digit, or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20; // lower case
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}
