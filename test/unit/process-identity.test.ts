// Process identity from /proc: a recorded pid counts as ours only with its start time and our nonce.
import { spawn } from 'node:child_process';
import { describe, expect, it, onTestFinished } from 'vitest';
import { NONCE_ENV, isVerifiedProcess, processEnv, processStartTime } from '../../platform/process-identity';

function sleeper(env: NodeJS.ProcessEnv = {}): number {
  const child = spawn('sleep', ['1000'], { env: { ...process.env, ...env }, stdio: 'ignore' });
  onTestFinished(() => void child.kill('SIGKILL'));
  return child.pid!;
}

describe('process identity (/proc)', () => {
  it('reads start time (field 22) and environment of a process', async () => {
    const pid = sleeper({ [NONCE_ENV]: 'abc' });
    await new Promise((r) => setTimeout(r, 100)); // let it exec so environ is sleep's own
    const t = processStartTime(pid);
    expect(Number.isInteger(t)).toBe(true);
    expect(t!).toBeGreaterThanOrEqual(processStartTime(process.pid)!);
    expect(processEnv(pid, NONCE_ENV)).toBe('abc');
    expect(processStartTime(2 ** 22 + 1)).toBeUndefined();
  });

  it('verifies only pid + start time + nonce together', async () => {
    const nonce = 'f'.repeat(32);
    const pid = sleeper({ [NONCE_ENV]: nonce });
    await new Promise((r) => setTimeout(r, 100));
    const startTime = processStartTime(pid)!;
    expect(isVerifiedProcess({ pid, startTime, nonce })).toBe(true);
    expect(isVerifiedProcess({ pid, startTime: startTime - 1, nonce })).toBe(false);
    expect(isVerifiedProcess({ pid, startTime, nonce: 'e'.repeat(32) })).toBe(false);
    expect(isVerifiedProcess({ pid, nonce })).toBe(false);
    expect(isVerifiedProcess({ pid, startTime })).toBe(false);
    const stranger = sleeper(); // same user, no nonce: e.g. a process that reused a recorded pid
    expect(isVerifiedProcess({ pid: stranger, startTime: processStartTime(stranger), nonce })).toBe(false);
  });
});
