// Models on demand: request-to-first-token with the model unloaded (cold: the load is in it) and
// loaded (warm), and how long each load state change (unloaded → loading → ready → unloaded) takes to
// reach a WebSocket status subscriber — the subscription `slotwise status --watch` and the extension use.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'undici';
import { RpcClient } from '../shared/rpc-client';
import type { ModelLoadStatus, Snapshot } from '../shared/protocol';
import { hostDaemon } from './daemon-host';
import { modelConfig, BENCH_PROMPT, type ScenarioContext } from './scenarios';
import { summarize } from './stats';
import { streamCompletion } from './stream-request';
import type { OnDemandResult } from './types';

export interface OnDemandOptions {
  modelPath: string;
  /** Cold loads, and as many warm requests. */
  repetitions: number;
  slots: number;
  maxTokens: number;
  /** Extra llama-server flags. */
  args?: string[];
}

type LoadState = ModelLoadStatus['state'];

/** A load state change as the daemon stamped it (`load.since`) and when the subscriber got it. */
interface SeenChange {
  state: LoadState;
  since: number;
  receivedAt: number;
}

export async function onDemandScenario(ctx: ScenarioContext, o: OnDemandOptions): Promise<OnDemandResult> {
  ctx.progress?.line(`on demand: ${o.repetitions} cold loads and ${o.repetitions} warm requests (${o.slots} slot${o.slots === 1 ? '' : 's'}, max_tokens ${o.maxTokens}), load state pushes timed`);
  const model = { ...modelConfig('od', o.modelPath, { slots: o.slots, replicas: 1, args: o.args }), load: 'on-demand' as const, autostart: false };
  const host = await hostDaemon({ models: [model], routing: 'slot-aware', env: ctx.env });
  const dispatcher = new Agent({ connections: 4 });
  const ws = new RpcClient({ url: host.daemon.url, token: host.daemon.token });
  try {
    const seen: SeenChange[] = [];
    const record = (snap: Snapshot): void => {
      const load = snap.models.find((m) => m.name === model.name)?.load;
      const last = seen.at(-1);
      // Date.now() on both sides: the daemon runs in this process, so the clocks are one.
      if (load?.since !== undefined && (last?.state !== load.state || last.since !== load.since)) seen.push({ state: load.state, since: load.since, receivedAt: Date.now() });
    };
    ws.on('status', ({ snapshot }) => record(snapshot));
    await ws.opened;
    record((await ws.call('status.subscribe')) as Snapshot);
    const until = async (state: LoadState, what: string): Promise<void> => {
      const deadline = Date.now() + 60_000;
      while (seen.at(-1)?.state !== state) {
        if (Date.now() > deadline || ctx.signal?.aborted) throw new Error(`bench on demand: no ${what} within 60 s`);
        await sleep(10);
      }
    };
    const ttft = async (): Promise<{ ms?: number; error?: string }> => {
      const s = await streamCompletion({ target: 'daemon', baseUrl: host.daemon.url, token: host.daemon.token, model: model.name, prompt: BENCH_PROMPT, maxTokens: o.maxTokens, dispatcher, signal: ctx.signal, t0: performance.now(), priority: 'interactive' });
      return s.ok && s.ttftMs !== undefined ? { ms: s.ttftMs } : { error: s.error ?? 'no token' };
    };
    const cold: number[] = [];
    const warm: number[] = [];
    const errors: string[] = [];
    for (let i = 0; i < o.repetitions; i++) {
      ctx.progress?.update(`on demand: round ${i + 1}/${o.repetitions}`);
      const c = await ttft(); // unloaded: this request loads it
      if (c.ms !== undefined) cold.push(c.ms);
      else errors.push(`cold: ${c.error}`);
      await until('ready', 'ready push');
      const w = await ttft();
      if (w.ms !== undefined) warm.push(w.ms);
      else errors.push(`warm: ${w.error}`);
      await ws.call('models.stop', { model: model.name }); // the unload API (`slotwise down`)
      await until('unloaded', 'unloaded push');
    }
    const delays = (pick: (c: SeenChange) => boolean): number[] => seen.slice(1).filter(pick).map((c) => c.receivedAt - c.since);
    return {
      repetitions: o.repetitions,
      slots: o.slots,
      maxTokens: o.maxTokens,
      coldTtftMs: summarize(cold),
      warmTtftMs: summarize(warm),
      statusDelayMs: summarize(delays(() => true)),
      statusDelayByState: {
        loading: summarize(delays((c) => c.state === 'loading')),
        ready: summarize(delays((c) => c.state === 'ready')),
        unloaded: summarize(delays((c) => c.state === 'unloaded')),
      },
      changes: seen.length - 1,
      errors,
    };
  } finally {
    ws.close();
    await dispatcher.close();
    await host.close();
  }
}
