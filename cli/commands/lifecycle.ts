// `daemon` (foreground), `start` (background, returns once it accepts requests), `stop`.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { SlotwiseError } from '../../shared/errors';
import { numberValue } from '../args';
import { startDaemon } from '../../daemon/main';
import { randomBytes } from 'node:crypto';
import { isAlive } from '../../platform/procfs';
import { NONCE_ENV, isVerifiedProcess } from '../../platform/process-identity';
import { ensureStateDir, readDaemonInfo, removeDaemonInfo, stateDirPaths, type StateDir } from '../../shared/state-dir';
import { secureStateDir } from '../../shared/state-dir-perms';
import { findDaemon, isHealthy, withDaemon, type DaemonEndpoint } from '../locate';
import { RpcClient } from '../../shared/rpc-client';
import { START_WATCH_MS, watchStart } from '../start-report';
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
  help: [
    'slotwise start [--timeout SECONDS]',
    '',
    'Starts the daemon in the background (its output in logs/daemon.out of the state dir) and returns',
    'once it accepts requests, printing its URL; does nothing when one already runs. It then watches the',
    `autostart models for up to ${START_WATCH_MS / 1000} s and warns of any that cannot start (memory, a llama-server`,
    'that exits at launch), and when no model is configured.',
    '  --timeout SECONDS   how long to wait for it (default 30)',
    '  --no-watch          return once the daemon accepts requests, without watching the models',
  ].join('\n'),
  options: { 'timeout': { type: 'string' }, 'no-watch': { type: 'boolean' } },
  async run(ctx) {
    const timeoutMs = (ctx.values.timeout === undefined ? 30 : numberValue('--timeout', ctx.values.timeout as string, 1, 86_400)) * 1000;
    const running = await findDaemon(ctx.stateDir);
    if (running) {
      ctx.stdout.write(`already running: ${running.url} (pid ${running.info.pid})\n`);
      // A running daemon keeps what it started with: say so rather than let these look applied.
      const kept = [
        ...(ctx.port !== undefined && ctx.port !== 0 && ctx.port !== running.info.port ? [`--port ${ctx.port} (it listens on ${running.info.port})`] : []),
        ...(ctx.values.config !== undefined ? [`--config ${String(ctx.values.config)}`] : []), // the flag, not $SLOTWISE_CONFIG: that is the same every time
      ];
      if (kept.length > 0) ctx.stderr.write(`slotwise: not applied to the running daemon, which keeps the settings it started with: ${kept.join(', ')} — \`slotwise stop\`, then start again to use them\n`);
      return 0;
    }
    const dir = await ensureStateDir(ctx.stateDir);
    await dropStaleDaemonInfo(dir, ctx);
    // Checked here too: daemon.out is opened below, before the daemon's own check runs.
    for (const fix of await secureStateDir(dir)) ctx.stderr.write(`slotwise: warning: state dir permissions: ${fix}\n`);
    const outFile = join(dir.logs, 'daemon.out');
    // Appended, and read from here on: a second `start` at the same moment must not truncate the
    // line our daemon writes when it loses the state dir lock. Restarted when it grows large.
    const out = openSync(outFile, fileSize(outFile) > 1_000_000 ? 'w' : 'a', 0o600);
    const outFrom = fileSize(outFile);
    const args = [process.argv[1]!, 'daemon', '--state-dir', ctx.stateDir];
    if (ctx.configPath) args.push('--config', ctx.configPath);
    if (ctx.port !== undefined) args.push('--port', String(ctx.port));
    // The nonce in the daemon's environment lets a later `stop` prove (in /proc/PID/environ) that the pid is this daemon.
    const env = { ...ctx.env, [NONCE_ENV]: randomBytes(16).toString('hex') };
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, out], env });
    closeSync(out);
    let exitCode: number | null = null;
    child.on('exit', (code) => (exitCode = code ?? 1));
    child.unref();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exitCode !== null) {
        const lastLine = readFileSync(outFile).subarray(outFrom).toString('utf8').trim().split('\n').filter((l) => l.startsWith('slotwise:')).pop();
        // Another `start` (a second editor window) won the state dir lock a moment earlier: use its daemon.
        const other = lastLine?.includes('a daemon already runs for this state dir') ? await waitForDaemon(ctx.stateDir, deadline) : undefined;
        if (other) {
          ctx.stdout.write(`already running: ${other.url} (pid ${other.info.pid})\n`);
          return 0;
        }
        ctx.stderr.write(`${lastLine ?? `slotwise: daemon exited with code ${exitCode}; see ${outFile}`}\n`);
        return exitCode === 2 ? 2 : 1;
      }
      const info = await readDaemonInfo(dir);
      if (info && info.pid === child.pid && (await isHealthy(info.url))) {
        ctx.stdout.write(`${info.url}\n`);
        ctx.stderr.write(`slotwise daemon started (pid ${info.pid}); logs in ${dir.logs}\n`);
        if (ctx.values['no-watch'] !== true) {
          for (const line of await modelWarnings(ctx.stateDir, Math.min(deadline, Date.now() + START_WATCH_MS))) ctx.stderr.write(`slotwise: warning: ${line}\n`);
        }
        return 0;
      }
      await sleep(100);
    }
    throw new SlotwiseError('SW_ERR_DAEMON_UNREACHABLE', `daemon did not accept requests within ${timeoutMs / 1000} s; see ${outFile}`);
  },
};

