// The word-at-a-time mask the ws library uses in the bundles (platform/ws-mask.ts): byte for byte what
// RFC 6455's byte loop gives, at every alignment and length, and in place.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mask, unmask } from '../../platform/ws-mask';

function byteLoop(data: Uint8Array, key: Uint8Array): Buffer {
  const out = Buffer.from(data);
  for (let i = 0; i < out.length; i++) out[i]! ^= key[i & 3]!;
  return out;
}

describe('ws-mask', () => {
  it('unmasks like the byte loop at every alignment and length, in place', () => {
    const key = randomBytes(4);
    const backing = randomBytes(300);
    for (let offset = 0; offset < 8; offset++) {
      for (let length = 0; length < 70; length++) {
        const buf = Buffer.from(backing).subarray(offset, offset + length);
        const expected = byteLoop(buf, key);
        unmask(buf, key);
        expect(buf.equals(expected), `offset ${offset}, length ${length}`).toBe(true);
      }
    }
  });

  it('unmasks a large payload (a 5 MiB photo) like the byte loop', () => {
    const key = randomBytes(4);
    const buf = randomBytes(5 * 1024 * 1024 + 3).subarray(1);
    const expected = byteLoop(buf, key);
    unmask(buf, key);
    expect(buf.equals(expected)).toBe(true);
  });

  it('masks the first length bytes of source into output at offset, leaving the rest of output', () => {
    const key = randomBytes(4);
    for (const [offset, length] of [[0, 48], [3, 100], [6, 1001]] as const) {
      const source = randomBytes(length + 5);
      const before = Buffer.from(source);
      const output = Buffer.alloc(offset + length + 4, 0xee);
      mask(source, key, output, offset, length);
      expect(output.subarray(offset, offset + length).equals(byteLoop(source.subarray(0, length), key))).toBe(true);
      expect([...output.subarray(0, offset), ...output.subarray(offset + length)].every((b) => b === 0xee)).toBe(true);
      expect(source.equals(before)).toBe(true);
    }
  });
});
