// An exclusive lock between processes (and callers in one process) writing the build cache.
//
// Invariants:
// - The lock file appears complete or not at all: the holder record is written to a private file
//   and hard-linked to the lock path (link fails with EEXIST when held), so a reader never sees a
//   half-written record.
// - A lock whose holder pid is dead on this host is stale and may be broken. Breaking takes a
//   second, short-lived `.break` file and re-reads the record first, so two waiters that both saw
//   the same stale lock cannot also delete the lock a third process took in between.
// - Release removes the lock only while it still holds our token.
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SlotwiseError } from '../shared/errors';
import { isAlive } from '../platform/procfs';
import { errnoCode } from '../platform/errno';

export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the holder took the lock. */
  startedAt: string;
  /** Distinguishes holders in one process. */
  token: string;
}

export interface WithLockOptions {
  signal?: AbortSignal;
  /** Called once for each holder we start waiting on. */
  onWait?: (holder: LockHolder) => void;
  /** Poll interval while another holder is alive; default 250 ms. */
  pollMs?: number;
}

/** A `.break` file older than this belongs to a breaker that died mid-break (it holds it for microseconds). */
const BREAK_STALE_MS = 10_000;

/** Runs `fn` while holding the lock at `lockPath`, waiting for (or taking over from a dead) holder. */
export async function withLock<T>(lockPath: string, fn: () => Promise<T>, opts: WithLockOptions = {}): Promise<T> {
  const holder = await acquire(lockPath, opts);
  try {
    return await fn();
  } finally {
    await release(lockPath, holder.token);
  }
}

/** The current holder, or undefined when the lock is free or unreadable. */
export async function readLockHolder(lockPath: string): Promise<LockHolder | undefined> {
  return parseHolder(await readRaw(lockPath));
}

async function acquire(lockPath: string, opts: WithLockOptions): Promise<LockHolder> {
  await mkdir(dirname(lockPath), { recursive: true });
  const mine: LockHolder = {
    pid: process.pid,
    host: hostname(),
    startedAt: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
  };
  const draft = `${lockPath}.${mine.token}`;
  await writeFile(draft, `${JSON.stringify(mine)}\n`);
  let waitingOn = '';
  try {
    for (;;) {
      throwIfAborted(opts.signal);
      try {
        await link(draft, lockPath);
        return mine;
      } catch (err) {
        // EEXIST: someone holds it; find out who below.
        if (errnoCode(err) !== 'EEXIST') throw err;
      }
      const raw = await readRaw(lockPath);
      if (raw === undefined) continue; // released between our link and read: try again at once
      const holder = parseHolder(raw);
      if (holder ? isStale(holder) : await isOldFile(lockPath)) {
        await breakStale(lockPath, raw);
        continue;
      }
      if (holder && holder.token !== waitingOn) {
        waitingOn = holder.token;
        opts.onWait?.(holder);
      }
      await pause(opts.pollMs ?? 250, opts.signal);
    }
  } finally {
    await unlinkQuietly(draft);
  }
}

async function release(lockPath: string, token: string): Promise<void> {
  const holder = await readLockHolder(lockPath);
  // Someone broke our lock (only possible when our pid looked dead to them): leave theirs alone.
  if (holder?.token === token) await unlinkQuietly(lockPath);
}

function isStale(holder: LockHolder): boolean {
  // A pid on another host (a shared network cache dir) cannot be checked: wait for it instead.
  return holder.host === hostname() && !isAlive(holder.pid);
}

async function breakStale(lockPath: string, staleRaw: string): Promise<void> {
  const breaker = `${lockPath}.break`;
  let handle;
  try {
    handle = await open(breaker, 'wx');
  } catch (err) {
    // EEXIST: another waiter is breaking it right now; retry after it is done.
    if (errnoCode(err) !== 'EEXIST') throw err;
    if (await isOldFile(breaker)) await unlinkQuietly(breaker);
    await sleep(20);
    return;
  }
  try {
    await handle.close();
    // Only the record we judged stale may go; a lock taken since then is live.
    if ((await readRaw(lockPath)) === staleRaw) await unlinkQuietly(lockPath);
  } finally {
    await unlinkQuietly(breaker);
  }
}

function parseHolder(raw: string | undefined): LockHolder | undefined {
  if (raw === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(raw);
    if (!value || typeof value !== 'object') return undefined;
    const v = value as Record<string, unknown>;
    if (typeof v.pid !== 'number' || typeof v.host !== 'string' || typeof v.token !== 'string') return undefined;
    return { pid: v.pid, host: v.host, token: v.token, startedAt: typeof v.startedAt === 'string' ? v.startedAt : '' };
  } catch (err) {
    // Not JSON: a lock file written by hand or by something else; the caller ages it out.
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}

async function readRaw(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    // ENOENT: the lock is free.
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function isOldFile(path: string): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > BREAK_STALE_MS;
  } catch (err) {
    // Gone already: nothing old to remove.
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

async function unlinkQuietly(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    // Already removed (by a breaker or a concurrent release): the goal is met.
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}

async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (err) {
    // The sleep rejects only on abort: report it as our coded cancellation.
    throwIfAborted(signal);
    throw err;
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new SlotwiseError('SW_ERR_CANCELLED', 'setup cancelled while waiting for the cache lock');
}
