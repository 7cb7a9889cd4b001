// The chat workload (`--workload chat`): conversations whose history grows turn by turn, every one
// a client of its own sending its next turn when the last answer ended. A turn's prompt is the
// previous one plus a reply and a new user message, so a slot that served the conversation before
// holds most of it in its cache: what prompt-cache affinity routing is for.
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Agent } from 'undici';
import { mulberry32 } from '../platform/prng';
import { buildLevel } from './aggregate';
import { summarize } from './stats';
import { StatusSampler } from './status-sampler';
import { streamCompletion, type ChatMessage } from './stream-request';
import type { LevelResult, RequestSample, Summary } from './types';

export interface ChatPlan {
  conversations: number;
  turns: number;
  seed: number;
  /** Words of each conversation's system prompt, of each user message and of each earlier reply. */
  systemWords: number;
  userWords: number;
  replyWords: number;
  /** max_tokens of every turn. */
  maxTokens: number;
}

/** One conversation's requests: turn t sends `turns[t]` (system, then t user messages and t replies before the last). */
export interface Conversation {
  turns: ChatMessage[][];
}

/** Common words: about one llama-spm token each, so prompt tokens ≈ words × 1.3 with the chat template. */
const WORDS = (
  'the of and to in is it you that he was for on are with as his they be at one have this from or had by word but what some we can ' +
  'out other were all there when up use your how said an each she which do their time if will way about many then them write would ' +
  'like so these her long make thing see him two has look more day could go come did number sound no most people my over know water ' +
  'than call first who may down side been now find any new work part take get place made live where after back little only round man ' +
  'year came show every good me give our under name very through just form sentence great think say help low line differ turn cause ' +
  'much mean before move right boy old too same tell does set three want air well also play small end put home read hand port large ' +
  'spell add even land here must big high such follow act why ask men change went light kind off need house picture try us again animal'
).split(' ');

/** The conversations of a plan, the same for the same seed: the runs compared differ only in routing. */
export function planConversations(p: ChatPlan): Conversation[] {
  const random = mulberry32(p.seed);
  const words = (n: number): string => Array.from({ length: n }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' ');
  return Array.from({ length: p.conversations }, (_, c) => {
    const history: ChatMessage[] = [{ role: 'system', content: `You are assistant number ${c + 1}. ${words(p.systemWords)}` }];
    const turns: ChatMessage[][] = [];
    for (let t = 0; t < p.turns; t++) {
      // The reply stands in for what the model said last turn (fixed text: both runs send the same prompts).
      if (t > 0) history.push({ role: 'assistant', content: words(p.replyWords) });
      history.push({ role: 'user', content: words(p.userWords) });
      turns.push([...history]);
    }
    return { turns };
  });
}

export interface ChatRunOptions {
  url: string;
  token: string;
  model: string;
  conversations: Conversation[];
  maxTokens: number;
  signal?: AbortSignal;
  onProgress?: (done: number) => void;
}

/** A chat sample: which turn it was (0-based). */
export type ChatSample = RequestSample & { turn: number };

/** Every conversation at once, each turn after the previous answer; status polled throughout. */
export async function runConversations(o: ChatRunOptions): Promise<{ level: LevelResult; samples: ChatSample[] }> {
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000 });
  // Every conversation's request listens on the one signal at once: not a leak, so no warning.
  if (o.signal) setMaxListeners(o.conversations.length + 10, o.signal);
  const sampler = new StatusSampler({ url: o.url, token: o.token, model: o.model, dispatcher });
  const samples: ChatSample[] = [];
  try {
    sampler.start();
    const t0 = performance.now();
    const one = async (conv: Conversation): Promise<void> => {
      for (const [turn, messages] of conv.turns.entries()) {
        o.signal?.throwIfAborted();
        const s = await streamCompletion({
          target: 'daemon',
          baseUrl: o.url,
          token: o.token,
          model: o.model,
          prompt: '',
          messages,
          maxTokens: o.maxTokens,
          dispatcher,
          signal: o.signal,
          t0,
        });
        samples.push({ ...s, turn });
        o.onProgress?.(samples.length);
      }
    };
    await Promise.all(o.conversations.map(one));
    const wallMs = performance.now() - t0;
    const level = buildLevel('daemon', o.conversations.length, { samples, t0, wallMs }, await sampler.stop());
    return { level, samples };
  } finally {
    await sampler.stop();
    await dispatcher.close();
  }
}

/** Σ cache_n ÷ Σ (cache_n + prompt_n) over the samples llama-server reported both for; NaN when none did. */
export function cacheHitRatio(samples: readonly Pick<RequestSample, 'promptN' | 'cacheN'>[]): number {
  let cached = 0;
  let all = 0;
  for (const s of samples) {
    if (s.promptN === undefined || s.cacheN === undefined) continue;
    cached += s.cacheN;
    all += s.cacheN + s.promptN;
  }
  return all > 0 ? cached / all : NaN;
}

/** Prompt tokens per request as llama-server counted them (evaluated + reused). */
export function promptTokens(samples: readonly Pick<RequestSample, 'promptN' | 'cacheN'>[]): Summary {
  return summarize(samples.flatMap((s) => (s.promptN === undefined ? [] : [s.promptN + (s.cacheN ?? 0)])));
}
