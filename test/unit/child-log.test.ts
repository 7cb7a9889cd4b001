// The per-instance log: complete lines to the ring and the file, partial lines held back, rotation by size.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChildLog } from '../../daemon/llama/child-log';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function file(): string {
  const d = mkdtempSync(join(tmpdir(), 'slotwise-childlog-'));
  dirs.push(d);
  return join(d, 'x.log');
}

describe('ChildLog', () => {
  it('joins lines split across chunks and keeps a partial line until it ends', () => {
    const f = file();
    const log = new ChildLog({ file: f });
    const seen: string[] = [];
    log.onLine((l) => seen.push(l));
    log.write('alpha\nbe');
    expect(readFileSync(f, 'utf8')).toBe('alpha\n');
    log.write('ta\r\ngamma\n');
    log.line('--- slotwise: marker');
    log.write('tail without newline');
    expect(readFileSync(f, 'utf8')).toBe('alpha\nbeta\ngamma\n--- slotwise: marker\n');
    log.flush();
    log.close();
    expect(readFileSync(f, 'utf8')).toBe('alpha\nbeta\ngamma\n--- slotwise: marker\ntail without newline\n');
    expect(seen).toEqual(['alpha', 'beta', 'gamma', '--- slotwise: marker', 'tail without newline']);
    expect(log.tail(2)).toEqual(['--- slotwise: marker', 'tail without newline']);
  });

  it('rotates by size, keeping `keep` generations, and appends again after close', () => {
    const f = file();
    const log = new ChildLog({ file: f, maxBytes: 20, keep: 2 });
    for (let i = 0; i < 8; i++) log.line(`line ${i} ........`); // 18 bytes each: one line per file
    expect(readFileSync(f, 'utf8')).toBe('line 7 ........\n');
    expect(readFileSync(`${f}.1`, 'utf8')).toContain('line 6');
    expect(readFileSync(`${f}.2`, 'utf8')).toContain('line 5');
    expect(existsSync(`${f}.3`)).toBe(false);
    log.close();
    const again = new ChildLog({ file: f, maxBytes: 1000 });
    again.line('after restart');
    again.close();
    expect(readFileSync(f, 'utf8')).toBe('line 7 ........\nafter restart\n');
  });

  it('keeps only ringLines lines in memory', () => {
    const log = new ChildLog({ ringLines: 3 });
    log.write('1\n2\n3\n4\n5\n');
    expect(log.tail(10)).toEqual(['3', '4', '5']);
  });
});
