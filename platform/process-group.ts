// Stopping a child together with everything it forked. Children that may fork (llama-server, cmake's make and
// compilers, nvidia-smi) are spawned detached, so each leads its own process group and `kill(-pid)` reaches all.
// One error policy for every caller: ESRCH means the group is already gone, which is what a stop wants; any other
// failure (EPERM: the group id now belongs to another user's process) goes back to the caller to log. Nothing throws,
// because signals are also sent from timers and exit hooks.
import { errnoCode } from './errno';
import { isAlive } from './procfs';

/** What a signal did: delivered, nothing left to signal (ESRCH), or another failure, for the caller to log. */
export type SignalResult = 'sent' | 'gone' | Error;

/** A process that leads its own group. `exited` settles when it has exited (our child's exit); without it the pid is polled. */
export interface GroupLeader {
  pid: number;
  exited?: PromiseLike<unknown>;
}

export interface TerminateOptions {
  /** Time between SIGTERM and SIGKILL, in ms. */
  graceMs: number;
  /** Receives each failure other than "already gone", as one line; terminate itself never throws. */
  onError: (err: Error) => void;
  /** Called when the grace ran out, just before SIGKILL (to log that it had to be forced). */
  onKill?: () => void;
  /** When no group has this id, signal the process itself (pid files of daemons that did not start a group). */
  orProcess?: boolean;
}

/** Sends `signal` to the process group led by `pid`. Never throws. */
export function signalGroup(pid: number, signal: NodeJS.Signals): SignalResult {
  return send(pid, true, signal);
}

function send(pid: number, group: boolean, signal: NodeJS.Signals): SignalResult {
  const what = `${signal} to process${group ? ' group' : ''} ${pid}`;
  if (!isChildPid(pid)) return new Error(`${what} refused: not a child's pid`);
  try {
    process.kill(group ? -pid : pid, signal);
    return 'sent';
  } catch (err) {
    if (errnoCode(err) === 'ESRCH') return 'gone';
    return new Error(`${what} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** kill(0) is our own group and kill(-1) every process we may signal: a bad pid (from a torn file) must not get there. */
function isChildPid(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid > 1;
}

/** SIGTERM to the group, SIGKILL once `graceMs` passed without the leader exiting; resolves once the leader is gone. */
export async function terminate(leader: GroupLeader, opts: TerminateOptions): Promise<void> {
  if (!isChildPid(leader.pid)) return opts.onError(new Error(`stopping process group ${leader.pid} refused: not a child's pid`));
  const signal = (sig: NodeJS.Signals): void => {
    let result = signalGroup(leader.pid, sig);
    if (result === 'gone' && opts.orProcess) result = send(leader.pid, false, sig);
    if (result instanceof Error) opts.onError(result);
  };
  signal('SIGTERM');
  if (await exitedWithin(leader, opts.graceMs)) return;
  opts.onKill?.();
  signal('SIGKILL');
  await exitedWithin(leader, Infinity);
}

/** True once the leader exited, false when `ms` passed first. */
async function exitedWithin(leader: GroupLeader, ms: number): Promise<boolean> {
  if (leader.exited) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      if (Number.isFinite(ms)) timer = setTimeout(() => resolve(false), ms);
    });
    try {
      // A rejected exit promise still means the process ended.
      return await Promise.race([Promise.resolve(leader.exited).then(() => true as const, () => true as const), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
  // Not our child (a pid from a file): poll. isAlive treats an unreaped zombie as gone.
  const deadline = Date.now() + ms;
  while (isAlive(leader.pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}
