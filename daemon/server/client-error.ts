// Requests Node refuses before any route sees them (a malformed request line or header, headers over
// its maxHeaderSize, headers that never finish): Node's own answer is a bare status with no body.
// These answer in the daemon's error envelope instead, so a client is told what was wrong.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorEnvelope, SlotwiseError } from '../../shared/errors';

/** Node's parse and timeout errors carry a code (`HPE_…`, `ERR_HTTP_REQUEST_TIMEOUT`) and, for HPE_, llhttp's reason. */
type ClientError = Error & { code?: string; reason?: string };

/** The error a request Node could not take in gets, in the daemon's terms. */
export function clientErrorOf(err: ClientError, limits: { maxHeaderBytes: number; headersTimeoutMs: number }): SlotwiseError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new SlotwiseError('SW_ERR_HEADERS_TOO_LARGE', `the request's headers are larger than ${Math.round(limits.maxHeaderBytes / 1024)} KiB — send fewer or shorter headers (a large cookie or token?)`);
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new SlotwiseError('SW_ERR_BODY_TIMEOUT', `the request did not arrive in time (its headers within ${limits.headersTimeoutMs / 1000} s, all of it within the body timeout, listen.bodyTimeoutMs) — send it whole, without pauses`);
    default: {
      const why = (err.reason ?? err.message).replace(/\.$/, '');
      return new SlotwiseError('SW_ERR_BAD_REQUEST', `malformed HTTP request: ${why}${err.code ? ` (${err.code})` : ''} — send HTTP/1.1 as RFC 9112 writes it`);
    }
  }
}

/** The `clientError` listener: one JSON answer and the connection closed, or nothing where no answer can go. */
export function answerClientError(err: ClientError, socket: Duplex, limits: { maxHeaderBytes: number; headersTimeoutMs: number }): void {
  // A reset peer, or a response already under way on this socket (its status line is out): just close.
  const midResponse = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true;
  if (err.code === 'ECONNRESET' || !socket.writable || midResponse) {
    socket.destroy();
    return;
  }
  const { status, body } = errorEnvelope(clientErrorOf(err, limits));
  const text = JSON.stringify(body);
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
}
