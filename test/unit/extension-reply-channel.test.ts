import { describe, expect, it } from 'vitest';
import type { TrackedJob } from '../../extension/core/job-tracker';
import { LINE_CHARS_PER_MS, pacedChannel, ReplyChannel } from '../../extension/core/reply-channel';

const job = (jobId: string, over: Partial<TrackedJob> = {}): TrackedJob => ({
  jobId, model: 'coder', title: `ask ${jobId}`, state: 'running', createdAt: 0, text: '', lastSeq: 0, seq: 0, followed: true, ...over,
});

function channel() {
  const out: string[] = [];
  let shown = 0;
  const done: string[] = [];
  const replies = new ReplyChannel({ append: (t) => out.push(t), show: () => void shown++ }, (j) => done.push(j.jobId), () => 2_000);
  return { replies, text: () => out.join(''), done, shown: () => shown };
}

describe('ReplyChannel (the "Slotwise Prompts" output channel)', () => {
  it('streams the first reply live and holds a second until the first ends, in order', () => {
    const c = channel();
    const a = c.replies.add(job('a', { text: 'Hel' }));
    const b = c.replies.add(job('b'));
    a.append('lo');
    b.append('second ');
    b.append('reply');
    expect(c.text()).toBe('\n## ask a (coder · a)\n\nHello');
    b.finish(job('b', { state: 'completed', lastSeq: 2 }));
    expect(c.done).toEqual([]); // b waits for a, finished or not
    a.finish(job('a', { state: 'completed', lastSeq: 2 }));
    expect(c.text()).toBe('\n## ask a (coder · a)\n\nHello\n\n_done · 2 tok_\n\n## ask b (coder · b)\n\nsecond reply\n\n_done · 2 tok_\n');
    expect(c.done).toEqual(['a', 'b']);
    expect(c.shown()).toBe(2);
  });

  it('names a failure in its status line and goes on with the next reply', () => {
    const c = channel();
    const a = c.replies.add(job('a'));
    const b = c.replies.add(job('b', { text: 'waiting' }));
    a.append('partial');
    a.finish(job('a', { state: 'failed', lastSeq: 1, error: { code: 'SW_ERR_UPSTREAM', message: 'llama-server exited' } }));
    expect(c.text()).toContain('partial\n\n_failed');
    expect(c.text()).toContain(' — llama-server exited_\n\n## ask b (coder · b)\n\nwaiting');
    b.append('!');
    expect(c.text().endsWith('waiting!')).toBe(true);
  });

  it('writes a job that had ended before it was added once, and ignores a second finish and late text', () => {
    const c = channel();
    const ended = job('a', { state: 'cancelled', text: 'cut', lastSeq: 1 });
    const a = c.replies.add(ended);
    a.finish(ended);
    a.append(' late');
    expect(c.text()).toBe('\n## ask a (coder · a)\n\ncut\n\n_cancelled · 1 tok_\n');
    expect(c.done).toEqual(['a']);
    c.replies.add(job('b'));
    expect(c.text().endsWith('## ask b (coder · b)\n\n')).toBe(true);
  });
});

describe('pacedChannel', () => {
  it('writes the first text at once, then joins what arrives within the interval into one append', async () => {
    const out: string[] = [];
    const ch = pacedChannel({ append: (t) => out.push(t), show: () => undefined }, 40);
    ch.append('a');
    expect(out).toEqual(['a']);
    ch.append('b');
    ch.append('c');
    expect(out).toEqual(['a']); // held until 40 ms after the last write
    await new Promise((r) => setTimeout(r, 80));
    expect(out).toEqual(['a', 'bc']);
    ch.append('d');
    ch.dispose(); // writes what is held
    expect(out.join('')).toBe('abcd');
  });
});

describe('pacedChannel on a long line', () => {
  it('waits longer between writes while the last line is long, and the usual interval after a newline', async () => {
    const out: string[] = [];
    const ch = pacedChannel({ append: (t) => out.push(t), show: () => undefined }, 10);
    ch.append('x'.repeat(LINE_CHARS_PER_MS * 150)); // a 150 ms line
    ch.append('y');
    await new Promise((r) => setTimeout(r, 60));
    expect(out).toHaveLength(1); // 10 ms would have written it by now
    await new Promise((r) => setTimeout(r, 150));
    expect(out).toEqual(['x'.repeat(LINE_CHARS_PER_MS * 150), 'y']);
    ch.append('end\nnew');
    await new Promise((r) => setTimeout(r, 200));
    ch.append('z');
    ch.append('w');
    await new Promise((r) => setTimeout(r, 40)); // a short last line: 10 ms again
    expect(out.slice(2)).toEqual(['end\nnew', 'z', 'w']);
  });
});
