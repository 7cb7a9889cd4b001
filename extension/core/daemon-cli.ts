// Runs the CLI bundled in the extension (dist/cli.js) with the extension host's own runtime: Node in
// code-server, Electron in desktop VS Code (ELECTRON_RUN_AS_NODE=1 makes it behave as Node).
import { spawn } from 'node:child_process';
import { SlotwiseError } from '../../shared/errors';

export interface CliRuntime {
  /** `process.execPath` of the extension host. */
  execPath: string;
  /** Absolute path of dist/cli.js inside the installed extension. */
  cliPath: string;
  env: NodeJS.ProcessEnv;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment the CLI runs with: the host's, as Node, with the resolved state dir. */
export function cliEnv(rt: CliRuntime, stateDir: string): NodeJS.ProcessEnv {
  return { ...rt.env, ELECTRON_RUN_AS_NODE: '1', SLOTWISE_STATE_DIR: stateDir };
}

/** Runs `cli.js ...args`; never rejects on a non-zero exit (the caller reads code + stderr). */
export function runCli(rt: CliRuntime, args: string[], opts: { stateDir: string; timeoutMs?: number; signal?: AbortSignal }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(rt.execPath, [rt.cliPath, ...args], {
      env: cliEnv(rt, opts.stateDir),
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 60_000,
      signal: opts.signal,
      windowsHide: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => reject(new SlotwiseError('SW_ERR_INTERNAL', `could not run the Slotwise CLI (${rt.cliPath}): ${err.message}`, { cause: err })));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), stdout, stderr }));
  });
}

/** `cli.js start` (returns once the daemon accepts requests); throws with the CLI's own last error line. */
export async function startDaemonWithCli(rt: CliRuntime, opts: { stateDir: string; configPath?: string }): Promise<string> {
  // The Models view shows each model's state as it changes: no need to wait for the CLI's model watch.
  const args = ['start', '--no-watch', '--state-dir', opts.stateDir];
  if (opts.configPath) args.push('--config', opts.configPath);
  const r = await runCli(rt, args, { stateDir: opts.stateDir, timeoutMs: 60_000 });
  if (r.code !== 0) throw new SlotwiseError('SW_ERR_DAEMON_UNREACHABLE', `could not start the daemon: ${lastLine(r.stderr) ?? `exit ${r.code}`}`, { detail: r.stderr });
  return r.stdout.trim();
}

/** `cli.js stop`; true if one was running. */
export async function stopDaemonWithCli(rt: CliRuntime, opts: { stateDir: string }): Promise<boolean> {
  const r = await runCli(rt, ['stop', '--state-dir', opts.stateDir], { stateDir: opts.stateDir, timeoutMs: 60_000 });
  if (r.code !== 0) throw new SlotwiseError('SW_ERR_INTERNAL', `could not stop the daemon: ${lastLine(r.stderr) ?? `exit ${r.code}`}`, { detail: r.stderr });
  return !/no daemon was running/.test(r.stderr);
}

function lastLine(text: string): string | undefined {
  return text
    .trim()
    .split('\n')
    .filter((l) => l.trim())
    .pop()
    ?.replace(/^slotwise:\s*/, '');
}
