// The per-instance log: complete lines to the ring and the file, partial lines held back, rotation by size.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ChildLog } from '../../daemon/runtime/child-log';
import { isLogNoise } from '../../daemon/runtime/instance';

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

  it('leaves out the lines `drop` names, from the ring, the file and the listeners', () => {
    const f = file();
    const log = new ChildLog({ file: f, drop: (l) => l.startsWith('noise') });
    const seen: string[] = [];
    log.onLine((l) => seen.push(l));
    log.write('keep 1\nnoise a\nkeep 2\nnoise b\n');
    log.close();
    expect(readFileSync(f, 'utf8')).toBe('keep 1\nkeep 2\n');
    expect(log.tail(10)).toEqual(['keep 1', 'keep 2']);
    expect(seen).toEqual(['keep 1', 'keep 2']);
  });
});

// Lines recorded from llama-server b1-de3ff81 at -lv 4 (tiny model, 300 requests).
describe('isLogNoise', () => {
  it.each([
    '0.02.140.635 I srv          load:    - prompt with length      39, lcp =       3, f_keep = 0.077, f_sim = 0.375',
    '0.02.140.638 I srv        update:    - prompt 0x55c1b2ee6180:      39 tokens, checkpoints:  0,     0.020 MiB',
    '1.13.247.337 I srv  update_slots: all slots are idle',
  ])('drops %s', (line) => expect(isLogNoise(line)).toBe(true));
  it.each([
    '0.00.412.101 I load_tensors: offloaded 0/3 layers to GPU',
    '0.02.140.640 I slot launch_slot_: id  3 | task 1210 | processing task, is_child = 0',
    '1.09.142.634 I srv  server_strea: conv_id= (empty=1)',
    '1.09.149.680 I slot      release: id  2 | task 357 | stop processing: n_tokens = 12, truncated = 0',
    'error: failed to load model',
  ])('keeps %s', (line) => expect(isLogNoise(line)).toBe(false));
});

