// The typing scenario: an editor sending one /infill request per keystroke (20 requests 50 ms apart),
// several bursts with a pause between them, on one X-Slotwise-Session. Slot time comes from the
// daemon's lease records, never from client timings. Three runs in one bench: the session with the
// adaptive hold (queue.sessionHoldMs default), the session with the hold off (newest wins alone), and
// the same bursts without a session key (every request kept: the baseline).
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { firstLine, SlotwiseError } from '../shared/errors';
import { DEFAULT_HANDOFF_TOKENS, DEFAULT_SESSION_HOLD_MS } from '../daemon/config/rules';
import type { LeaseRecord } from '../daemon/scheduler/scheduler';
import { sseData } from '../daemon/api/upstream';
import { hostDaemon } from './daemon-host';
import { modelConfig, type ScenarioContext } from './scenarios';
import { burstSlotTime } from './slot-time';
import { summarize } from './stats';
import { errorMessage, REQUEST_ID_HEADER } from './stream-request';
import type { TypingBurst, TypingResult, TypingRun } from './types';

export interface TypingOptions {
  /** A model with FIM tokens (the tiny model's `fim` variant). */
  modelPath: string;
  slots: number;
  keystrokes: number;
  gapMs: number;
  /** Bursts per run with a session key; the baseline runs `baselineBursts` (each keeps every request, so it takes longer). */
  bursts: number;
  baselineBursts: number;
  /** Pause after a burst's last completion before the next burst. */
  pauseMs: number;
  /** n_predict of each request. */
  nPredict: number;
  args?: string[];
}

/** The code typed, one character per keystroke, after a fixed prefix. */
const BEFORE = 'import math\n\ndef distance(a, b):\n    """Euclidean distance of two points."""\n    ';
const TYPED = 'return math.sqrt((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2)';
const AFTER = '\n\n\ndef main():\n    print(distance((0, 0), (3, 4)))\n';

export async function typingScenario(ctx: ScenarioContext, o: TypingOptions): Promise<TypingResult> {
  const runs: TypingRun[] = [];
  const plan: { mode: TypingRun['mode']; sessionHoldMs: number; bursts: number }[] = [
    { mode: 'session', sessionHoldMs: DEFAULT_SESSION_HOLD_MS, bursts: o.bursts },
    { mode: 'no session', sessionHoldMs: DEFAULT_SESSION_HOLD_MS, bursts: o.baselineBursts },
    { mode: 'session, no hold', sessionHoldMs: 0, bursts: o.bursts },
  ];
  // The first two share one daemon (the hold only acts on session keys); the hold off needs its own config.
  for (const sessionHoldMs of [DEFAULT_SESSION_HOLD_MS, 0]) {
    const model = { ...modelConfig('coder', o.modelPath, { slots: o.slots, replicas: 1, args: o.args }), ctxPerSlot: 1024 };
    const base = { maxWaiting: 256, timeoutMs: 120_000, backgroundMaxWaitMs: 30_000, handoffTokens: DEFAULT_HANDOFF_TOKENS };
    const host = await hostDaemon({ models: [model], routing: 'slot-aware', queue: { ...base, sessionHoldMs }, env: ctx.env });
    const agent = new Agent({ connections: 64 });
    try {
      const { daemon } = host;
      await Promise.all(daemon.supervisor.instances('coder').map((i) => i.ensureReady({ signal: ctx.signal })));
      // Warm-up (connections, the daemon's first request, llama-server's first infill), not measured:
      // no session key, and every burst only counts leases accepted after it started.
      const warm = await infill({ url: daemon.url, token: daemon.token, agent, o, signal: ctx.signal }, BEFORE);
      if (!warm.ok) throw new SlotwiseError('SW_ERR_UPSTREAM', `bench typing: warm-up /infill request failed: ${warm.error ?? 'unknown'}`);
      const records: LeaseRecord[] = [];
      daemon.scheduler.on('lease', (r) => records.push(r));
      for (const p of plan.filter((x) => x.sessionHoldMs === sessionHoldMs)) {
        ctx.progress?.line(`typing: ${p.mode}, ${p.bursts} burst(s) of ${o.keystrokes} /infill requests ${o.gapMs} ms apart, n_predict ${o.nPredict}, 1 × ${o.slots} slots`);
        const bursts: TypingBurst[] = [];
        for (let b = 0; b < p.bursts; b++) {
          ctx.progress?.update(`typing, ${p.mode}: burst ${b + 1}/${p.bursts}`);
          const session = p.mode === 'no session' ? undefined : `file:///bench/typing-${p.mode === 'session' ? 'hold' : 'nohold'}.py`;
          bursts.push(await burst({ url: daemon.url, token: daemon.token, agent, records, session, o, signal: ctx.signal }));
          await sleep(o.pauseMs);
        }
        const slot = bursts.reduce((n, x) => n + x.slotMs, 0);
        const wasted = bursts.reduce((n, x) => n + x.wastedSlotMs, 0);
        runs.push({
          mode: p.mode,
          sessionHoldMs: p.sessionHoldMs,
          bursts,
          wastedFraction: slot > 0 ? wasted / slot : NaN,
          finalTtftMs: summarize(bursts.flatMap((x) => (x.finalTtftMs !== undefined ? [x.finalTtftMs] : []))),
        });
      }
    } finally {
      await agent.close();
      await host.close();
    }
  }
  const order: TypingRun['mode'][] = ['session', 'session, no hold', 'no session'];
  runs.sort((a, b) => order.indexOf(a.mode) - order.indexOf(b.mode));
  return { keystrokes: o.keystrokes, gapMs: o.gapMs, pauseMs: o.pauseMs, nPredict: o.nPredict, slots: o.slots, runs };
}

