// The chat workload's conversations and its cache hit ratio (no llama-server needed).
import { describe, expect, it } from 'vitest';
import { cacheHitRatio, laterTurnsByReplica, planConversations, promptTokenTotals, promptTokens, replyLogitBias, sameReplicaShare, ttftLessQueue, turnMessages, WORDS, type ChatSample } from '../../bench/chat';
import { renderMarkdown } from '../../bench/report-md';
import { chatRunOrder, modelConfig, placeSamples } from '../../bench/scenarios';
import { expectRectangularTables } from '../helpers/markdown';
import { CHAT, chatOptions } from '../../bench/run';
import { checkTargets } from '../../bench/targets';
import { summarize } from '../../bench/stats';
import { SseCounter } from '../../bench/stream-request';
import type { BenchReport, ChatResult, SweepResult } from '../../bench/types';
import { benchLevel } from './bench-fixtures';

describe('planConversations', () => {
  const plan = { ...CHAT.plan };

  it('is the same for the same seed and differs for another', () => {
    expect(planConversations(plan)).toEqual(planConversations(plan));
    expect(planConversations({ ...plan, seed: plan.seed + 1 })).not.toEqual(planConversations(plan));
  });

  it('builds each turn from the earlier one plus the reply it got and a new user message', () => {
    const convs = planConversations(plan);
    expect(convs).toHaveLength(16);
    for (const c of convs) {
      expect(c.users).toHaveLength(6);
      const replies = c.users.map((_, t) => `reply ${t}`);
      expect(turnMessages(c, replies, 0).map((m) => m.role)).toEqual(['system', 'user']);
      for (let t = 1; t < c.users.length; t++) {
        const turn = turnMessages(c, replies, t);
        expect(turn.slice(0, -2)).toEqual(turnMessages(c, replies, t - 1));
        expect(turn.slice(-2)).toEqual([
          { role: 'assistant', content: `reply ${t - 1}` },
          { role: 'user', content: c.users[t] },
        ]);
      }
    }
  });

  it('waits a seeded 0.5–1.5 × thinkMs before every turn but the first', () => {
    const gaps = planConversations({ ...plan, thinkMs: 1000, startSpreadMs: 0 }).flatMap((c) => {
      expect(c.thinkMs[0]).toBe(0);
      return c.thinkMs.slice(1);
    });
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(500);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(1500);
    expect(new Set(gaps).size).toBeGreaterThan(gaps.length / 2);
    expect(planConversations({ ...plan, thinkMs: 0, startSpreadMs: 0 }).every((c) => c.thinkMs.every((g) => g === 0))).toBe(true);
  });

  it('starts the conversations spread evenly over startSpreadMs, one in each equal part, the texts unchanged', () => {
    const spread = planConversations({ ...plan, startSpreadMs: 1600 });
    const starts = spread.map((c) => c.thinkMs[0]!);
    starts.forEach((t, c) => {
      expect(t).toBeGreaterThanOrEqual(c * 100);
      expect(t).toBeLessThanOrEqual((c + 1) * 100);
    });
    expect(new Set(starts.map((t) => t % 100)).size).toBeGreaterThan(starts.length / 2); // seeded places, not a grid
    const together = planConversations({ ...plan, startSpreadMs: 0 });
    expect(together.map((c) => c.thinkMs[0])).toEqual(together.map(() => 0));
    expect(spread.map((c) => [c.system, c.users, c.thinkMs.slice(1)])).toEqual(together.map((c) => [c.system, c.users, c.thinkMs.slice(1)]));
  });

  it('gives every conversation its own system prompt, so they share no long prefix', () => {
    const systems = planConversations(plan).map((c) => c.system);
    expect(new Set(systems).size).toBe(systems.length);
    expect(new Set(systems.map((s) => s.slice(0, 30))).size).toBe(systems.length);
  });

  it('spans about 300 to 1,500 words of prompt from the first turn to the last, with replies of max_tokens words', () => {
    const words = (ms: { content: string }[]): number => ms.reduce((a, m) => a + m.content.split(' ').length, 0);
    const c = planConversations(plan)[0]!;
    // A reply under the word bias is one word per token.
    const replies = c.users.map(() => Array.from({ length: plan.maxTokens }, () => 'word').join(' '));
    expect(words(turnMessages(c, replies, 0))).toBeGreaterThanOrEqual(250);
    expect(words(turnMessages(c, replies, 0))).toBeLessThanOrEqual(400);
    expect(words(turnMessages(c, replies, plan.turns - 1))).toBeGreaterThanOrEqual(1000);
    expect(words(turnMessages(c, replies, plan.turns - 1))).toBeLessThanOrEqual(1500);
  });
});

