// One daemon per state dir. The lock is a listening unix socket named after the state dir's real path:
// binding is atomic (a second bind fails with EADDRINUSE, so two daemons started at the same moment
// cannot both win), and the kernel releases it when the holder dies, even by SIGKILL, so a crash
// never leaves a stale lock to break. A lock *file* (open 'wx') would need stale-lock breaking by
// pid/start time, and two starters breaking the same stale lock race each other.
// On Linux the socket lives in the abstract namespace (no file at all); elsewhere it is a file in
// the state dir, and a file nobody listens on is a crashed holder's: removed, then bound again.
// The holder answers each connection with {pid, port} so the loser can say who holds it.
import { createHash } from 'node:crypto';
import { realpath, rm } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { SlotwiseError } from '../shared/errors';

export interface DaemonLock {
  /** Published to a daemon that finds the lock held, once this one listens. */
  setPort(port: number): void;
  release(): void;
}

interface Holder {
  pid: number;
  port?: number;
}

export async function lockStateDir(root: string): Promise<DaemonLock> {
  const address = await lockAddress(root);
  const holder: Holder = { pid: process.pid };
  const server = createServer((sock) => sock.end(JSON.stringify(holder)));
  server.unref(); // the lock must not keep the process alive on its own
  for (let attempt = 0; ; attempt++) {
    const err = await bind(server, address);
    if (!err) break;
    if (err.code !== 'EADDRINUSE') throw err;
    const other = await askHolder(address);
    if (other) {
      const where = other.port === undefined ? 'still starting' : `port ${other.port}`;
      throw new SlotwiseError('SW_ERR_DAEMON_RUNNING', `a daemon already runs for this state dir (pid ${other.pid}, ${where}) — use it, or \`slotwise stop\` first`);
    }
    // Nobody answered: a socket file left by a crashed holder (never the case for an abstract name).
    if (attempt > 0 || address.startsWith('\0')) throw new SlotwiseError('SW_ERR_DAEMON_RUNNING', `the state dir lock ${address.replace('\0', '@')} is held but its holder does not answer — stop the other daemon`);
    await rm(address, { force: true });
  }
  return {
    setPort: (port) => (holder.port = port),
    release: () => server.close(),
  };
}

async function lockAddress(root: string): Promise<string> {
  const real = await realpath(root);
  if (process.platform === 'linux') return `\0slotwise-${createHash('sha256').update(real).digest('hex').slice(0, 32)}`;
  return join(real, 'daemon.lock');
}

function bind(server: Server, address: string): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const onError = (err: NodeJS.ErrnoException): void => resolve(err);
    server.once('error', onError);
    server.listen(address, () => {
      server.off('error', onError);
      resolve(undefined);
    });
  });
}

/** The holder's {pid, port}, or undefined when nobody answers within a second. */
function askHolder(address: string): Promise<Holder | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const sock = connect(address);
    const timer = setTimeout(() => sock.destroy(), 1000);
    sock.on('data', (d) => (text += d.toString()));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(text) as Holder);
      } catch {
        resolve(undefined);
      }
    });
  });
}