interface Sent {
  status?: number;
  requestId?: string;
  ttftMs?: number;
  e2eMs?: number;
  ok: boolean;
  error?: string;
}

async function burst(a: { url: string; token: string; agent: Agent; records: LeaseRecord[]; session?: string; o: TypingOptions; signal?: AbortSignal }): Promise<TypingBurst> {
  const { o } = a;
  const startedAt = Date.now();
  const sent: Promise<Sent>[] = [];
  const sentAt: number[] = [];
  for (let i = 0; i < o.keystrokes; i++) {
    const typed = TYPED.slice(0, Math.min(TYPED.length, i + 1));
    sentAt.push(performance.now());
    sent.push(infill(a, BEFORE + typed));
    // Each keystroke a gap after the one before, as typed: a late timer is not made up by a shorter gap.
    if (i < o.keystrokes - 1) await sleep(Math.max(0, sentAt[i]! + o.gapMs - performance.now()));
  }
  const gaps = sentAt.slice(1).map((t, i) => t - sentAt[i]!);
  const results = await Promise.all(sent);
  const final = results.at(-1)!;
  // The final lease is released just after its last byte reached the client: wait for every record.
  const ids = new Set(results.flatMap((r) => (r.requestId ? [r.requestId] : [])));
  const until = Date.now() + 10_000;
  while (Date.now() < until && [...ids].some((id) => !a.records.some((r) => r.requestId === id))) await sleep(10);
  const mine = a.records.filter((r) => r.acceptedAt >= startedAt && (a.session === undefined ? r.session === undefined : r.session === a.session));
  const time = burstSlotTime(mine, final.requestId);
  const errors = [...new Set(results.filter((r) => !r.ok && r.status !== 409).map((r) => r.error ?? 'unknown'))].slice(0, 5);
  return {
    requests: results.length,
    leased: time.leased,
    superseded: results.filter((r) => r.status === 409).length,
    slotMs: time.slotMs,
    wastedSlotMs: time.wastedSlotMs,
    ...(final.ttftMs !== undefined ? { finalTtftMs: final.ttftMs } : {}),
    ...(final.e2eMs !== undefined ? { finalE2eMs: final.e2eMs } : {}),
    finalOk: final.ok,
    gapMs: summarize(gaps),
    errors,
  };
}

/** One streamed /infill request; never throws. */
async function infill(a: { url: string; token: string; agent: Agent; session?: string; o: TypingOptions; signal?: AbortSignal }, prefix: string): Promise<Sent> {
  const start = performance.now();
  const out: Sent = { ok: false };
  try {
    const res = await request(`${a.url}/infill`, {
      method: 'POST',
      dispatcher: a.agent,
      signal: a.signal,
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${a.token}`,
        ...(a.session !== undefined ? { 'x-slotwise-session': a.session } : {}),
      },
      body: JSON.stringify({ model: 'coder', input_prefix: prefix, input_suffix: AFTER, n_predict: a.o.nPredict, ignore_eos: true, temperature: 0, stream: true, cache_prompt: true }),
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    out.status = res.statusCode;
    const id = res.headers[REQUEST_ID_HEADER];
    if (typeof id === 'string') out.requestId = id;
    if (res.statusCode !== 200) {
      out.error = `HTTP ${res.statusCode}: ${errorMessage(await res.body.text())}`;
      return out;
    }
    for await (const data of sseData(res.body)) {
      if (data === '[DONE]') continue;
      const chunk = JSON.parse(data) as { content?: string; stop?: boolean; error?: { code?: string; message?: string } };
      if (chunk.error) {
        out.error = `stream error: ${firstLine(chunk.error.message ?? 'unknown')}`;
        // A stream superseded after it started ends with this event: it counts as superseded.
        if (chunk.error.code === 'SW_ERR_SUPERSEDED') out.status = 409;
        break;
      }
      if (chunk.content) out.ttftMs ??= performance.now() - start;
      if (chunk.stop) out.ok = true;
    }
    if (!out.ok && !out.error) out.error = 'stream ended without a stop chunk';
  } catch (err) {
    out.error = firstLine(err instanceof Error ? err.message : String(err));
  } finally {
    out.e2eMs = performance.now() - start;
  }
  return out;
}
