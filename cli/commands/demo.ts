// `slotwise demo` (what `npm start` runs): set up llama-server if missing, write the tiny model,
// run a daemon with one model × 4 slots in this process, and show live status until Ctrl-C.
import { join } from 'node:path';
import { busySlotsOf } from '../../shared/slots';
import type { Config } from '../../daemon/config/types';
import { defaultConfig } from '../../daemon/config/validate';
import { DEFAULT_PROMPT_CACHE_MIB } from '../../daemon/config/rules';
import { RpcClient } from '../../shared/rpc-client';
import { runSetup } from '../../toolchain/setup';
import { ensureCachedTinyModel } from '../../gguf/tiny-model';
import { startDaemon } from '../../daemon/main';
import type { Snapshot } from '../../shared/protocol';
import { untilSignal, type Command, type CommandContext } from './command';
import { renderStatus } from './render-status';
import { intValue } from '../args';

export const demoCommand: Command = {
  summary: 'the demo: a daemon with the embedded tiny model × 4 slots and a live status table',
  help: [
    'slotwise demo [--slots N] [--burst N] [--max-tokens N] [--port N] [--state-dir DIR]',
    '',
    'Builds llama-server if needed, writes the tiny random-weight model into the cache, starts a daemon',
    '(default state dir: <state dir>/demo, any free port) and redraws the status on every change.',
    'Ctrl-C stops the daemon and its llama-server.',
    '  --slots N            slots of the tiny model (default 4)',
    '  --burst N            prompts sent at once when it is ready (default 3 × slots)',
    '  --max-tokens N       tokens per prompt (default 256)',
    '  --exit-when-ready    exit once the model is ready, before the burst',
    '  --exit-after-burst   exit once the burst has finished',
  ].join('\n'),
  options: { slots: { type: 'string' }, burst: { type: 'string' }, 'max-tokens': { type: 'string' }, 'exit-when-ready': { type: 'boolean' }, 'exit-after-burst': { type: 'boolean' } },
  async run(ctx) {
    const slots = positiveInt(ctx, 'slots', 4);
    const burstSize = positiveInt(ctx, 'burst', slots * 3, 0);
    const maxTokens = positiveInt(ctx, 'max-tokens', 256);
    await runSetup({ env: ctx.env, quietIfCached: true, stderr: ctx.stderr });
    // dim 256 × 4 layers: still tiny (83 MB) but slow enough on a CPU that slots visibly fill and a queue forms.
    ctx.stderr.write('writing the demo model (random weights, llama tokenizer)…\n');
    const modelPath = await ensureCachedTinyModel({ env: ctx.env, dim: 256, layers: 4 });
    const base = defaultConfig();
    const config: Config = {
      ...base,
      listen: { ...base.listen, host: '127.0.0.1', port: ctx.port ?? 0 },
      shutdownGraceMs: 0, // Ctrl-C ends the demo's own burst at once (they get job.error), no 10-s wait
      models: [
        { name: 'tiny', path: modelPath, slots, ctxPerSlot: 1024, gpuLayers: 'auto', replicas: 1, maxReplicas: 1, autostart: true, args: [], affinity: true, kind: 'completion', reservedSlots: 0, promptCacheMiB: DEFAULT_PROMPT_CACHE_MIB, load: 'always', idleUnloadMs: 0, pinned: false, maxSlots: 16 },
      ],
    };
    const stateDir = ctx.values['state-dir'] ? ctx.stateDir : join(ctx.stateDir, 'demo');
    const daemon = await startDaemon({ stateDir, config, env: ctx.env });
    const client = new RpcClient({ url: daemon.url, token: daemon.token });
    const tty = ctx.stdout.isTTY === true;
    let lastPlain = '';
    const burst = new Burst(burstSize);
    const draw = (s: Snapshot): void => {
      const text = renderStatus(s, { color: tty && !ctx.env.NO_COLOR, slots: false });
      if (tty) {
        ctx.stdout.write(`\x1b[H\x1b[2J${text}\n\n${burst.line()}\n\n(Ctrl-C to stop · OpenAI API at ${daemon.url}/v1 · token in ${join(stateDir, 'token')})\n`);
      } else {
        // Without a terminal, print a line only when an instance's state, slot use or the queue changed.
        const summary = s.models
          .map((m) => `${m.instances.map((i) => `${i.id} ${i.state} ${busySlotsOf(i, m.slotsPerInstance)}/${i.slots.length}`).join(', ')} queue ${m.queue.waiting}`)
          .join('; ');
        if (summary !== lastPlain) ctx.stdout.write(`${new Date().toISOString()} ${summary} · ${s.capacity.verdict}: ${s.capacity.reason}\n`);
        lastPlain = summary;
      }
    };
    let ready = false;
    const readyNow = (s: Snapshot): boolean => s.models.every((m) => m.instances.length > 0 && m.instances.every((i) => i.state === 'ready'));
    const readyPromise = new Promise<void>((resolve) => {
      client.on('status', ({ snapshot }) => {
        draw(snapshot);
        if (!ready && readyNow(snapshot)) {
          ready = true;
          resolve();
        }
      });
    });
    const first = await client.call('status.subscribe');
    draw(first);
    if (readyNow(first)) ready = true;
    try {
      if (!ready) await Promise.race([readyPromise, daemon.closed]);
      if (ctx.values['exit-when-ready']) {
        const s = await client.call('status.get');
        ctx.stdout.write(`${renderStatus(s, { slots: true })}\n`);
        return ready ? 0 : 1;
      }
      const burstDone = burst.fire(client, maxTokens, () => void client.call('status.get').then(draw, () => undefined /* daemon closing: nothing to draw */));
      if (ctx.values['exit-after-burst']) {
        await burstDone;
        ctx.stdout.write(`${burst.line()}\n`);
        return burst.failed === 0 ? 0 : 1;
      }
      await Promise.race([untilSignal(), daemon.closed]);
      return 0;
    } finally {
      client.close();
      await daemon.shutdown('demo finished');
    }
  },
};

