// `npm start` runs `slotwise demo`: the same command, non-interactive, with its burst and summary.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, isAlive, recordedPids, tempDir } from '../helpers/daemon';

const run = promisify(execFile);

describe('slotwise demo', () => {
  it('brings up the tiny model with 4 slots, fires a burst larger than the slots, summarizes, and cleans up', async () => {
    const stateDir = `${tempDir('demo')}/state`;
    const { stdout, stderr } = await run(process.execPath, [CLI, 'demo', '--state-dir', stateDir, '--burst', '10', '--max-tokens', '48', '--exit-after-burst'], {
      timeout: 120_000,
    });
    expect(stderr).not.toMatch(/at .*\.js:\d+/); // no stack traces
    expect(stdout).toMatch(/tiny#1 ready 0\/4/); // 4 slots up
    expect(stdout).toMatch(/queue [1-9]/); // a queue formed: 10 prompts on 4 slots
    expect(stdout).toMatch(/Burst done: 10 of 10 prompts · 480 tokens in [\d.]+ s = \d+ tok\/s · queue wait mean [\d.]+ s, p95 [\d.]+ s/);
    // The llama-server it ran is gone: its log records the pid and its exit, and no pid file is left.
    const log = readFileSync(join(stateDir, 'logs', 'tiny_1.log'), 'utf8');
    const pid = Number(/slotwise: process (\d+) exited/.exec(log)?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(isAlive(pid)).toBe(false);
    expect(recordedPids(stateDir)).toEqual([]);
  }, 150_000);
});
