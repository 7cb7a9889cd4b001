// `daemon` (foreground), `start` (background, returns once it accepts requests), `stop`.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { SlotwiseError } from '../../shared/errors';
import { startDaemon } from '../../daemon/main';
import { isAlive } from '../../platform/procfs';
import { ensureStateDir, readDaemonInfo, stateDirPaths } from '../../shared/state-dir';
import { findDaemon, isHealthy } from '../locate';
import { RpcClient } from '../../shared/rpc-client';
import { untilSignal, type Command, type CommandContext } from './command';
import { join } from 'node:path';

export const daemonCommand: Command = {
  summary: 'run the daemon in the foreground (Ctrl-C stops it and its llama-servers)',
  async run(ctx) {
    const d = await startDaemon({ stateDir: ctx.stateDir, configPath: ctx.configPath, port: ctx.port, env: ctx.env, logToStderr: true });
    ctx.stderr.write(`slotwise daemon listening on ${d.url} (pid ${process.pid})\n`);
    const sig = await Promise.race([untilSignal(), d.closed.then(() => undefined)]);
    await d.shutdown(sig ? `received ${sig}` : 'stop requested');
    return 0;
  },
};

export const startCommand: Command = {
  summary: 'start the daemon in the background; returns once it accepts requests',
  options: { 'timeout': { type: 'string' } },
  async run(ctx) {
    const running = await findDaemon(ctx.stateDir);
    if (running) {
      ctx.stdout.write(`already running: ${running.url} (pid ${running.info.pid})\n`);
      return 0;
    }
    const dir = await ensureStateDir(ctx.stateDir);
    const outFile = join(dir.logs, 'daemon.out');
    const out = openSync(outFile, 'w');
    const args = [process.argv[1]!, 'daemon', '--state-dir', ctx.stateDir];
    if (ctx.configPath) args.push('--config', ctx.configPath);
    if (ctx.port !== undefined) args.push('--port', String(ctx.port));
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out], env: ctx.env });
    closeSync(out);
    let exitCode: number | null = null;
    child.on('exit', (code) => (exitCode = code ?? 1));
    child.unref();
    const timeoutMs = Number(ctx.values.timeout ?? 30) * 1000;
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exitCode !== null) {
        const lastLine = readFileSync(outFile, 'utf8').trim().split('\n').filter((l) => l.startsWith('slotwise:')).pop();
        ctx.stderr.write(`${lastLine ?? `slotwise: daemon exited with code ${exitCode}; see ${outFile}`}\n`);
        return exitCode === 2 ? 2 : 1;
      }
      const info = await readDaemonInfo(dir);
      if (info && info.pid === child.pid && (await isHealthy(info.url))) {
        ctx.stdout.write(`${info.url}\n`);
        ctx.stderr.write(`slotwise daemon started (pid ${info.pid}); logs in ${dir.logs}\n`);
        return 0;
      }
      await sleep(100);
    }
    throw new SlotwiseError('SW_ERR_DAEMON_UNREACHABLE', `daemon did not accept requests within ${timeoutMs / 1000} s; see ${outFile}`);
  },
};

export const stopCommand: Command = {
  summary: 'stop the daemon and every llama-server it runs',
  async run(ctx) {
    const stopped = await stopDaemon(ctx);
    ctx.stderr.write(stopped ? 'slotwise daemon stopped\n' : 'no daemon was running\n');
    return 0;
  },
};

/** Asks the daemon to stop over RPC, falling back to signals; resolves once its pid is gone. */
export async function stopDaemon(ctx: Pick<CommandContext, 'stateDir'>): Promise<boolean> {
  const info = await readDaemonInfo(stateDirPaths(ctx.stateDir));
  if (!info || !isAlive(info.pid)) return false;
  const ep = await findDaemon(ctx.stateDir);
  if (ep) {
    const client = new RpcClient({ url: ep.url, token: ep.token });
    try {
      await client.call('daemon.stop');
    } catch {
      process.kill(info.pid, 'SIGTERM'); // RPC refused (old daemon, bad token): the signal does the same
    } finally {
      client.close();
    }
  } else {
    process.kill(info.pid, 'SIGTERM');
  }
  // The daemon stops its children with a 10 s grace each (in parallel); give it that and a margin.
  const deadline = Date.now() + 20_000;
  while (isAlive(info.pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(info.pid)) process.kill(info.pid, 'SIGKILL');
  return true;
}