describe('replyLogitBias', () => {
  it('biases exactly the whole-word tokens of the workload words, by id, in llama-spm and GPT-2 style vocabs', () => {
    const spm = ['<unk>', '\u2581the', 'the', '\u2581of', 'so', 'me', ...WORDS.slice(2).map((w) => `\u2581${w}`)];
    const bias = replyLogitBias(spm)!;
    const ids = Object.keys(bias).map(Number);
    expect(ids).toHaveLength(WORDS.length);
    expect(ids).toContain(1);
    expect(ids).toContain(3);
    expect(ids).not.toContain(2); // `the` without its word boundary
    expect(ids.map((id) => spm[id]).sort()).toEqual(WORDS.map((w) => `\u2581${w}`).sort());
    expect(new Set(Object.values(bias))).toEqual(new Set([100]));
    expect(Object.keys(replyLogitBias(WORDS.map((w) => `\u0120${w}`))!)).toHaveLength(WORDS.length);
  });

  it('is undefined for a vocab without enough of those words', () => {
    expect(replyLogitBias(WORDS.slice(0, 31).map((w) => `\u2581${w}`))).toBeUndefined();
    expect(replyLogitBias(WORDS)).toBeUndefined();
  });
});

describe('cache hit ratio', () => {
  it('is Σ cache_n ÷ Σ (cache_n + prompt_n), skipping samples without timings', () => {
    expect(cacheHitRatio([{ promptN: 100, cacheN: 0 }, { promptN: 50, cacheN: 250 }, {}])).toBeCloseTo(250 / 400, 12);
    expect(promptTokens([{ promptN: 100, cacheN: 0 }, { promptN: 50, cacheN: 250 }]).max).toBe(300);
    expect(promptTokenTotals([{ promptN: 100, cacheN: 0 }, { promptN: 50, cacheN: 250 }, {}, { cacheN: 9 }])).toEqual({ cached: 250, processed: 150 });
  });

  it('is NaN when llama-server reported no timings', () => {
    expect(cacheHitRatio([{}, { promptN: 3 }])).toBeNaN();
  });
});

describe('where the turns ran', () => {
  it('takes each sample\'s replica and slot from the lease record of its request id', () => {
    const samples = [
      { conversation: 0, turn: 0, requestId: 'a' },
      { conversation: 0, turn: 1, requestId: 'b' },
      { conversation: 1, turn: 0 },
    ].map((s): ChatSample => ({ target: 'daemon', ok: true, maxTokens: 8, startMs: 0, e2eMs: 1, tokens: 8, queueWaitMs: 0, ...s }));
    placeSamples(samples, new Map([['a', { instanceId: 'm#1', slot: 2 }], ['b', { instanceId: 'm#2' }]]));
    expect(samples.map((s) => [s.instanceId, s.slot])).toEqual([['m#1', 2], ['m#2', undefined], [undefined, undefined]]);
  });

  it('counts the later turns on the replica of the turn before, over the turns that ran', () => {
    const at = (conversation: number, turn: number, instanceId?: string) => ({ conversation, turn, instanceId });
    // c0: 1 → 1 (same) → 2 (moved); c1: 2 → 2 (same); c2's turn 1 has no turn 0 that ran: not counted
    const samples = [at(0, 0, 'A'), at(0, 1, 'A'), at(0, 2, 'B'), at(1, 0, 'B'), at(1, 1, 'B'), at(2, 1, 'A'), at(3, 0)];
    expect(sameReplicaShare(samples)).toBeCloseTo(2 / 3, 12);
    expect(sameReplicaShare([at(0, 0, 'A')])).toBeNaN();
    const split = laterTurnsByReplica(samples);
    expect(split.same).toEqual([at(0, 1, 'A'), at(1, 1, 'B')]);
    expect(split.other).toEqual([at(0, 2, 'B')]);
  });

  it('splits TTFT into the queue wait and the rest', () => {
    const s = ttftLessQueue([
      { ttftMs: 300, queueWaitMs: 250 },
      { ttftMs: 80, queueWaitMs: 0 },
      { ttftMs: undefined, queueWaitMs: 10 },
    ]);
    expect([s.count, s.min, s.max]).toEqual([2, 50, 80]);
  });
});

