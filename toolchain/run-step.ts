// Runs one long setup command (npm, tar, git, cmake) in its own process group, streams its output
// line by line to a log and a callback, and turns failure into one coded error with the log tail.
// A process group, because `cmake --build` forks make and compilers: aborting must stop all of them.
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { execa } from 'execa';
import { SlotwiseError, firstLine } from '../shared/errors';
import { signalGroup, terminate } from '../platform/process-group';

export interface RunStepOptions {
  /** What runs, for the error message: `cmake --build`, `npm pack node-llama-cpp@3.22.1`. */
  title: string;
  cwd?: string;
  /** The whole environment of the child (nothing is inherited besides it). */
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Receives every output line (stdout and stderr interleaved). */
  log?: Writable;
  /** Named in the error message when the full output is kept there. */
  logPath?: string;
  onLine?: (line: string) => void;
  /** Lines kept for the error's `detail`; default 40. */
  tailLines?: number;
}

/** Grace between SIGTERM and SIGKILL for an aborted step's process group, in ms. */
const KILL_GRACE_MS = 3000;

// Process groups still running; killed if this process exits first so no compiler outlives us.
const liveGroups = new Set<number>();
let exitHookInstalled = false;

/** Runs `file args`; resolves on exit code 0, else throws SW_ERR_BUILD_FAILED (or SW_ERR_CANCELLED on abort). */
export async function runStep(file: string, args: readonly string[], opts: RunStepOptions): Promise<void> {
  if (opts.signal?.aborted) throw cancelled(opts.title);
  installExitHook();
  opts.log?.write(`$ ${[file, ...args].join(' ')}\n`);
  const child = execa(file, args, {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: false,
    detached: true,
    stdin: 'ignore',
    all: true,
    buffer: false,
    reject: false,
  });
  const pid = child.pid;
  if (pid !== undefined) liveGroups.add(pid);
  const tail: string[] = [];
  const keep = opts.tailLines ?? 40;
  // A signal that failed for another reason than "already gone" goes into the step's log (else a process warning).
  const report = (err: Error): void => void (opts.log ? opts.log.write(`${err.message}\n`) : process.emitWarning(err.message));
  const onAbort = (): void => {
    if (pid !== undefined) void terminate({ pid, exited: child }, { graceMs: KILL_GRACE_MS, onError: report });
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const reading = (async () => {
      if (!child.all) return;
      for await (const line of createInterface({ input: child.all, crlfDelay: Infinity })) {
        opts.log?.write(`${line}\n`);
        tail.push(line);
        if (tail.length > keep) tail.shift();
        opts.onLine?.(line);
      }
    })();
    const result = await child;
    await reading;
    if (opts.signal?.aborted) throw cancelled(opts.title);
    if (!result.failed) return;
    const why =
      result.exitCode !== undefined
        ? `exit code ${result.exitCode}`
        : result.signal
          ? `killed by ${result.signal}`
          : firstLine(result.shortMessage ?? 'could not start');
    const where = opts.logPath ? `; full log: ${opts.logPath}` : '';
    throw new SlotwiseError('SW_ERR_BUILD_FAILED', `${opts.title} failed (${why})${where}`, {
      cause: result,
      detail: tail.join('\n'),
    });
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    if (pid !== undefined) {
      // The leader has exited; anything it left in its group (a compiler after make died) goes too.
      const result = signalGroup(pid, 'SIGKILL');
      if (result instanceof Error) report(result);
      liveGroups.delete(pid);
    }
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    // The process is exiting: there is no later moment to report a failure to, and 'gone' is the usual answer.
    for (const pid of liveGroups) signalGroup(pid, 'SIGKILL');
  });
}

function cancelled(title: string): SlotwiseError {
  return new SlotwiseError('SW_ERR_CANCELLED', `setup cancelled during ${title}`);
}
