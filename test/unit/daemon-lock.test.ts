// One daemon per state dir: the lock is taken once, names its holder to a second taker, and frees on release.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { lockStateDir } from '../../daemon/daemon-lock';
import { rejection } from '../helpers/rejection';

describe('state dir lock', () => {
  it('a second taker gets SW_ERR_DAEMON_RUNNING naming the holder; release frees it', async () => {
    const root = mkdtempSync(`${tmpdir()}/slotwise-lock-`);
    const first = await lockStateDir(root);
    const starting = await rejection(lockStateDir(root));
    expect(starting).toMatchObject({ code: 'SW_ERR_DAEMON_RUNNING' });
    expect(starting.message).toBe(`a daemon already runs for this state dir (pid ${process.pid}, still starting) — use it, or \`slotwise stop\` first`);
    first.setPort(4242);
    expect((await rejection(lockStateDir(root))).message).toContain(`(pid ${process.pid}, port 4242)`);
    first.release();
    await new Promise((r) => setTimeout(r, 20));
    const again = await lockStateDir(root);
    again.release();
  });

  it('different state dirs do not share a lock', async () => {
    const a = await lockStateDir(mkdtempSync(`${tmpdir()}/slotwise-lock-`));
    const b = await lockStateDir(mkdtempSync(`${tmpdir()}/slotwise-lock-`));
    a.release();
    b.release();
  });
});
