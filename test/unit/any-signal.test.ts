import { describe, expect, it } from 'vitest';
import { anySignal } from '../../daemon/api/any-signal';

describe('anySignal', () => {
  it('aborts with the reason of the first source that aborts', () => {
    const a = new AbortController();
    const b = new AbortController();
    const s = anySignal([a.signal, b.signal]);
    expect(s.aborted).toBe(false);
    b.abort('second');
    a.abort('first');
    expect(s.aborted).toBe(true);
    expect(s.reason).toBe('second');
  });
  it('is aborted at once when a source already is', () => {
    const a = new AbortController();
    a.abort('gone');
    expect(anySignal([new AbortController().signal, a.signal]).reason).toBe('gone');
  });
});
