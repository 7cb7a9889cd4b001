// Runs the load generator for a daemon hosted in this process. In its own process when the CLI's
// path is known (`slotwise bench --attach …`), so the daemon's event loop, CPU share and RSS are its
// own, as in real use; else in this process (the daemon's loop lag then includes the client's work).
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SlotwiseError } from '../shared/errors';
import { runSweep, type Progress } from './sweep';
import type { BenchReport, DaemonSide, SweepOptions, SweepResult } from './types';

export interface ClientRun {
  sweep: SweepOptions;
  url: string;
  token: string;
  /** The hosted daemon's state dir: the child finds it there with --attach. */
  stateDir: string;
  /** Instance id → llama-server API key, for direct requests; handed to a child in its environment (never argv). */
  directKeys?: Record<string, string>;
  /** Path of dist/cli.js; undefined = run in this process. */
  cliPath?: string;
  /** The bare proxy's process (with `sweep.floor`). */
  floorPid?: number;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  progress?: Progress;
}

/** Env var telling a child bench to stream its progress as lines (`~ ` = in-place update). */
export const PROGRESS_ENV = 'SLOTWISE_BENCH_PROGRESS';
/** Env var carrying `directKeys` (JSON) to a child bench. */
export const DIRECT_KEYS_ENV = 'SLOTWISE_BENCH_DIRECT_KEYS';

/** Env var carrying the bare proxy's base URL (SweepOptions.floor) to a child bench. */
export const FLOOR_ENV = 'SLOTWISE_BENCH_FLOOR_URL';
/** Env var carrying the bare proxy's pid (for its CPU per request) to a child bench. */
export const FLOOR_PID_ENV = 'SLOTWISE_BENCH_FLOOR_PID';

export function floorPidFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const pid = Number(env[FLOOR_PID_ENV]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function directKeysFromEnv(env: NodeJS.ProcessEnv): Record<string, string> | undefined {
  const raw = env[DIRECT_KEYS_ENV];
  return raw ? (JSON.parse(raw) as Record<string, string>) : undefined;
}

export async function runClient(opts: ClientRun): Promise<{ result: SweepResult; client: DaemonSide['client'] }> {
  if (!opts.cliPath) {
    const result = await runSweep({ ...opts.sweep, url: opts.url, token: opts.token, directKeys: opts.directKeys, floorPid: opts.floorPid, signal: opts.signal, progress: opts.progress });
    return { result, client: 'in-process' };
  }
  const out = await mkdtemp(join(tmpdir(), 'slotwise-bench-client-'));
  try {
    await runChild(opts.cliPath, childArgs(opts.sweep, opts.stateDir, out), opts);
    const report = JSON.parse(await readFile(join(out, 'bench.json'), 'utf8')) as BenchReport;
    return { result: report.sweep, client: 'separate' };
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

function childArgs(s: SweepOptions, stateDir: string, out: string): string[] {
  const args = ['bench', '--attach', '--state-dir', stateDir, '--model', s.model, '--concurrency', s.concurrency.join(',')];
  args.push('--requests', String(s.requests), '--mix', s.mix.map((m) => `${m.maxTokens}:${m.weight}`).join(','), '--out', out);
  if (s.perClient) args.push('--per-client', String(s.perClient));
  if (s.warmUp !== undefined) args.push('--warm-up', String(s.warmUp));
  if (s.direct) args.push('--direct');
  return args;
}

function runChild(cliPath: string, args: string[], opts: ClientRun): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env: { ...opts.env, [PROGRESS_ENV]: 'lines', ...(opts.directKeys ? { [DIRECT_KEYS_ENV]: JSON.stringify(opts.directKeys) } : {}), ...(opts.sweep.floor ? { [FLOOR_ENV]: opts.sweep.floor } : {}), ...(opts.floorPid ? { [FLOOR_PID_ENV]: String(opts.floorPid) } : {}) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let lastError = '';
    let pending = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      pending += text;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith('~ ')) opts.progress?.update(line.slice(2));
        else if (line.startsWith('slotwise: ')) lastError = line.slice('slotwise: '.length);
        else if (line) opts.progress?.line(line);
      }
    });
    const onAbort = (): void => void child.kill('SIGTERM');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => reject(new SlotwiseError('SW_ERR_INTERNAL', `bench: could not start the load client: ${err.message}`, { cause: err })));
    child.on('close', (code, signal) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (opts.signal?.aborted) reject(opts.signal.reason);
      else if (code === 0) resolve();
      else reject(new SlotwiseError('SW_ERR_INTERNAL', lastError || `bench: load client ${signal ? `killed by ${signal}` : `exited with code ${code}`}`));
    });
  });
}
