// The daemon's listen on listen.host:port: each way it fails is SW_ERR_CONFIG (exit 2) naming the host
// or port and what to change, as "port in use" always was, never an internal error.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, listenError } from '../../daemon/server/listen';
import { SlotwiseError } from '../../shared/errors';
import { rejection } from '../helpers/rejection';

const servers: Server[] = [];
afterEach(() => servers.splice(0).forEach((s) => s.close()));
const server = (): Server => {
  const s = createServer();
  servers.push(s);
  return s;
};

function fsError(code: string, syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${syscall} ${code}`), { code, syscall });
}

describe('listen errors', () => {
  it('a port in use names the port and host and the flag and key that change it', async () => {
    const taken = server();
    const port = await listen(taken, '127.0.0.1', 0);
    expect(port).toBe((taken.address() as AddressInfo).port);
    const err = await rejection(listen(server(), '127.0.0.1', port));
    expect(err).toMatchObject({ code: 'SW_ERR_CONFIG', exitCode: 2 });
    expect(err.message).toContain(`port ${port} on 127.0.0.1 is in use`);
    expect(err.message).toMatch(/--port.*listen\.port/);
  });

  it('a host that is not an address of this machine names listen.host', async () => {
    const err = await rejection(listen(server(), '10.255.255.1', 0));
    expect(err).toMatchObject({ code: 'SW_ERR_CONFIG', exitCode: 2 });
    expect(err.message).toContain('listen.host 10.255.255.1 is not an address of this machine (EADDRNOTAVAIL)');
  });

  it('a host name that does not resolve, and a port the user may not bind, say what to change', () => {
    for (const code of ['ENOTFOUND', 'EAI_AGAIN']) {
      const err = listenError(fsError(code, 'getaddrinfo'), 'no.such.host.invalid', 7373);
      expect(err).toBeInstanceOf(SlotwiseError);
      expect(err).toMatchObject({ code: 'SW_ERR_CONFIG', exitCode: 2 });
      expect(err.message).toContain(`listen.host "no.such.host.invalid" does not resolve to an address (${code})`);
      expect(err.message).toContain('set listen.host in the config');
    }
    const privileged = listenError(fsError('EACCES', 'listen'), '127.0.0.1', 80);
    expect(privileged).toMatchObject({ code: 'SW_ERR_CONFIG', exitCode: 2 });
    expect(privileged.message).toContain('port 80 on 127.0.0.1 is not allowed for this user (EACCES');
    expect(privileged.message).toMatch(/--port.*listen\.port/);
  });

  it('an error it does not know stays as it is', () => {
    const other = fsError('EMFILE', 'listen');
    expect(listenError(other, '127.0.0.1', 1)).toBe(other);
  });
});
