import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it, onTestFinished } from 'vitest';
import { signalGroup, terminate } from '../../platform/process-group';
import { isAlive } from '../../platform/procfs';

interface Group {
  leader: ChildProcess;
  /** The leader's own `sleep`, in the same group: it must die with the leader. */
  grandchild: number;
  exited: Promise<unknown>;
}

/** A real process group: `sh` leading it, with a background `sleep` it forked. `script` runs before that. */
async function startGroup(script = '', detached = true): Promise<Group> {
  const leader = spawn('sh', ['-c', `${script} sleep 30 & echo $!; wait`], { detached, stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = once(leader, 'exit');
  onTestFinished(() => {
    for (const pid of [leader.pid!, grandchild]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone: the test did its job
      }
    }
  });
  let grandchild = 0;
  const [line] = (await once(leader.stdout!, 'data')) as [Buffer];
  grandchild = Number(line.toString().trim());
  expect(isAlive(grandchild)).toBe(true);
  return { leader, grandchild, exited };
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return !isAlive(pid);
}

describe('signalGroup', () => {
  it('reaches the whole group, then reports it gone', async () => {
    const g = await startGroup();
    expect(signalGroup(g.leader.pid!, 'SIGTERM')).toBe('sent');
    await g.exited;
    expect(await gone(g.grandchild)).toBe(true);
    // Until init reaps the orphaned sleep, its zombie still belongs to the group.
    let result = signalGroup(g.leader.pid!, 'SIGTERM');
    for (let i = 0; i < 100 && result === 'sent'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      result = signalGroup(g.leader.pid!, 'SIGTERM');
    }
    expect(result).toBe('gone');
  });

  it.each([0, 1, -5, 1.5, Number.NaN])('returns an error for pid %s instead of signalling our own group or everyone', (pid) => {
    const result = signalGroup(pid, 'SIGTERM');
    expect(result).toBeInstanceOf(Error);
    expect((result as Error).message).toBe(`SIGTERM to process group ${pid} refused: not a child's pid`);
  });
});

describe('terminate', () => {
  it('stops a group that obeys SIGTERM without SIGKILL', async () => {
    const g = await startGroup();
    const errors: Error[] = [];
    let killed = false;
    const t0 = Date.now();
    await terminate({ pid: g.leader.pid!, exited: g.exited }, { graceMs: 5000, onError: (e) => errors.push(e), onKill: () => (killed = true) });
    expect(Date.now() - t0).toBeLessThan(4000);
    expect(killed).toBe(false);
    expect(g.leader.signalCode).toBe('SIGTERM');
    expect(await gone(g.grandchild)).toBe(true);
    expect(errors).toEqual([]);
  });

  it('sends SIGKILL to a group that ignores SIGTERM once the grace ran out, and resolves after it exited', async () => {
    const g = await startGroup("trap '' TERM;");
    let killedAfterMs: number | undefined;
    const t0 = Date.now();
    await terminate({ pid: g.leader.pid!, exited: g.exited }, { graceMs: 300, onError: (e) => expect.fail(e.message), onKill: () => (killedAfterMs = Date.now() - t0) });
    expect(killedAfterMs).toBeGreaterThanOrEqual(290);
    expect(g.leader.signalCode).toBe('SIGKILL');
    expect(await gone(g.grandchild)).toBe(true);
  });

  it('polls a pid it has no exit event for (a pid from a file)', async () => {
    const g = await startGroup("trap '' TERM;");
    let killed = false;
    await terminate({ pid: g.leader.pid! }, { graceMs: 300, onError: (e) => expect.fail(e.message), onKill: () => (killed = true) });
    expect(killed).toBe(true);
    expect(isAlive(g.leader.pid!)).toBe(false);
    expect(await gone(g.grandchild)).toBe(true);
  });

  it('signals the process itself when it leads no group, with orProcess', async () => {
    const g = await startGroup('', false);
    expect(signalGroup(g.leader.pid!, 'SIGTERM')).toBe('gone'); // no group has its id
    await terminate({ pid: g.leader.pid!, exited: g.exited }, { graceMs: 5000, orProcess: true, onError: (e) => expect.fail(e.message) });
    expect(g.leader.signalCode).toBe('SIGTERM');
  });

  it('hands a refused pid to onError and returns at once', async () => {
    const errors: Error[] = [];
    await terminate({ pid: 0 }, { graceMs: 5000, onError: (e) => errors.push(e) });
    expect(errors.map((e) => e.message)).toEqual(["stopping process group 0 refused: not a child's pid"]);
  });
});
