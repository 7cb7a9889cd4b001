// The daemon's HTTP(S) server starts listening on listen.host:port; the ways that fails, as one line
// that names the host or port and what to change (SW_ERR_CONFIG, exit 2), not an internal error.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SlotwiseError } from '../../shared/errors';

/** The kernel caps it at net.core.somaxconn (4096 on Linux since 5.4). */
const LISTEN_BACKLOG = 4096;

/** Listens on host:port (0 = any free port) and resolves with the port; rejects with listenError's error. */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, host, port));
    server.once('error', onError);
    // A burst of new clients (1,000 streams opened at once) overflowed Node's default accept queue
    // of 511: the kernel dropped their handshakes and they retried a second or three later.
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

const PORT_FIX = 'pick another with --port or listen.port (0 = any free port)';
const HOST_FIX = 'set listen.host in the config to an address of this machine (127.0.0.1 for this machine only)';

/** A failed listen as SW_ERR_CONFIG naming the host or port and the fix; an error it does not know, unchanged. */
export function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  const config = (message: string): SlotwiseError => new SlotwiseError('SW_ERR_CONFIG', message, { cause: err });
  switch (err.code) {
    case 'EADDRINUSE':
      return config(`port ${port} on ${host} is in use — ${PORT_FIX}`);
    case 'EACCES':
    case 'EPERM':
      return config(`port ${port} on ${host} is not allowed for this user (${err.code}: ports below 1024 need privileges) — ${PORT_FIX}`);
    case 'EADDRNOTAVAIL':
      return config(`listen.host ${host} is not an address of this machine (EADDRNOTAVAIL) — ${HOST_FIX}`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
    case 'EAI_NONAME':
      return config(`listen.host ${JSON.stringify(host)} does not resolve to an address (${err.code}) — ${HOST_FIX}`);
    case 'EAFNOSUPPORT':
      return config(`listen.host ${host}: this machine has no ${host.includes(':') ? 'IPv6' : 'IPv4'} (EAFNOSUPPORT) — ${HOST_FIX}`);
    default:
      return err;
  }
}
