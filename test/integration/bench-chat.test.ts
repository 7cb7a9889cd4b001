// The chat workload against the real llama-server: each turn sends back the reply the model generated,
// and llama-server reuses all of it from the slot (prompt + generated tokens), which is what makes the
// workload's hit ratio a chat client's.
import { describe, expect, it } from 'vitest';
import { planConversations, replyLogitBias, runConversations } from '../../bench/chat';
import { readGgufHeader } from '../../gguf/gguf';
import type { Snapshot } from '../../shared/protocol';
import { startTestDaemon } from '../helpers/daemon';
import { tinyModelPath } from '../helpers/tiny';

const ready = (s: Snapshot) => s.models.length > 0 && s.models.every((m) => m.instances.length > 0 && m.instances.every((i) => i.state === 'ready'));

describe('chat workload (real llama-server, 1 × 1 slot)', () => {
  it("sends each turn's generated reply back, and llama-server reuses the whole earlier turn and its reply", async () => {
    const path = await tinyModelPath();
    const tokens = (await readGgufHeader(path)).metadata.get('tokenizer.ggml.tokens');
    expect(tokens?.type === 'array' && tokens.itemType === 'string').toBe(true);
    const logitBias = replyLogitBias((tokens as { value: string[] }).value);
    expect(logitBias).toBeDefined();

    const d = await startTestDaemon({ models: { m: { path, slots: 1, ctxPerSlot: 2048 } } });
    try {
      await d.waitFor(ready, 'ready');
      const maxTokens = 24;
      const conversations = planConversations({ conversations: 1, turns: 3, seed: 3, systemWords: 60, userWords: 20, maxTokens, thinkMs: 0, startSpreadMs: 0 });
      const { samples } = await runConversations({ url: d.url, token: d.token, model: 'm', conversations, maxTokens, logitBias });
      expect(samples.map((s) => [s.ok, s.conversation, s.turn, s.tokens])).toEqual([0, 1, 2].map((t) => [true, 0, t, maxTokens]));
      for (let t = 1; t < samples.length; t++) {
        const before = samples[t - 1]!;
        const earlier = before.promptN! + before.cacheN!;
        // All of the earlier prompt and all generated tokens but the last (sampled, never decoded into
        // the cache) come from the slot; only the new user message and the chat template's markup are computed.
        expect(samples[t]!.cacheN).toBeGreaterThanOrEqual(earlier + maxTokens - 1);
        expect(samples[t]!.promptN).toBeLessThan(60);
      }
    } finally {
      await d.stop();
    }
  });
});
