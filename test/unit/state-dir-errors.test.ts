// A state dir that cannot be used (a file where it or a folder should be, no permission) is one
// SW_ERR_STATE_DIR_UNUSABLE line naming the path in the way, never an fs error as an internal error.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureStateDir, readDaemonInfo, readToken, stateDirError, stateDirPaths } from '../../shared/state-dir';
import { rejection } from '../helpers/rejection';

const temp = (): string => mkdtempSync(join(tmpdir(), 'slotwise-sd-'));

function fsError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, path });
}

describe('state dir errors', () => {
  it('a state dir that is a plain file: ensureStateDir and the readers name it, exit 2', async () => {
    const file = join(temp(), 'state');
    writeFileSync(file, '');
    // Thunks, so each promise is awaited as soon as it exists: an array of live promises lets a
    // later one reject unhandled while an earlier one is awaited.
    for (const attempt of [() => ensureStateDir(file), () => readDaemonInfo(stateDirPaths(file)), () => readToken(stateDirPaths(file))]) {
      const err = await rejection(attempt());
      expect(err.code).toBe('SW_ERR_STATE_DIR_UNUSABLE');
      expect(err.exitCode).toBe(2);
      expect(err.message).toContain(`state dir ${file} is not a directory`);
      expect(err.message).toContain('--state-dir');
      expect(err.message).not.toContain('\n');
    }
  });

  it('a file above the state dir, or in place of one of its folders, is the path named', async () => {
    const base = temp();
    writeFileSync(join(base, 'file'), '');
    const under = join(base, 'file', 'state');
    const made = await rejection(ensureStateDir(under));
    expect(made).toMatchObject({ code: 'SW_ERR_STATE_DIR_UNUSABLE' });
    expect(made.message).toContain(`state dir ${under} cannot be created: ${join(base, 'file')} is not a directory`);
    expect((await rejection(readDaemonInfo(stateDirPaths(under)))).message).toContain(`${join(base, 'file')} is not a directory`);

    const root = join(base, 'state');
    mkdirSync(root);
    writeFileSync(join(root, 'logs'), '');
    const inside = await rejection(ensureStateDir(root));
    expect(inside).toMatchObject({ code: 'SW_ERR_STATE_DIR_UNUSABLE' });
    expect(inside.message).toContain(`${join(root, 'logs')} in the state dir is not a directory`);
  });

  it('no permission on the state dir or a folder above it says which, with the errno code', async () => {
    const base = temp();
    const root = join(base, 'a', 'state');
    mkdirSync(root, { recursive: true });
    const own = await stateDirError(root, fsError('EACCES', 'mkdir', join(root, 'pids')), 'write');
    expect(own).toMatchObject({ code: 'SW_ERR_STATE_DIR_UNUSABLE', message: `state dir ${root} is not writable (EACCES) — fix its permissions or pass another --state-dir` });
    const read = await stateDirError(root, fsError('EACCES', 'open', join(root, 'daemon.json')), 'read');
    expect(read).toMatchObject({ message: expect.stringContaining(`state dir ${root} is not readable (EACCES)`) });
    // A recursive mkdir names the path it was asked for; the folder that exists on the way is the one we may not write in.
    const deeper = join(base, 'a', 'new', 'state');
    const above = await stateDirError(deeper, fsError('EACCES', 'mkdir', join(deeper, 'pids')), 'write');
    expect(above).toMatchObject({ message: expect.stringContaining(`state dir ${deeper} cannot be created: ${join(base, 'a')} is not writable (EACCES)`) });
  });

  it('other errors pass through unchanged', async () => {
    const other = fsError('EIO', 'read', '/x');
    expect(await stateDirError('/x', other, 'read')).toBe(other);
    const plain = new Error('boom');
    expect(await stateDirError('/x', plain, 'read')).toBe(plain);
  });

  it('a usable state dir still works, and a missing one still reads as no daemon', async () => {
    const root = join(temp(), 'state');
    expect(await readDaemonInfo(stateDirPaths(root))).toBeUndefined();
    const dir = await ensureStateDir(root);
    expect(await readToken(dir)).toBeUndefined();
  });
});
