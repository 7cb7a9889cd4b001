import { describe, expect, it } from 'vitest';
import { SlotwiseError } from '../../shared/errors';
import type { JobSummary, RpcMethod, RpcMethods } from '../../shared/protocol';
import type { JobEvent } from '../../extension/core/connection';
import { JobTracker, titleOf, type JobRpc } from '../../extension/core/job-tracker';

/** A scripted daemon: records calls; handlers may emit notifications before answering, as the real one does. */
function fakeRpc(handlers: Partial<{ [M in RpcMethod]: (params: RpcMethods[M]['params']) => RpcMethods[M]['result'] | Promise<RpcMethods[M]['result']> }>) {
  const calls: [string, unknown][] = [];
  const rpc: JobRpc = {
    async call(method, params) {
      calls.push([method, params]);
      const h = handlers[method] as ((p: unknown) => unknown) | undefined;
      if (!h) throw new SlotwiseError('SW_ERR_METHOD_NOT_FOUND', method);
      return (await h(params)) as never;
    },
  };
  return { rpc, calls };
}

const quiet = { info: () => undefined, warn: () => undefined, debug: () => undefined };
const delta = (jobId: string, seq: number, text: string): JobEvent => ({ method: 'job.delta', params: { jobId, seq, text } });
const summary = (over: Partial<JobSummary> = {}): JobSummary => ({ jobId: 'j1', model: 'coder', state: 'running', createdAt: 1, title: 'hi', seq: 0, ...over });

describe('JobTracker', () => {
  it('applies deltas in seq order exactly once, even when notifications beat the submit reply', async () => {
    let tracker!: JobTracker;
    const { rpc } = fakeRpc({
      'prompt.submit': () => {
        tracker.handle({ method: 'job.queued', params: { jobId: 'j1', position: 3, etaMs: 4000 } }); // the daemon notifies before it answers
        tracker.handle({ method: 'job.queued', params: { jobId: 'j1', position: 1, etaMs: 1000 } });
        return { jobId: 'j1' };
      },
    });
    tracker = new JobTracker(rpc, quiet);
    const texts: string[] = [];
    tracker.onText.on(({ text }) => texts.push(text));
    const job = await tracker.submit({ model: 'coder', messages: [{ role: 'user', content: 'Write a haiku\nabout slots' }] });
    expect(job).toMatchObject({ jobId: 'j1', followed: true, title: 'Write a haiku', state: 'queued', position: 1, etaMs: 1000 });
    tracker.handle({ method: 'job.started', params: { jobId: 'j1', instance: 'coder#1' } });
    expect(job.etaMs).toBeUndefined();
    tracker.handle(delta('j1', 1, 'Hello'));
    tracker.handle(delta('j1', 1, 'Hello')); // replayed duplicate
    tracker.handle(delta('j1', 2, ', world'));
    expect(job).toMatchObject({ state: 'running', instance: 'coder#1', text: 'Hello, world', lastSeq: 2 });
    tracker.handle({ method: 'job.end', params: { jobId: 'j1', finishReason: 'length', usage: { promptTokens: 3, completionTokens: 2 }, timings: { queuedMs: 1, totalMs: 9 } } });
    expect(job).toMatchObject({ state: 'completed', finishReason: 'length', usage: { completionTokens: 2 } });
    expect(texts).toEqual(['Hello', ', world']);
  });

  it('a gap re-attaches from the last seq applied; the replay fills it without doubling', async () => {
    let tracker!: JobTracker;
    const { rpc, calls } = fakeRpc({
      'prompt.attach': (p) => {
        // The daemon replays seq > fromSeq, then answers.
        ['b', 'c', 'd'].slice((p.fromSeq ?? 0) - 1).forEach((t, i) => tracker.handle(delta('j1', (p.fromSeq ?? 0) + i + 1, t)));
        return summary({ seq: 4 });
      },
    });
    tracker = new JobTracker(rpc, quiet);
    tracker.handle(delta('j1', 1, 'a'));
    tracker.handle(delta('j1', 3, 'c')); // seq 2 went missing
    await new Promise((r) => setTimeout(r, 0));
    expect(calls).toEqual([['prompt.attach', { jobId: 'j1', fromSeq: 1 }]]);
    expect(tracker.get('j1')).toMatchObject({ text: 'abcd', lastSeq: 4, seq: 4 });
  });

  it('reattachAll attaches every followed unfinished job from its last seq; a job the daemon lost fails', async () => {
    const { rpc, calls } = fakeRpc({
      'prompt.submit': (p) => ({ jobId: p.prompt! }),
      'prompt.attach': (p) => {
        if (p.jobId === 'gone') throw new SlotwiseError('SW_ERR_JOB_NOT_FOUND', 'no job "gone"');
        return summary({ jobId: p.jobId, seq: p.fromSeq ?? 0 });
      },
    });
    const tracker = new JobTracker(rpc, quiet);
    await tracker.submit({ prompt: 'live' });
    await tracker.submit({ prompt: 'gone' });
    await tracker.submit({ prompt: 'done' });
    tracker.handle(delta('live', 1, 'x'));
    tracker.handle(delta('live', 2, 'y'));
    tracker.handle({ method: 'job.error', params: { jobId: 'done', code: 'SW_ERR_CANCELLED', message: 'cancelled' } });
    tracker.handle(delta('other', 1, 'not ours')); // another window's job is not followed
    await tracker.reattachAll();
    expect(calls.filter(([m]) => m === 'prompt.attach').map(([, p]) => p)).toEqual(
      expect.arrayContaining([
        { jobId: 'live', fromSeq: 2 },
        { jobId: 'gone', fromSeq: 0 },
      ]),
    );
    expect(calls.filter(([m]) => m === 'prompt.attach')).toHaveLength(2);
    expect(tracker.get('done')!.state).toBe('cancelled');
    expect(tracker.get('gone')).toMatchObject({ state: 'failed', error: { code: 'SW_ERR_JOB_NOT_FOUND' } });
    expect(tracker.active().map((j) => j.jobId)).toEqual(['live']);
  });

  it('refresh merges jobs.list: other windows\' jobs appear, vanished unfollowed ones go', async () => {
    let list: JobSummary[] = [summary({ jobId: 'a', state: 'completed', createdAt: 5, usage: { promptTokens: 1, completionTokens: 9 } }), summary({ jobId: 'b', createdAt: 6 })];
    const { rpc } = fakeRpc({ 'jobs.list': () => list });
    const tracker = new JobTracker(rpc, quiet);
    await tracker.refresh();
    expect(tracker.list().map((j) => [j.jobId, j.state, j.followed])).toEqual([
      ['b', 'running', false],
      ['a', 'completed', false],
    ]);
    list = [summary({ jobId: 'b', state: 'completed', createdAt: 6 })];
    await tracker.refresh();
    expect(tracker.list().map((j) => [j.jobId, j.state])).toEqual([['b', 'completed']]);
  });

  it('titleOf takes the last user message or the prompt, first line, shortened', () => {
    expect(titleOf({ prompt: '  hello\nworld' })).toBe('hello');
    expect(titleOf({ messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'x'.repeat(100) }] })).toBe(`${'x'.repeat(59)}…`);
    expect(titleOf({})).toBe('(empty prompt)');
  });
});
