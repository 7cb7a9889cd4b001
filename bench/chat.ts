// The chat workload (`--workload chat`): conversations whose history grows turn by turn, every one
// a client of its own sending its next turn when the last answer ended. A turn's prompt is the
// previous one plus the reply the model generated to it and a new user message, so a slot that served
// the conversation before holds all but the new message in its cache (llama-server keeps the prompt
// and the generated tokens): what prompt-cache affinity routing is for.
import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
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
  /** Words of each conversation's system prompt and of each user message. */
  systemWords: number;
  userWords: number;
  /** max_tokens of every turn: the reply the next turn sends back is this long (ignore_eos). */
  maxTokens: number;
  /** Mean time the user takes to read a reply and write the next message, ms (each gap 0.5–1.5 × this, seeded); 0: none. */
  thinkMs: number;
  /** Conversations start at seeded times spread evenly over this window, ms, as users arrive at a service; 0: all at once. */
  startSpreadMs: number;
}

/**
 * One conversation's fixed part: its system prompt and the user message of each turn. The replies
 * are what the model generates during the run, sent back in the next turn's history as a real chat
 * client does, so only the new user message is new to the slot that served the previous turn.
 */
export interface Conversation {
  system: string;
  users: string[];
  /** Before each turn, after the previous reply ended, ms; before the first: the conversation's start time. */
  thinkMs: number[];
}

/** Common words: about one llama-spm token each, so prompt tokens ≈ words × 1.3 with the chat template. */
export const WORDS = (
  'the of and to in is it you that he was for on are with as his they be at one have this from or had by word but what some we can ' +
  'out other were all there when up use your how said an each she which do their time if will way about many then them write would ' +
  'like so these her long make thing see him two has look more day could go come did number sound no most people my over know water ' +
  'than call first who may down side been now find any new work part take get place made live where after back little only round man ' +
  'year came show every good me give our under name very through just form sentence great think say help low line differ turn cause ' +
  'much mean before move right boy old too same tell does set three want air well also play small end put home read hand port large ' +
  'spell add even land here must big high such follow act why ask men change went light kind off need house picture try us again animal'
).split(' ');

/** The conversations of a plan, the same for the same seed: the runs compared send the same first turns. */
export function planConversations(p: ChatPlan): Conversation[] {
  const random = mulberry32(p.seed);
  // Start times from a stream of their own, so the texts of a seed stay what they were without a spread.
  const arrival = mulberry32(p.seed + 1);
  const words = (n: number): string => Array.from({ length: n }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' ');
  return Array.from({ length: p.conversations }, (_, c) => {
    // One start in each of `conversations` equal parts of the window (seeded place inside it): spread
    // evenly, so no chance cluster of first turns queues as all of them at once did.
    const startMs = Math.round((p.startSpreadMs * (c + arrival())) / p.conversations);
    return {
      system: `You are assistant number ${c + 1}. ${words(p.systemWords)}`,
      users: Array.from({ length: p.turns }, () => words(p.userWords)),
      thinkMs: Array.from({ length: p.turns }, (_, t) => (t === 0 ? startMs : Math.round(p.thinkMs * (0.5 + random())))),
    };
  });
}

/** The messages of turn `turn`: the system prompt, then each earlier user message and the reply it got, then this turn's user message. */
export function turnMessages(conv: Conversation, replies: readonly string[], turn: number): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: conv.system }];
  for (let t = 0; t < turn; t++) messages.push({ role: 'user', content: conv.users[t]! }, { role: 'assistant', content: replies[t]! });
  messages.push({ role: 'user', content: conv.users[turn]! });
  return messages;
}

/** Fewer word tokens than this in the vocab: no bias (the replies are then free text). */
const MIN_REPLY_WORDS = 32;
/** Far above the spread of a model's logits: the greedy pick is always one of the biased tokens. */
const WORD_BIAS = 100;

/**
 * A `logit_bias` that makes the model (temperature 0) generate only whole-word tokens of `WORDS`, or
 * undefined when the vocab lacks them. Why: a random-weight model's free output (byte pieces, mixed
 * scripts, sub-word splits) does not tokenize back to the tokens it was generated as, so the reply a
 * client sends back matched the slot's cache only up to its first token. llama-server keeps the
 * generated tokens in the slot (prompt + reply), and a reply of whole-word tokens (`▁the ▁of …` in
 * llama-spm, `Ġthe` in GPT-2 style vocabs) re-tokenizes to the same ids, as a real model's natural
 * text mostly does. Not a GBNF grammar: a token-id grammar gives the same replies but costs llama-server
 * 4–5 ms a token (it checks the whole vocab once the unconstrained pick is rejected), ten times the
 * tiny model's decode; not a character grammar either: it lets the model spell `some` as `▁so` `me`.
 */