function positiveInt(ctx: CommandContext, name: string, fallback: number, min = 1): number {
  const raw = ctx.values[name];
  return raw === undefined ? fallback : intValue(`--${name}`, String(raw), min);
}

const PROMPTS = ['Write a haiku about slots.', 'Explain continuous batching.', 'Tell me a story about a GPU.', 'List three prime numbers.', 'Why is the sky blue?', 'Describe a queue.'];

/** A burst of prompt jobs, more than there are slots, and what came of it. */
class Burst {
  readonly size: number;
  done = 0;
  failed = 0;
  tokens = 0;
  #waits: number[] = [];
  #startedAt = 0;
  #endedAt = 0;

  constructor(size: number) {
    this.size = size;
  }

  /** Submits every prompt at once; resolves when all have ended. */
  async fire(client: RpcClient, maxTokens: number, changed: () => void): Promise<void> {
    if (this.size === 0) return;
    this.#startedAt = Date.now();
    const ends = new Map<string, () => void>();
    const finish = (jobId: string): void => {
      ends.get(jobId)?.();
      ends.delete(jobId);
    };
    client.on('job.end', (e) => {
      this.done++;
      this.tokens += e.usage.completionTokens;
      this.#waits.push(e.timings.queuedMs);
      finish(e.jobId);
      changed();
    });
    client.on('job.error', (e) => {
      this.failed++;
      finish(e.jobId);
      changed();
    });
    await Promise.all(
      Array.from({ length: this.size }, async (_, i) => {
        const { jobId } = await client.call('prompt.submit', { prompt: PROMPTS[i % PROMPTS.length]!, maxTokens, temperature: 0.8 });
        await new Promise<void>((resolve) => ends.set(jobId, resolve));
      }),
    );
    this.#endedAt = Date.now();
  }

  line(): string {
    if (this.size === 0) return 'No burst (--burst 0).';
    if (!this.#startedAt) return `Burst of ${this.size} prompts starts when the model is ready…`;
    const secs = ((this.#endedAt || Date.now()) - this.#startedAt) / 1000;
    const waits = [...this.#waits].sort((a, b) => a - b);
    const mean = waits.length ? waits.reduce((a, b) => a + b, 0) / waits.length : 0;
    const p95 = waits.length ? waits[Math.min(waits.length - 1, Math.ceil(waits.length * 0.95) - 1)]! : 0;
    const head = this.#endedAt ? `Burst done: ${this.done} of ${this.size} prompts` : `Burst: ${this.done} of ${this.size} prompts done`;
    return `${head}${this.failed ? `, ${this.failed} failed` : ''} · ${this.tokens} tokens in ${secs.toFixed(1)} s = ${(this.tokens / Math.max(secs, 0.001)).toFixed(0)} tok/s · queue wait mean ${(mean / 1000).toFixed(2)} s, p95 ${(p95 / 1000).toFixed(2)} s`;
  }
}