/** What start warns about the models (start-report.ts); nothing when the daemon cannot be asked. */
async function modelWarnings(stateDir: string, until: number): Promise<string[]> {
  // The daemon went away or refused: start's own answer stands, status tells the rest.
  return withDaemon(stateDir, (client) => watchStart(client, until)).catch(() => []);
}

export const stopCommand: Command = {
  summary: 'stop the daemon and every llama-server it runs',
  async run(ctx) {
    const stopped = await stopDaemon(ctx);
    if (stopped) ctx.stderr.write('slotwise daemon stopped\n');
    else if (!(await dropStaleDaemonInfo(stateDirPaths(ctx.stateDir), ctx))) ctx.stderr.write('no daemon was running\n');
    return 0;
  },
};

/**
 * Asks the daemon to stop over RPC (the token proves it is ours), falling back to signals only for a
 * pid proven to be the recorded daemon (start time and nonce, platform/proc.ts). Resolves once it is gone.
 */
export async function stopDaemon(ctx: Pick<CommandContext, 'stateDir'>): Promise<boolean> {
  const info = await readDaemonInfo(stateDirPaths(ctx.stateDir));
  if (!info || !isAlive(info.pid)) return false;
  const verified = isVerifiedProcess(info);
  const ep = await findDaemon(ctx.stateDir);
  let asked = false;
  if (ep) {
    const client = new RpcClient({ url: ep.url, token: ep.token });
    try {
      await client.call('daemon.stop');
      asked = true;
    } catch {
      // RPC refused (old daemon, bad token): a signal does the same, if the pid is provably the daemon
    } finally {
      client.close();
    }
  }
  if (!asked && !verified) return false; // a stale record: the caller removes it and says so
  if (!asked) process.kill(info.pid, 'SIGTERM');
  // The daemon gives running requests shutdownGraceMs, then stops its children with a grace each (in parallel).
  const deadline = Date.now() + 30_000;
  while (isAlive(info.pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(info.pid) && isVerifiedProcess(info)) process.kill(info.pid, 'SIGKILL');
  return true;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

async function waitForDaemon(stateDir: string, deadline: number): Promise<DaemonEndpoint | undefined> {
  for (;;) {
    const ep = await findDaemon(stateDir);
    if (ep || Date.now() > deadline) return ep;
    await sleep(100);
  }
}

/**
 * Removes daemon.json when it names no daemon of ours: its pid is gone, or is now another process
 * (start time or nonce differ) that neither answers at the recorded URL. Says so; true when it did.
 */
async function dropStaleDaemonInfo(dir: StateDir, ctx: Pick<CommandContext, 'stderr' | 'stateDir'>): Promise<boolean> {
  const info = await readDaemonInfo(dir);
  if (!info || isVerifiedProcess(info) || (await findDaemon(ctx.stateDir))) return false;
  await removeDaemonInfo(dir, info.pid);
  const why = isAlive(info.pid) ? `pid ${info.pid} is not provably that daemon: its start time or nonce differ; left alone` : `pid ${info.pid} is gone`;
  ctx.stderr.write(`removed a stale daemon.json (${why}); no daemon was running\n`);
  return true;
}
