// State dir permissions: 0700 dirs, 0600 files, no symlinks; modes of our own files fixed, the rest refused.
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureStateDir, ensureToken } from '../../shared/state-dir';
import { inspectStateDir, secureStateDir } from '../../shared/state-dir-perms';
import { rejection } from '../helpers/rejection';

const mode = (p: string): number => statSync(p).mode & 0o777;

async function loose(): Promise<Awaited<ReturnType<typeof ensureStateDir>>> {
  const dir = await ensureStateDir(join(mkdtempSync(join(tmpdir(), 'slotwise-perms-')), 'state'));
  chmodSync(dir.root, 0o755);
  writeFileSync(dir.token, `${'a'.repeat(64)}\n`, { mode: 0o644 });
  chmodSync(dir.token, 0o644);
  writeFileSync(join(dir.logs, 'daemon.log'), 'x\n');
  chmodSync(join(dir.logs, 'daemon.log'), 0o644);
  return dir;
}

describe('state dir permissions', () => {
  it('inspect reports a 0755 dir, a 0644 token and a 0644 log with their fixes', async () => {
    const dir = await loose();
    const problems = await inspectStateDir(dir);
    expect(problems.map((p) => [p.path, p.problem])).toEqual([
      [dir.root, 'mode 0755, should be 0700'],
      [dir.token, 'mode 0644, should be 0600'],
      [join(dir.logs, 'daemon.log'), 'mode 0644, should be 0600'],
    ]);
    expect(problems[1]!.fix).toBe(`chmod 600 ${dir.token} (the daemon does this at start)`);
  });

  it('secure fixes the modes of our own files and says what it changed', async () => {
    const dir = await loose();
    const fixed = await secureStateDir(dir);
    expect(fixed).toHaveLength(3);
    expect(fixed[0]).toBe(`${dir.root}: mode 0755, should be 0700; set to 0700`);
    expect(mode(dir.root)).toBe(0o700);
    expect(mode(dir.token)).toBe(0o600);
    expect(mode(join(dir.logs, 'daemon.log'))).toBe(0o600);
    expect(await inspectStateDir(dir)).toEqual([]);
  });

  it('refuses a symlinked token (it would be read, and written through)', async () => {
    const dir = await ensureStateDir(join(mkdtempSync(join(tmpdir(), 'slotwise-perms-')), 'state'));
    const elsewhere = join(dir.root, '..', 'elsewhere');
    writeFileSync(elsewhere, `${'b'.repeat(64)}\n`, { mode: 0o600 });
    symlinkSync(elsewhere, dir.token);
    expect((await inspectStateDir(dir))[0]).toMatchObject({ path: dir.token, problem: 'is a symlink', fixable: false });
    const err = await rejection(secureStateDir(dir));
    expect(err).toMatchObject({ code: 'SW_ERR_STATE_DIR_UNSAFE', message: `${dir.token}: is a symlink — remove it (rm ${dir.token}); Slotwise writes its own` });
  });

  it("refuses a symlinked sockets dir (llama-servers' sockets would be made where it points), and leaves the sockets in it alone", async () => {
    const dir = await ensureStateDir(join(mkdtempSync(join(tmpdir(), 'slotwise-perms-')), 'state'));
    expect(mode(dir.sockets)).toBe(0o700);
    writeFileSync(join(dir.sockets, 'm_1.sock'), ''); // not a regular file's rules: no 0600 demanded of a socket
    chmodSync(join(dir.sockets, 'm_1.sock'), 0o755);
    expect(await inspectStateDir(dir)).toEqual([]);
    rmSync(dir.sockets, { recursive: true });
    const elsewhere = mkdtempSync(join(tmpdir(), 'slotwise-elsewhere-'));
    symlinkSync(elsewhere, dir.sockets);
    const err = await rejection(secureStateDir(dir));
    expect(err).toMatchObject({ code: 'SW_ERR_STATE_DIR_UNSAFE', message: expect.stringContaining(`${dir.sockets}: is a symlink`) });
  });

  it.skipIf(process.getuid?.() !== 0)('refuses a file owned by another user (needs root to chown it)', async () => {
    const dir = await ensureStateDir(join(mkdtempSync(join(tmpdir(), 'slotwise-perms-')), 'state'));
    writeFileSync(dir.token, `${'c'.repeat(64)}\n`, { mode: 0o600 });
    chownSync(dir.token, 65534, 65534);
    const err = await rejection(secureStateDir(dir));
    expect(err).toMatchObject({ code: 'SW_ERR_STATE_DIR_UNSAFE' });
    expect(err.message).toBe(`${dir.token}: is owned by uid 65534, not you (uid 0) — remove it or chown it to yourself, or use another --state-dir`);
  });

  it('a fresh state dir, token and daemon files are private from the start', async () => {
    const dir = await ensureStateDir(join(mkdtempSync(join(tmpdir(), 'slotwise-perms-')), 'state'));
    await ensureToken(dir);
    expect(mode(dir.token)).toBe(0o600);
    expect(mode(dir.pids)).toBe(0o700);
    expect(await inspectStateDir(dir)).toEqual([]);
  });
});
