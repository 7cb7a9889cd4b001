// Who may talk to the daemon. Shared by HTTP routes and the WebSocket upgrade so both refuse alike:
// a non-loopback Host (DNS rebinding), a foreign Origin (browser pages), or a missing/wrong token.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { SlotwiseError } from '../../shared/errors';

export interface GuardOptions {
  token: string;
  allowedOrigins: string[];
  /** The configured listen host; requests naming it are allowed even when it is not loopback. */
  listenHost: string;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** Host header without the port; IPv6 literals keep their brackets. */
export function hostName(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  const colon = hostHeader.lastIndexOf(':');
  return (colon >= 0 ? hostHeader.slice(0, colon) : hostHeader).toLowerCase();
}

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host.endsWith('.localhost');
}

/** Host and Origin checks; run before authentication so a rebinding page learns nothing. */
export function checkOrigin(req: IncomingMessage, opts: GuardOptions): SlotwiseError | undefined {
  const host = hostName(req.headers.host ?? '');
  const listen = opts.listenHost.toLowerCase();
  if (!isLoopbackHost(host) && host !== listen && !(listen === '0.0.0.0' || listen === '::')) {
    return new SlotwiseError('SW_ERR_FORBIDDEN', `Host "${req.headers.host ?? ''}" is not allowed: the daemon answers loopback names only (set listen.host to serve others)`);
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !opts.allowedOrigins.includes(origin)) {
    return new SlotwiseError('SW_ERR_FORBIDDEN', `Origin "${origin}" is not allowed — add it to listen.allowedOrigins in the config to let that page connect`);
  }
  return undefined;
}

export function checkToken(req: IncomingMessage, opts: GuardOptions): SlotwiseError | undefined {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) {
    return new SlotwiseError('SW_ERR_UNAUTHORIZED', 'missing token: send "Authorization: Bearer <token>" (the token is in the state dir, file "token")');
  }
  const given = Buffer.from(match[1]!);
  const want = Buffer.from(opts.token);
  if (given.length !== want.length || !timingSafeEqual(given, want)) {
    return new SlotwiseError('SW_ERR_UNAUTHORIZED', 'wrong token: use the one in the daemon\'s state dir, file "token"');
  }
  return undefined;
}
