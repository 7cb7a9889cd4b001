// 200 mixed requests (HTTP and WebSocket, streaming and not) with random client aborts against
// 2 real llama-server replicas: every request ends with exactly one outcome, the queue bound and
// deadlines hold, and no slot stays busy afterwards.
import { describe, expect, it } from 'vitest';
import type { RequestOutcome, Snapshot } from '../../shared/protocol';
import { instanceAuth, startTestDaemon, waitUntil } from '../helpers/daemon';

/** Deterministic pseudo-random numbers so a failure can be replayed. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Seen = 'completed' | 'aborted' | 'rejected' | 'failed';

describe('burst of 200 mixed requests (real llama-server, 2 replicas × 4 slots)', () => {
  it('ends every request with exactly one outcome and leaves no slot busy', async () => {
    const maxWaiting = 20; // small enough that 200 near-simultaneous arrivals overflow it on a fast machine too
    const d = await startTestDaemon({
      models: { tiny: { slots: 4, ctxPerSlot: 512, replicas: 2 } },
      config: { queue: { maxWaiting, timeoutMs: 8000 } },
    });
    await d.waitFor((s) => s.models[0]!.instances.length === 2 && s.models[0]!.instances.every((i) => i.state === 'ready' && i.slots.length === 4), 'two replicas ready');
    const ws = await d.client();
    let maxQueued = 0;
    const servedBy = new Set<string>();
    ws.on('status', ({ snapshot }: { snapshot: Snapshot }) => {
      maxQueued = Math.max(maxQueued, snapshot.models[0]!.queue.waiting);
      for (const i of snapshot.models[0]!.instances) if ((i.inFlight ?? 0) > 0) servedBy.add(i.id);
    });
    await ws.call('status.subscribe');

    const random = rng(42);
    const jobEnds = new Map<string, Seen>();
    ws.on('job.end', (e) => jobEnds.set(e.jobId, 'completed'));
    ws.on('job.error', (e) => jobEnds.set(e.jobId, e.code === 'SW_ERR_CANCELLED' ? 'aborted' : e.code === 'SW_ERR_QUEUE_TIMEOUT' ? 'rejected' : 'failed'));

    const one = async (i: number): Promise<Seen> => {
      const maxTokens = 4 + Math.floor(random() * 60);
      const abortAfter = random() < 0.25 ? Math.floor(random() * 400) : undefined;
      if (random() < 0.3) {
        // WebSocket prompt job
        let jobId: string;
        try {
          ({ jobId } = await ws.call('prompt.submit', { model: 'tiny', prompt: `job ${i}`, maxTokens }));
        } catch (err) {
          return (err as { code?: string }).code === 'SW_ERR_QUEUE_FULL' ? 'rejected' : 'failed';
        }
        if (abortAfter !== undefined) setTimeout(() => void ws.call('prompt.cancel', { jobId }).catch(() => undefined), abortAfter);
        await waitUntil(() => jobEnds.has(jobId), `job ${jobId} ended`, 60_000);
        return jobEnds.get(jobId)!;
      }
      const stream = random() < 0.5;
      const ctrl = new AbortController();
      if (abortAfter !== undefined) setTimeout(() => ctrl.abort(), abortAfter);
      try {
        const res = await d.fetch(random() < 0.5 ? '/v1/completions' : '/v1/chat/completions', {
          method: 'POST',
          signal: ctrl.signal,
          body: JSON.stringify({ model: 'tiny', max_tokens: maxTokens, stream, prompt: `req ${i}`, messages: [{ role: 'user', content: `req ${i}` }] }),
        });
        if (res.status === 503 || res.status === 504) return 'rejected';
        if (res.status !== 200) return 'failed';
        const text = await res.text();
        if (stream && !text.includes('[DONE]')) return 'failed';
        return 'completed';
      } catch {
        return ctrl.signal.aborted ? 'aborted' : 'failed';
      }
    };

    const seen = await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
    const count = (k: Seen) => seen.filter((x) => x === k).length;
    expect(count('failed')).toBe(0);

    // Every request the daemon received ends with exactly one outcome.
    const total = (o: Record<RequestOutcome, number>) => o.completed + o.cancelled + o.rejected + o.failed;
    const end = await d.waitFor(
      (s) => s.models[0]!.queue.waiting === 0 && total(s.models[0]!.outcomes!) === s.models[0]!.requests,
      'every received request ended',
      20_000,
    );
    const o = end.models[0]!.outcomes as Record<RequestOutcome, number>;
    const received = end.models[0]!.requests!;
    expect(total(o)).toBe(received);
    // A client that aborts before its body was read was never received; all others were.
    expect(received).toBeLessThanOrEqual(200);
    expect(received).toBeGreaterThanOrEqual(200 - count('aborted'));
    expect(o.failed).toBe(0);
    // What clients saw bounds what the daemon counted; an abort races with the answer it aborts
    // (a finished answer counts completed, a refusal rejected), never the other way round.
    expect(o.completed).toBeGreaterThanOrEqual(count('completed'));
    expect(o.rejected).toBeGreaterThanOrEqual(count('rejected'));
    expect(o.completed + o.rejected).toBeLessThanOrEqual(count('completed') + count('rejected') + count('aborted'));
    expect(o.cancelled).toBeLessThanOrEqual(count('aborted'));
    expect(count('rejected')).toBeGreaterThan(0); // 200 at once against 8 slots + 20 places must overflow
    expect(maxQueued).toBeLessThanOrEqual(maxWaiting);
    expect(servedBy).toEqual(new Set(['tiny#1', 'tiny#2'])); // both replicas took work

    // Nothing left behind, in the daemon's books or in llama-server's own /slots.
    for (const inst of end.models[0]!.instances) {
      expect(inst.inFlight).toBe(0);
      await waitUntil(async () => {
        const slots = (await (await fetch(`http://127.0.0.1:${inst.port}/slots`, { headers: instanceAuth(inst.pid!) })).json()) as { is_processing: boolean }[];
        return slots.every((x) => !x.is_processing);
      }, `${inst.id} idle`, 3000);
    }
  });
});
