// Who may talk to the daemon. Shared by HTTP routes and the WebSocket upgrade so both refuse alike:
// a non-loopback Host (DNS rebinding), a foreign Origin (browser pages), or a missing/wrong token.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { SlotwiseError, quote } from '../../shared/errors';

export interface GuardOptions {
  token: string;
  allowedOrigins: string[];
  /** The configured listen host; requests naming it are allowed even when it is not loopback (a wildcard names nothing). */
  listenHost: string;
  /** Host names accepted besides loopback names and listenHost (`listen.allowedHosts`). */
  allowedHosts: string[];
}

const WILDCARDS = new Set(['0.0.0.0', '::', '[::]']);

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
  // Binding a wildcard says nothing about which names clients use, so it never widens the check.
  const named = !WILDCARDS.has(listen) && host === listen;
  if (!isLoopbackHost(host) && !named && !opts.allowedHosts.some((h) => h.toLowerCase() === host)) {
    return new SlotwiseError(
      'SW_ERR_FORBIDDEN',
      `Host ${quote(req.headers.host ?? '')} is not allowed: the daemon answers loopback names only — add the name to listen.allowedHosts in the config to serve it`,
    );
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !opts.allowedOrigins.includes(origin)) {
    return new SlotwiseError('SW_ERR_FORBIDDEN', `Origin ${quote(origin)} is not allowed — add it to listen.allowedOrigins in the config to let that page connect`);
  }
  return undefined;
}

const UNAUTHORIZED = 'missing or wrong token: send "Authorization: Bearer <token>" (or "x-api-key: <token>") with the token from the daemon\'s state dir, file "token"';

export function checkToken(req: IncomingMessage, opts: GuardOptions): SlotwiseError | undefined {
  const header = req.headers.authorization;
  // Anthropic's clients send their key as x-api-key (Claude Code's ANTHROPIC_API_KEY, the SDKs).
  const apiKey = req.headers['x-api-key'];
  const token = header !== undefined ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : typeof apiKey === 'string' ? apiKey.trim() : undefined;
  const given = Buffer.from(token ?? '');
  const want = Buffer.from(opts.token);
  // One answer for missing, malformed and wrong: a prober learns nothing from the difference.
  if (given.length !== want.length || !timingSafeEqual(given, want)) {
    return new SlotwiseError('SW_ERR_UNAUTHORIZED', UNAUTHORIZED);
  }
  return undefined;
}
