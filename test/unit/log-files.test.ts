// `slotwise logs` with no daemon running reads the llama-server log files the daemon left in the
// state dir: one instance, a model's instances, or all; rotations only while more lines are wanted.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { tailLogFiles } from '../../cli/log-files';
import { main } from '../../cli/main';
import { stateDirPaths } from '../../shared/state-dir';

function stateDir(files: Record<string, string>): string {
  const root = join(mkdtempSync(join(tmpdir(), 'slotwise-logs-')), 'state');
  mkdirSync(join(root, 'logs'), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(root, 'logs', name), text);
  return root;
}

const numbered = (prefix: string, from: number, to: number): string => Array.from({ length: to - from + 1 }, (_, i) => `${prefix} ${from + i}\n`).join('');

describe('tailLogFiles', () => {
  const root = stateDir({
    'daemon.log': 'daemon line\n',
    'daemon.out': 'daemon out\n',
    'coder_1.log': numbered('c1', 4, 6),
    'coder_1.log.1': numbered('c1', 1, 3),
    'coder_2.log': numbered('c2', 1, 2),
    'coder-big_1.log': 'other model\n',
    'chat_1.log': 'chat line\n',
  });
  const dir = stateDirPaths(root);

  it('one instance: its newest lines, from the rotation only while more are wanted', async () => {
    expect(await tailLogFiles(dir, 'coder#1', 2)).toEqual({ lines: ['c1 5', 'c1 6'], files: [join(dir.logs, 'coder_1.log')] });
    const five = await tailLogFiles(dir, 'coder#1', 5);
    expect(five.lines).toEqual(['c1 2', 'c1 3', 'c1 4', 'c1 5', 'c1 6']);
    expect(five.files).toEqual([join(dir.logs, 'coder_1.log.1'), join(dir.logs, 'coder_1.log')]);
  });

  it("a model: its instances' files only (not a model whose name starts the same), each line named by instance", async () => {
    const r = await tailLogFiles(dir, 'coder', 100);
    expect(r.lines).toEqual(['[coder#1] c1 1', '[coder#1] c1 2', '[coder#1] c1 3', '[coder#1] c1 4', '[coder#1] c1 5', '[coder#1] c1 6', '[coder#2] c2 1', '[coder#2] c2 2']);
  });

  it("everything but the daemon's own files; nothing for an unknown name or a missing logs dir", async () => {
    const all = await tailLogFiles(dir, undefined, 100);
    expect(all.lines).toContain('[chat#1] chat line');
    expect(all.lines).toContain('[coder-big#1] other model');
    expect(all.lines.join('\n')).not.toContain('daemon');
    expect(await tailLogFiles(dir, 'nope', 10)).toEqual({ lines: [], files: [] });
    expect(await tailLogFiles(stateDirPaths(join(tmpdir(), 'slotwise-no-such-dir')), undefined, 10)).toEqual({ lines: [], files: [] });
  });
});

describe('slotwise logs with no daemon running', () => {
  afterEach(() => vi.restoreAllMocks());

  async function logs(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((c) => ((stdout += String(c)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((c) => ((stderr += String(c)), true));
    const code = await main(['logs', ...args]);
    vi.restoreAllMocks();
    return { code, stdout, stderr };
  }

  it('prints the file\'s last lines and says on stderr where they came from', async () => {
    const root = stateDir({ 'm_1.log': numbered('line', 1, 5) });
    const r = await logs('m', '-n', '3', '--state-dir', root);
    expect(r).toEqual({ code: 0, stdout: 'line 3\nline 4\nline 5\n', stderr: `no daemon running: from ${join(root, 'logs', 'm_1.log')}\n` });
  });

  it('with no file for the name, says so in one line and exits 1', async () => {
    const root = stateDir({ 'm_1.log': 'x\n' });
    const r = await logs('other', '--state-dir', root);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`no daemon running, and no llama-server log for other in ${join(root, 'logs')} — start one with \`slotwise start\`\n`);
  });
});
