// The floor of a proxy hop: the plainest streaming proxy Node can run (http.createServer, http.request
// on a connection per stream, pipe), in a process of its own as the daemon runs, in front of the same
// upstream. A connection per stream because llama-server (and the stand-in as the bench runs it) closes
// each stream's connection: a kept-alive one would be reused while its FIN is in flight. The
// GPU-pace sweep measures it beside the daemon and direct, so "added TTFT" has a baseline that any
// Node proxy on this machine pays: no queue, no leases, no status, no validation. It reaches
// llama-server as the daemon does: over the instance's UNIX socket where it has one.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { SlotwiseError } from '../shared/errors';

/** Run with `node -e`: argv[1] is the upstream origin, argv[2] its socket if any; prints `listening PORT` once bound. */
const SOURCE = `
const http = require('node:http');
const up = new URL(process.argv[1]);
const at = process.argv[2] ? { socketPath: process.argv[2] } : { host: up.hostname, port: up.port };
const agent = new http.Agent({ keepAlive: false });
http.createServer((req, res) => {
  const parts = [];
  req.on('data', (d) => parts.push(d));
  req.on('end', () => {
    const body = Buffer.concat(parts);
    const headers = { 'content-type': 'application/json', 'content-length': body.length };
    if (req.headers.authorization) headers.authorization = req.headers.authorization;
    const u = http.request({ ...at, path: req.url, method: req.method, agent, headers }, (ur) => {
      res.writeHead(ur.statusCode, { 'content-type': ur.headers['content-type'] || 'application/json' });
      ur.pipe(res);
    });
    u.on('error', (err) => res.destroy(err));
    res.on('close', () => { if (!res.writableFinished) u.destroy(); });
    u.end(body);
  });
}).listen(0, '127.0.0.1', function () { process.stdout.write('listening ' + this.address().port + '\\n'); });
process.on('SIGTERM', () => process.exit(0));
`;

export interface FloorProxy {
  /** Its base URL (http://127.0.0.1:PORT). */
  url: string;
  pid: number;
  close(): Promise<void>;
}

/** Starts the bare proxy in front of `upstream` (an origin, reached at `socketPath` when given); resolves once it listens. */
export async function startFloorProxy(upstream: string, socketPath: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<FloorProxy> {
  const child: ChildProcess = spawn(process.execPath, ['-e', SOURCE, upstream, ...(socketPath ? [socketPath] : [])], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      out += text;
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new SlotwiseError('SW_ERR_INTERNAL', `bench: the bare proxy (the hop's floor) exited with code ${code} before it listened`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
