// `slotwise bench`: throughput, TTFT and queue wait through the daemon vs straight to llama-server,
// slot use vs GPU/CPU %, routing, and many-stream load. Writes bench.json, bench.md and bench.svg.
import { setMaxListeners } from 'node:events';
import { relative } from 'node:path';
import { SlotwiseError } from '../../shared/errors';
import { PROGRESS_ENV } from '../../bench/client-process';
import { parseMix } from '../../bench/load';
import { fmt } from '../../bench/report-md';
import { CHAT, runBench, STANDARD, type BenchRequest } from '../../bench/run';
import { HOP_WARM_UP, type Progress } from '../../bench/sweep';
import type { BenchReport } from '../../bench/types';
import { prepareReportDir, writeReport } from '../../bench/write-report';
import { soak, writeSoakReport, type SoakRequest } from '../../bench/soak-run';
import { renderSoakMarkdown } from '../../bench/soak-report';
import type { Command, CommandContext } from './command';
import { intValue } from '../args';

const HELP = `slotwise bench [--model M] [--concurrency 1,2,4,8,16] [--requests N] [--max-tokens N | --mix T:W,…]
               [--direct] [--routing slot-aware|round-robin] [--slots N] [--replicas N] [--out DIR]
slotwise bench --workload chat [--model M] [--slots N] [--replicas N] [--think-ms N] [--out DIR]
slotwise bench --attach [--model M] [options above but --routing/--slots/--replicas]
slotwise bench --standard [--out DIR]
slotwise bench --soak MINUTES [--clients N] [--interval SECONDS] [--model M] [--slots N] [--replicas N] [--attach] [--out DIR]

Streams completions (POST /v1/completions, stream, temperature 0, ignore_eos) at each concurrency
level and measures tokens/s, TTFT, end-to-end time and queue wait; polls /api/status every 250 ms
for slots busy and GPU/CPU %. Writes DIR/bench.json (every number), bench.md and bench.svg.

By default it starts its own daemon in this process (temp state dir, any free port) with model M:
a model of the config file, a .gguf path, or (none given) the cached tiny random-weight model.
The requests come from a separate process so the daemon's loop and CPU share are its own.

  --model M            model name or .gguf path (default: the tiny model)
  --concurrency LIST   levels, comma-separated (default 1,2,4,8,16)
  --requests N         requests per level (default 32)
  --per-client N       at least N requests per client: a level of c clients runs max(--requests, N × c)
  --warm-up N          short requests through the daemon (and the bare proxy) before the first level, so
                       V8 has compiled its per-request code as in a daemon that has served a while
                       (default ${HOP_WARM_UP.requests}, at most ${HOP_WARM_UP.maxMs / 1000} s; 0: none)
  --max-tokens N       tokens per request (default 64)
  --mix T:W,…          mixed lengths instead: max_tokens:weight, e.g. 16:3,256:1
  --direct             also run each level straight against llama-server, interleaved
  --routing MODE       slot-aware (default) or round-robin
  --slots N            slots per llama-server (default: the model's, else 4)
  --replicas N         llama-server processes (default: the model's, else 1)
  --workload chat      instead of the sweep: ${CHAT.plan.conversations} conversations × ${CHAT.plan.turns} turns with a growing history
                       (~300–1,500 prompt tokens: each turn sends back the ${CHAT.plan.maxTokens}-token reply the model generated
                       and a new user message, ~${CHAT.plan.thinkMs / 1000} s after the reply, --think-ms; conversations start spread over ${CHAT.plan.startSpreadMs / 1000} s),
                       ${CHAT.replicas} × ${CHAT.slots} slots, prompt-cache affinity off and on ${CHAT.rounds} times (off, on, on, off; pooled): TTFT and llama-server's
                       cache hit ratio (timings.cache_n/prompt_n); default model: the tiny one at dim ${CHAT.model.dim} × ${CHAT.model.layers} layers;
                       a configured model runs with its own args, ctxPerSlot (at least ${CHAT.ctxPerSlot}) and promptCacheMiB
  --think-ms N         chat: the mean pause between a reply's end and the next turn, ms (default ${CHAT.plan.thinkMs}; each
                       0.5–1.5 × N, seeded). A longer pause keeps a slow machine's slots from all being busy, where
                       the queue, the same with and without affinity, would be most of the time to first token
  --attach             bench the daemon already running for --state-dir instead
  --standard           the fixed suite of \`npm run bench\`: sweep (1 × ${STANDARD.sweep.slots} slots, daemon vs direct),
                       routing (${STANDARD.routing.replicas} × ${STANDARD.routing.slots} slots, slot-aware vs round-robin on a mixed load),
                       the same sweep against a stand-in upstream at GPU pace (${STANDARD.gpuPace.tokenMs} ms a token: the hop alone),
                       ${STANDARD.load.streams} streams against a stand-in upstream (event-loop lag, RSS),
                       the model on demand (${STANDARD.onDemand.repetitions} × cold vs warm first token; load state → status push delay),
                       typing bursts (${STANDARD.typing.keystrokes} /infill requests ${STANDARD.typing.gapMs} ms apart on a session: slot time on superseded work),
                       priority (interactive requests under ${STANDARD.priority.backgroundStreams} background streams, priority on and off)
  --soak MINUTES       a long run instead of a sweep (\`npm run soak\` = 10 min): --clients N (default 6) closed-loop
                       clients with random prompt and output lengths and ~10% aborted mid-stream, against a
                       daemon in its own process. One row per --interval (default 60 s): requests, p50/p99,
                       errors, daemon and llama-server RSS; at the end the daemon's outcome counts vs the
                       clients'. Writes DIR/soak.json and soak.md; exits 1 when the counts differ.
  --out DIR            where the report goes (default bench-out)

The goals (throughput ≥ 0.99 × direct, added TTFT ≤ 1 ms p50 / ≤ 3 ms p99; at GPU pace ≥ 0.995,
≤ 0.5 ms / ≤ 2 ms; slot-aware p95 ≥ 1.3× better, 1,000 streams with loop lag p99 < 20 ms and RSS
< 200 MB; chat: TTFT p50 ≥ 3× lower with affinity, hit ratio ≥ 80 %) are reported, never enforced:
the exit code is 0 whenever the run finished.`;

