import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pacer } from '../../extension/core/pacer';

/** An async write that finishes when the test says so, as VS Code's applyEdit round trip does. */
function slowWrites() {
  const written: string[] = [];
  const finish: (() => void)[] = [];
  const write = (text: string) =>
    new Promise<void>((resolve) => {
      written.push(text);
      finish.push(resolve);
    });
  return { written, write, finishNext: async () => (finish.shift()?.(), await vi.advanceTimersByTimeAsync(0)) };
}

describe('pacer', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('keeps one write in flight and joins what arrives meanwhile into the next, a gap after the last began', async () => {
    const w = slowWrites();
    const p = pacer(w.write, () => 100);
    p.append('a');
    expect(w.written).toEqual(['a']); // the first write goes at once
    p.append('b');
    p.append('c');
    await vi.advanceTimersByTimeAsync(150);
    expect(w.written).toEqual(['a']); // 'a' is still in flight: nothing else starts
    await w.finishNext();
    expect(w.written).toEqual(['a', 'bc']); // its gap had passed: the joined text goes as it ends
    p.append('d');
    await vi.advanceTimersByTimeAsync(0);
    await w.finishNext();
    await vi.advanceTimersByTimeAsync(99);
    expect(w.written).toEqual(['a', 'bc']); // 'bc' began 99 ms ago
    await vi.advanceTimersByTimeAsync(1);
    expect(w.written).toEqual(['a', 'bc', 'd']);
  });

  it('waits the gap that the last written text asks for', async () => {
    const written: string[] = [];
    const gaps: string[] = [];
    const p = pacer(
      (t) => void written.push(t),
      (t) => (gaps.push(t), t.length * 10),
    );
    p.append('xxxxx'); // 50 ms to the next
    p.append('y');
    await vi.advanceTimersByTimeAsync(49);
    expect(written).toEqual(['xxxxx']);
    await vi.advanceTimersByTimeAsync(1);
    expect(written).toEqual(['xxxxx', 'y']);
    p.append('z'); // 'y' asked for 10 ms
    await vi.advanceTimersByTimeAsync(10);
    expect(written).toEqual(['xxxxx', 'y', 'z']);
    expect(gaps).toEqual(['xxxxx', 'y', 'z']);
  });

  it('resolves idle() only once every appended text was written', async () => {
    const w = slowWrites();
    const p = pacer(w.write, () => 100);
    await expect(p.idle()).resolves.toBeUndefined(); // nothing held
    p.append('a');
    p.append('b');
    let idle = false;
    void p.idle().then(() => (idle = true));
    await w.finishNext(); // 'a' done, 'b' waits for its gap
    expect(idle).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(w.written).toEqual(['a', 'b']);
    expect(idle).toBe(false); // 'b' is in flight
    await w.finishNext();
    expect(idle).toBe(true);
  });

  it('passes a failed write to onError and goes on with the next', async () => {
    const errors: unknown[] = [];
    const written: string[] = [];
    const p = pacer(
      async (t) => {
        written.push(t);
        if (t === 'bad') throw new Error('edit refused');
      },
      () => 10,
      (e) => errors.push(e),
    );
    p.append('bad');
    p.append('good');
    await vi.advanceTimersByTimeAsync(10);
    expect(written).toEqual(['bad', 'good']);
    expect(errors.map((e) => (e as Error).message)).toEqual(['edit refused']);
  });

  it('writes what it holds at once on dispose, and nothing after', async () => {
    const written: string[] = [];
    const p = pacer((t) => void written.push(t), () => 1000);
    p.append('a');
    p.append('b');
    p.dispose();
    expect(written).toEqual(['a', 'b']);
    p.append('late');
    await vi.advanceTimersByTimeAsync(2000);
    expect(written).toEqual(['a', 'b']);
    await expect(p.idle()).resolves.toBeUndefined();
  });
});