export function replyLogitBias(vocab: readonly string[]): Record<string, number> | undefined {
  const ids = new Map<string, number>();
  vocab.forEach((piece, id) => ids.set(piece, id));
  const bias: Record<string, number> = {};
  let n = 0;
  for (const w of WORDS) {
    const id = ids.get(`\u2581${w}`) ?? ids.get(`\u0120${w}`);
    if (id === undefined || bias[id] !== undefined) continue;
    bias[id] = WORD_BIAS;
    n++;
  }
  return n >= MIN_REPLY_WORDS ? bias : undefined;
}

export interface ChatRunOptions {
  url: string;
  token: string;
  model: string;
  conversations: Conversation[];
  maxTokens: number;
  /** `logit_bias` of every turn (`replyLogitBias`), if any. */
  logitBias?: Record<string, number>;
  signal?: AbortSignal;
  onProgress?: (done: number) => void;
}

/**
 * A chat sample: which conversation and turn it was (0-based), and where the daemon ran it (from its
 * lease records: the replica and slot), so a run can be read request by request.
 */
export type ChatSample = RequestSample & { conversation: number; turn: number; instanceId?: string; slot?: number };

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
    const one = async (conv: Conversation, conversation: number): Promise<void> => {
      const replies: string[] = [];
      for (let turn = 0; turn < conv.users.length; turn++) {
        if (conv.thinkMs[turn]) await sleep(conv.thinkMs[turn], undefined, { signal: o.signal });
        o.signal?.throwIfAborted();
        let reply = '';
        const s = await streamCompletion({
          target: 'daemon',
          baseUrl: o.url,
          token: o.token,
          model: o.model,
          prompt: '',
          messages: turnMessages(conv, replies, turn),
          maxTokens: o.maxTokens,
          ...(o.logitBias !== undefined ? { logitBias: o.logitBias } : {}),
          onText: (text) => (reply += text),
          dispatcher,
          signal: o.signal,
          t0,
        });
        samples.push({ ...s, conversation, turn });
        o.onProgress?.(samples.length);
        // The next turn sends back what the model said, as a chat client does (a failed turn: what came).
        replies.push(reply);
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

/** Σ prompt tokens over the samples llama-server reported timings for: reused from a cache and computed. */
export function promptTokenTotals(samples: readonly Pick<RequestSample, 'promptN' | 'cacheN'>[]): { cached: number; processed: number } {
  let cached = 0;
  let processed = 0;
  for (const s of samples) {
    if (s.promptN === undefined) continue;
    processed += s.promptN;
    cached += s.cacheN ?? 0;
  }
  return { cached, processed };
}

/**
 * The later turns (turn > 0) that ran, split by where: on the replica that ran the conversation's
 * turn before (`same`), where llama-server can restore the history from its own host prompt cache
 * even without affinity routing, or on another one (`other`), which computes it again.
 */
export function laterTurnsByReplica<S extends Pick<ChatSample, 'conversation' | 'turn' | 'instanceId'>>(samples: readonly S[]): { same: S[]; other: S[] } {
  const at = new Map<string, string>();
  for (const s of samples) if (s.instanceId !== undefined) at.set(`${s.conversation}/${s.turn}`, s.instanceId);
  const split = { same: [] as S[], other: [] as S[] };
  for (const s of samples) {
    const before = at.get(`${s.conversation}/${s.turn - 1}`);
    if (s.turn === 0 || s.instanceId === undefined || before === undefined) continue;
    (before === s.instanceId ? split.same : split.other).push(s);
  }
  return split;
}

/** Of the later turns that ran, the share on the previous turn's replica: how often "off" is a hit by placement alone. NaN when none ran. */
export function sameReplicaShare(samples: readonly Pick<ChatSample, 'conversation' | 'turn' | 'instanceId'>[]): number {
  const { same, other } = laterTurnsByReplica(samples);
  return same.length + other.length > 0 ? same.length / (same.length + other.length) : NaN;
}

/** TTFT less the daemon's queue wait (X-Slotwise-Queue-Wait-Ms): prefill and the first token, plus the hop. */
export function ttftLessQueue(samples: readonly Pick<RequestSample, 'ttftMs' | 'queueWaitMs'>[]): Summary {
  return summarize(samples.flatMap((s) => (s.ttftMs === undefined ? [] : [Math.max(0, s.ttftMs - s.queueWaitMs)])));
}

/** Prompt tokens per request as llama-server counted them (evaluated + reused). */
export function promptTokens(samples: readonly Pick<RequestSample, 'promptN' | 'cacheN'>[]): Summary {
  return summarize(samples.flatMap((s) => (s.promptN === undefined ? [] : [s.promptN + (s.cacheN ?? 0)])));
}