export const benchCommand: Command = {
  summary: 'measure throughput, TTFT and queue wait through the daemon vs direct; writes bench.json/md/svg',
  help: HELP,
  options: {
    model: { type: 'string' },
    concurrency: { type: 'string' },
    requests: { type: 'string' },
    'per-client': { type: 'string' },
    'warm-up': { type: 'string' },
    'max-tokens': { type: 'string' },
    mix: { type: 'string' },
    direct: { type: 'boolean' },
    routing: { type: 'string' },
    slots: { type: 'string' },
    replicas: { type: 'string' },
    attach: { type: 'boolean' },
    standard: { type: 'boolean' },
    workload: { type: 'string' },
    soak: { type: 'string' },
    clients: { type: 'string' },
    interval: { type: 'string' },
    'think-ms': { type: 'string' },
    out: { type: 'string' },
  },
  async run(ctx) {
    const abort = new AbortController();
    // Every in-flight request listens on this signal: thousands at the load level.
    setMaxListeners(0, abort.signal);
    const onSignal = (): void => abort.abort(new SlotwiseError('SW_ERR_CANCELLED', 'bench cancelled'));
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const progress = progressPrinter(ctx);
    try {
      const out = String(ctx.values.out ?? 'bench-out');
      if (ctx.values.soak !== undefined) {
        const soakReq = parseSoakRequest(ctx, abort.signal, progress);
        await prepareReportDir(out);
        const report = await soak(soakReq);
        progress.done();
        const files = await writeSoakReport(out, report);
        ctx.stdout.write(`${renderSoakMarkdown(report)}\nreport: ${relative(process.cwd(), files.md) || files.md}, ${relative(process.cwd(), files.json) || files.json}\n`);
        return report.outcomesMatch ? 0 : 1;
      }
      const req = parseRequest(ctx, abort.signal, progress);
      await prepareReportDir(out);
      const report = await runBench(req);
      progress.done();
      const files = await writeReport(out, report);
      ctx.stdout.write(summary(report, files));
      return 0;
    } catch (err) {
      progress.done();
      throw abort.signal.aborted ? abort.signal.reason : err;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};

function usage(message: string): SlotwiseError {
  return new SlotwiseError('SW_ERR_USAGE', `bench: ${message} — see \`slotwise bench --help\``);
}

function positiveInt(ctx: CommandContext, name: string, fallback: number): number {
  const raw = ctx.values[name];
  return raw === undefined ? fallback : intValue(`--${name}`, String(raw), 1);
}

function optionalInt(ctx: CommandContext, name: string): number | undefined {
  return ctx.values[name] === undefined ? undefined : positiveInt(ctx, name, 1);
}

export function parseSoakRequest(ctx: CommandContext, signal: AbortSignal, progress: Progress): SoakRequest {
  const v = ctx.values;
  if (ctx.positionals.length) throw usage(`unexpected argument "${ctx.positionals[0]}"`);
  const minutes = Number(v.soak);
  if (!Number.isFinite(minutes) || minutes <= 0) throw usage(`--soak must be a number of minutes > 0 (e.g. 10 or 0.33), got "${String(v.soak)}"`);
  const extra = ['standard', 'concurrency', 'requests', 'max-tokens', 'mix', 'direct', 'routing'].filter((k) => v[k] !== undefined);
  if (extra.length) throw usage(`--soak sets its own load; drop --${extra.join(', --')}`);
  if (v.attach && (v.slots !== undefined || v.replicas !== undefined)) throw usage('--attach soaks the daemon as it is configured; drop --slots/--replicas');
  const intervalS = v.interval === undefined ? 60 : Number(v.interval);
  if (!Number.isFinite(intervalS) || intervalS < 1) throw usage(`--interval must be a number of seconds >= 1, got "${String(v.interval)}"`);
  const cli = process.argv[1];
  if (!cli || !/(^|[\\/])cli\.js$/.test(cli)) throw usage('--soak runs the daemon as `node dist/cli.js daemon`: start it through the CLI');
  return {
    minutes,
    clients: positiveInt(ctx, 'clients', 6),
    intervalMs: Math.round(intervalS * 1000),
    attach: v.attach === true,
    model: v.model === undefined ? undefined : String(v.model),
    slots: optionalInt(ctx, 'slots'),
    replicas: optionalInt(ctx, 'replicas'),
    cliPath: cli,
    stateDir: ctx.stateDir,
    configPath: ctx.configPath,
    env: ctx.env,
    signal,
    progress,
    setupStream: ctx.stderr,
  };
}

/** Validates the flags into one request; every problem is one usage line. */
export function parseRequest(ctx: CommandContext, signal: AbortSignal, progress: Progress): BenchRequest {
  const v = ctx.values;
  if (ctx.positionals.length) throw usage(`unexpected argument "${ctx.positionals[0]}"`);
  if (v.standard && v.attach) throw usage('--standard and --attach exclude each other');
  for (const k of ['clients', 'interval']) if (v[k] !== undefined) throw usage(`--${k} belongs to --soak`);
  if (v.standard) {
    const extra = ['model', 'concurrency', 'requests', 'max-tokens', 'mix', 'direct', 'routing', 'slots', 'replicas', 'warm-up'].filter((k) => v[k] !== undefined);
    if (extra.length) throw usage(`--standard runs a fixed suite; drop --${extra.join(', --')}`);
    if (v.workload !== undefined) throw usage('--standard runs a fixed suite; drop --workload');
  }
  const workload = v.workload ?? 'sweep';
  if (workload !== 'sweep' && workload !== 'chat') throw usage(`--workload must be sweep or chat, got "${String(workload)}"`);
  if (workload === 'chat') {
    if (v.standard || v.attach) throw usage('--workload chat hosts its own daemons; drop --standard/--attach');
    const extra = ['concurrency', 'requests', 'max-tokens', 'mix', 'direct', 'routing', 'warm-up'].filter((k) => v[k] !== undefined);
    if (extra.length) throw usage(`--workload chat has its own fixed load; drop --${extra.join(', --')}`);
  } else if (v['think-ms'] !== undefined) throw usage('--think-ms belongs to --workload chat');
  if (v.attach) {
    const extra = ['routing', 'slots', 'replicas'].filter((k) => v[k] !== undefined);
    if (extra.length) throw usage(`--attach benches the daemon as it is configured; drop --${extra.join(', --')}`);
  }
  const concurrency = String(v.concurrency ?? '1,2,4,8,16')
    .split(',')
    .map((s) => s.trim());
  const levels = concurrency.map(Number);
  if (!levels.length || levels.some((n) => !Number.isInteger(n) || n < 1)) throw usage(`--concurrency must list positive integers like 1,2,4,8, got "${String(v.concurrency)}"`);
  if (v.mix !== undefined && v['max-tokens'] !== undefined) throw usage('give --max-tokens or --mix, not both');
  const mix = v.mix !== undefined ? parseMix(String(v.mix)) : [{ maxTokens: positiveInt(ctx, 'max-tokens', 64), weight: 1 }];
  if (!mix) throw usage(`--mix must be max_tokens:weight pairs like 16:3,256:1, got "${String(v.mix)}"`);
  const routing = v.routing ?? 'slot-aware';
  if (routing !== 'slot-aware' && routing !== 'round-robin') throw usage(`--routing must be slot-aware or round-robin, got "${String(routing)}"`);
  return {
    mode: v.standard ? 'standard' : v.attach ? 'attach' : 'custom',
    model: v.model === undefined ? undefined : String(v.model),
    concurrency: [...new Set(levels)],
    requests: positiveInt(ctx, 'requests', 32),
    ...(v['per-client'] !== undefined ? { perClient: positiveInt(ctx, 'per-client', 1) } : {}),
    ...(v['warm-up'] !== undefined ? { warmUp: intValue('--warm-up', String(v['warm-up']), 0) } : {}),
    mix,
    direct: v.direct === true,
    workload,
    routing,
    slots: optionalInt(ctx, 'slots'),
    replicas: optionalInt(ctx, 'replicas'),
    ...(v['think-ms'] !== undefined ? { thinkMs: intValue('--think-ms', String(v['think-ms']), 0) } : {}),
    stateDir: ctx.stateDir,
    configPath: ctx.configPath,
    env: ctx.env,
    cliPath: cliPath(ctx.env),
    daemonCliPath: runningCli(),
    signal,
    progress,
    setupStream: ctx.stderr,
  };
}

/** The CLI script when running as the CLI (so the load generator can run as `bench --attach` in its own process). */
function cliPath(env: NodeJS.ProcessEnv): string | undefined {
  if (env.SLOTWISE_BENCH_CLIENT === 'in-process') return undefined;
  return runningCli();
}

/** This process's script when it is the CLI (dist/cli.js), else undefined (e.g. a test runner). */
function runningCli(): string | undefined {
  const main = process.argv[1];
  return main && /(^|[\\/])cli\.js$/.test(main) ? main : undefined;
}

interface Printer extends Progress {
  /** Clears a pending in-place line. */
  done(): void;
}

/**
 * Progress on stderr. A terminal gets one redrawn status line; a pipe gets whole lines only, except
 * for a parent bench (PROGRESS_ENV=lines), which gets updates too, marked `~ `.
 */
function progressPrinter(ctx: CommandContext): Printer {
  const err = ctx.stderr;
  const tty = err.isTTY === true;
  const forParent = ctx.env[PROGRESS_ENV] === 'lines';
  let open = false;
  let lastUpdate = 0;
  const clear = (): void => {
    if (open) err.write('\r\x1b[2K');
    open = false;
  };
  return {
    line(text) {
      clear();
      err.write(`${text}\n`);
    },
    update(text) {
      const now = Date.now();
      if (now - lastUpdate < 100) return; // at most 10 redraws a second
      lastUpdate = now;
      if (forParent) err.write(`~ ${text}\n`);
      else if (tty) {
        err.write(`\r\x1b[2K${text.slice(0, (err.columns || 100) - 1)}`);
        open = true;
      }
    },
    done: clear,
  };
}

function summary(r: BenchReport, files: { json: string; md: string; svg: string }): string {
  const rel = (p: string): string => relative(process.cwd(), p) || p;
  const lines = r.targets.filter((t) => t.met !== undefined).map((t) => `  ${t.met ? '✓' : '✗'} ${t.name}: ${t.measured} (goal ${t.goal})`);
  const top = r.sweep.levels.filter((l) => l.target === 'daemon').sort((a, b) => b.tokensPerSecond - a.tokensPerSecond)[0];
  if (top) lines.unshift(`  best: ${fmt(top.tokensPerSecond, 0)} tok/s through the daemon at c=${top.concurrency}`);
  return [`bench finished in ${fmt(r.durationMs / 1000, 0)} s`, ...lines, `report: ${rel(files.md)}, ${rel(files.json)}, ${rel(files.svg)}`, ''].join('\n');
}