describe('SseCounter timings', () => {
  it('keeps prompt_n and cache_n of the last chunk that had them', () => {
    const c = new SseCounter(() => undefined);
    c.push('data: {"choices":[{"delta":{"content":"a"}}]}\n\n');
    c.push('data: {"choices":[{"delta":{}}],"timings":{"prompt_n":12,"cache_n":300,"predicted_n":1}}\n\ndata: [DONE]\n\n');
    c.end();
    expect([c.promptN, c.cacheN, c.tokens, c.done]).toEqual([12, 300, 1, true]);
  });

  it('hands each piece of generated text to onText, in order', () => {
    const pieces: string[] = [];
    const c = new SseCounter(() => undefined, (t) => pieces.push(t));
    c.push('data: {"choices":[{"delta":{"content":" the"}}]}\n\ndata: {"choices":[{"delta":{"content":""}}]}\n\ndata: {"choices":[{"delta":{"con');
    c.push('tent":" of"}}]}\n\ndata: [DONE]\n\n');
    c.end();
    expect(pieces).toEqual([' the', ' of']);
  });
});

describe('chat goals', () => {
  const run = (affinity: boolean, ttftP50: number, hitRatio: number): ChatResult['runs'][number] => ({
    affinity,
    level: benchLevel('daemon', 16, 100, { ttftMs: { ...summarize([ttftP50]) } }),
    hitRatio,
    promptTokens: summarize([300, 1500]),
    promptTokensTotal: { cached: 1200, processed: 600 },
    firstTurnTtftMs: summarize([ttftP50]),
    laterTurnTtftMs: summarize([ttftP50]),
  });
  const sweep: SweepResult = { options: { model: 'tiny', concurrency: [], requests: 0, mix: [], direct: false, prompt: '' }, levels: [], comparisons: [], layout: { instances: 2, slotsPerInstance: 4 } };

  it('checks the TTFT ratio and the hit ratio with affinity, and nothing else', () => {
    const chat: ChatResult = { conversations: 16, turns: 6, replicas: 2, slotsPerInstance: 4, maxTokens: 32, wordBias: true, thinkMs: 0, runs: [run(false, 90, 0.5), run(true, 20, 0.85)], ttftP50Ratio: 4.5 };
    expect(checkTargets({ sweep, chat })).toEqual([
      { name: 'chat: TTFT p50, affinity off ÷ on', goal: '≥ 3×', measured: '4.50×', met: true },
      { name: 'chat: prompt cache hit ratio with affinity', goal: '≥ 80 %', measured: '85.0 %', met: true },
    ]);
  });

  it('reads the hit ratio pooled over the rounds when the run has rounds', () => {
    const pooled = [{ affinity: false, ttftMs: summarize([90]), hitRatio: 0.6 }, { affinity: true, ttftMs: summarize([20]), hitRatio: 0.79 }];
    const chat: ChatResult = { conversations: 16, turns: 6, replicas: 2, slotsPerInstance: 4, maxTokens: 32, wordBias: true, thinkMs: 0, rounds: 2, pooled, runs: [run(false, 90, 0.5), run(true, 20, 0.85), run(true, 20, 0.73), run(false, 90, 0.5)], ttftP50Ratio: 4.5 };
    expect(checkTargets({ sweep, chat })[1]).toMatchObject({ measured: '79.0 %', met: false });
  });

  it('misses with a small ratio and says when no hit ratio was measured', () => {
    const chat: ChatResult = { conversations: 16, turns: 6, replicas: 2, slotsPerInstance: 4, maxTokens: 32, wordBias: true, thinkMs: 0, runs: [run(false, 30, NaN), run(true, 20, NaN)], ttftP50Ratio: 1.5 };
    const [ratio, hit] = checkTargets({ sweep, chat });
    expect(ratio).toMatchObject({ met: false, measured: '1.50×' });
    expect(hit).toMatchObject({ met: undefined, measured: 'not measured (llama-server sent no timings.cache_n)' });
  });
});

/** A report of the chat workload alone. */
function chatReport(chat: ChatResult): BenchReport {
  return {
    schema: 1,
    environment: { cpuModel: 'Test CPU', cores: 2, memoryGiB: 8, platform: 'linux-x64', node: 'v20.0.0', slotwise: '0.1.0', llamaServer: 'b1', gpus: [], startedAt: '2026-01-01T00:00:00.000Z' },
    run: { kind: 'custom', model: 'tiny', modelPath: '/m/tiny.gguf', routing: 'slot-aware' },
    sweep: { options: { model: 'tiny', concurrency: [], requests: 0, mix: [], direct: false, prompt: '' }, levels: [], comparisons: [], layout: { instances: 2, slotsPerInstance: 4 } },
    chat,
    targets: [],
    durationMs: 1,
  };
}

describe('bench.md chat section', () => {
  it('says how the conversations start and shows TTFT less queue and the previous-replica share per run', () => {
    const run = (affinity: boolean, share: number): ChatResult['runs'][number] => ({
      affinity,
      level: benchLevel('daemon', 16, 100, { ttftMs: { ...summarize([affinity ? 60 : 200]) } }),
      hitRatio: affinity ? 0.85 : 0.65,
      promptTokens: summarize([300, 1500]),
      promptTokensTotal: { cached: 1200, processed: 600 },
      firstTurnTtftMs: summarize([100]),
      laterTurnTtftMs: summarize([90]),
      ttftLessQueueMs: summarize([affinity ? 55 : 180]),
      sameReplicaShare: share,
      sameReplicaTtftMs: summarize(affinity ? [70, 80, 90] : [75, 85]),
      otherReplicaTtftMs: summarize(affinity ? [] : [400, 500, 600]),
    });
    const chat: ChatResult = { conversations: 16, turns: 6, replicas: 2, slotsPerInstance: 4, maxTokens: 160, wordBias: true, thinkMs: 4000, startSpreadMs: 4000, runs: [run(false, 0.5), run(true, 0.95)], ttftP50Ratio: 200 / 60 };
    const report = chatReport(chat);
    const md = renderMarkdown(report);
    expectRectangularTables(md);
    expect(md).toContain('16 conversations × 6 turns, starting spread over the first 4000 ms (as users arrive)');
    expect(md).toMatch(/\| off \| 200\.00 \|.*\| 90\.00 \| 80\.00 \(2\) \| 500\.00 \(3\) \| 180\.00 \|.*\| 50 % \|/);
    expect(md).toMatch(/\| on \| 60\.00 \|.*\| 90\.00 \| 80\.00 \(3\) \| — \| 55\.00 \|.*\| 95 % \|/);
    expect(md).toContain("a fresh daemon per run, llama-server's host prompt cache auto (`promptCacheMiB`).");
    expect(renderMarkdown({ ...report, chat: { ...chat, promptCacheMiB: 0 } })).toContain("llama-server's host prompt cache off (`promptCacheMiB` 0: a history survives only in the slot that held it)");
    expect(renderMarkdown({ ...report, chat: { ...chat, promptCacheMiB: 512 } })).toContain("llama-server's host prompt cache 512 MiB (`promptCacheMiB`)");
    expect(renderMarkdown({ ...report, chat: { ...chat, startSpreadMs: 0 } })).toContain('16 conversations × 6 turns, all at once');
  });

  it('labels each run with its round and gives the pooled figures the ratio comes from', () => {
    const run = (affinity: boolean, round: number, ttft: number): ChatResult['runs'][number] => ({
      affinity,
      round,
      level: benchLevel('daemon', 16, 100, { ttftMs: { ...summarize([ttft]) } }),
      hitRatio: affinity ? 0.85 : 0.65,
      promptTokens: summarize([300, 1500]),
      promptTokensTotal: { cached: 1200, processed: 600 },
      firstTurnTtftMs: summarize([100]),
      laterTurnTtftMs: summarize([90]),
    });
    const pooled = [{ affinity: false, ttftMs: summarize([210]), hitRatio: 0.64 }, { affinity: true, ttftMs: summarize([70]), hitRatio: 0.84 }];
    const chat: ChatResult = { conversations: 16, turns: 6, replicas: 2, slotsPerInstance: 4, maxTokens: 160, wordBias: true, thinkMs: 4000, rounds: 2, pooled, runs: [run(false, 0, 200), run(true, 0, 60), run(true, 1, 80), run(false, 1, 220)], ttftP50Ratio: 3 };
    const md = renderMarkdown(chatReport(chat));
    expectRectangularTables(md);
    expect(md).toMatch(/\| off \(round 2\) \| 220\.00 \|/);
    expect(md).toContain('2 rounds in the order off, on, on, off');
    expect(md).toContain('pooled over them: off TTFT p50 210.00 ms, cache hit 64 %; on TTFT p50 70.00 ms, cache hit 84 %.');
    expect(md).toContain('TTFT p50 off ÷ on (pooled): **3.00×**.');
  });
});

describe('chatOptions', () => {
  it("runs the model's own args, context and host prompt cache on the workload's layout, or the one --replicas/--slots give", () => {
    const model = { ...modelConfig('coder', '/m/coder.gguf', { slots: 8, replicas: 1, args: ['-fa', 'on'], ctxPerSlot: 4096 }), promptCacheMiB: 0 };
    const o = chatOptions({}, model, { llamaServer: '/opt/llama-server' });
    expect(o).toMatchObject({ modelPath: '/m/coder.gguf', replicas: CHAT.replicas, slots: CHAT.slots, ctxPerSlot: 4096, args: ['-fa', 'on'], llamaServer: '/opt/llama-server', promptCacheMiB: 0 });
    expect(chatOptions({ replicas: 3, slots: 2 }, { ...model, ctxPerSlot: 512, promptCacheMiB: 'auto' }, { llamaServer: '/opt/llama-server' })).toMatchObject({ replicas: 3, slots: 2, ctxPerSlot: CHAT.ctxPerSlot, promptCacheMiB: 'auto' });
    // The built llama-server gets the bench's thread count unless the model's args set one.
    expect(chatOptions({}, model, { llamaServer: 'auto' }).args).toEqual(['-fa', 'on', '--threads', expect.stringMatching(/^\d+$/)]);
    expect(chatOptions({}, { ...model, args: ['-t', '2'] }, { llamaServer: 'auto' }).args).toEqual(['-t', '2']);
    expect(chatOptions({}, { ...model, args: ['--threads=2'] }, { llamaServer: 'auto' }).args).toEqual(['--threads=2']);
    // --think-ms replaces the plan's pause and nothing else of it.
    expect(chatOptions({ thinkMs: 12_000 }, model, { llamaServer: 'auto' }).plan).toEqual({ ...CHAT.plan, thinkMs: 12_000 });
    expect(chatOptions({}, model, { llamaServer: 'auto' }).plan).toEqual(CHAT.plan);
    expect(modelConfig('tiny', '/m/t.gguf', { slots: 4, replicas: 2, promptCacheMiB: 64 }).promptCacheMiB).toBe(64);
    expect(modelConfig('tiny', '/m/t.gguf', { slots: 4, replicas: 2 }).promptCacheMiB).toBe('auto');
  });
});

describe('chatRunOrder', () => {
  it('runs off and on, then on and off (ABBA), for each pair of rounds', () => {
    expect(chatRunOrder(1)).toEqual([false, true]);
    expect(chatRunOrder(2)).toEqual([false, true, true, false]);
    expect(chatRunOrder(3)).toEqual([false, true, true, false, false, true]);
  });
});
