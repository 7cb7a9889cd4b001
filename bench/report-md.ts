// bench.md: the run as Markdown tables, for people and pull requests.
import { levelRequests, STAGE_COLUMNS, sweepSlots } from './aggregate';
import { HOP_WARM_UP } from './sweep';
import type { BenchReport, Comparison, DaemonSide, LevelResult, OnDemandResult, Summary, SweepOptions, SweepResult, TargetCheck } from './types';

/** A number for a table; NaN, null (NaN after JSON) and undefined read as `–`. */
export function fmt(v: number | null | undefined, digits = 1): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits);
}

function row(cells: (string | number)[]): string {
  return `| ${cells.join(' | ')} |`;
}

function table(head: string[], rows: (string | number)[][], align?: ('l' | 'r')[]): string[] {
  const sep = head.map((_, i) => ((align?.[i] ?? (i === 0 ? 'l' : 'r')) === 'r' ? '---:' : ':---'));
  return [row(head), row(sep), ...rows.map(row)];
}

function mark(met: boolean | undefined): string {
  return met === undefined ? '·' : met ? '✓ met' : '✗ missed';
}

function pct(v: number | null | undefined): string {
  return v === undefined || v === null || !Number.isFinite(v) ? '–' : `${fmt(v, 0)} %`;
}

/** Cold vs warm first token of a model loaded on demand, and how fast load state changes reach a status subscriber. */
export function onDemandSection(od: OnDemandResult): string[] {
  const d = od.statusDelayByState;
  return [
    '',
    '## Models on demand',
    '',
    `The tiny model as \`load: "on-demand"\` (${od.slots} slot${od.slots === 1 ? '' : 's'}), ${od.repetitions} rounds: a streamed request (max_tokens ${od.maxTokens}) with the model unloaded ` +
      '(cold: plan, llama-server start, weights, warmup, then the first token), one with it loaded (warm), then `models.stop` (the unload API). ms.',
    '',
    ...table(
      ['first token', 'n', 'p50', 'min', 'max'],
      [
        ['cold (unloaded)', od.coldTtftMs.count, fmt(od.coldTtftMs.p50), fmt(od.coldTtftMs.min), fmt(od.coldTtftMs.max)],
        ['warm (loaded)', od.warmTtftMs.count, fmt(od.warmTtftMs.p50), fmt(od.warmTtftMs.min), fmt(od.warmTtftMs.max)],
      ],
    ),
    '',
    'Load state change (the daemon\'s `load.since`) to a `status.subscribe` WebSocket client receiving it (what `slotwise status --watch` and the extension see), ms:',
    '',
    ...table(
      ['change to', 'n', 'p50', 'max'],
      (['loading', 'ready', 'unloaded'] as const).map((st) => [st, d[st].count, fmt(d[st].p50), fmt(d[st].max)]).concat([['all', od.statusDelayMs.count, fmt(od.statusDelayMs.p50), fmt(od.statusDelayMs.max)]]),
    ),
    ...(od.errors.length ? ['', `Errors: ${od.errors.join('; ')}`] : []),
  ];
}

/** The three largest per-window delays, in time order: `73 ms at 0.8 s, …`. */
export function worstWindows(timeline: readonly { tMs: number; maxMs: number }[]): string {
  const worst = [...timeline].sort((a, b) => b.maxMs - a.maxMs).slice(0, 3).sort((a, b) => a.tMs - b.tMs);
  return worst.map((w) => `${fmt(w.maxMs, 0)} ms at ${fmt(w.tMs / 1000, 1)} s`).join(', ') || 'none recorded';
}

/** The chat runs' host prompt cache setting, in words. */
function hostPromptCache(mib: number | 'auto' | undefined): string {
  if (mib === 0) return "llama-server's host prompt cache off (`promptCacheMiB` 0: a history survives only in the slot that held it)";
  return `llama-server's host prompt cache ${mib === undefined || mib === 'auto' ? 'auto' : `${mib} MiB`} (\`promptCacheMiB\`)`;
}

/** `p50 (n)` of a later-turn placement, `—` in older reports or when no turn ran there. */
function byPlacement(s: Summary | undefined): string {
  return s && s.count > 0 ? `${fmt(s.p50, 2)} (${s.count})` : '—';
}

function chatSection(c: NonNullable<BenchReport['chat']>): string[] {
  return [
    '',
    '## Chat: prompt-cache affinity off vs on',
    '',
    `${c.conversations} conversations × ${c.turns} turns, ` +
      `${c.startSpreadMs ? `starting spread over the first ${fmt(c.startSpreadMs, 0)} ms (as users arrive)` : 'all at once'}, each sending its next turn ` +
      `${c.thinkMs > 0 ? `a seeded 0.5–1.5 × ${fmt(c.thinkMs, 0)} ms (the user reading and writing) after the last answer ended` : 'when the last answer ended'} (seeded system prompt and ` +
      `user messages; each turn's history carries the replies the model generated, temperature 0, max_tokens ${c.maxTokens}` +
      `${c.wordBias ? ', limited by a logit bias to whole-word tokens so they re-tokenize as generated' : ', free text'}); ` +
      `${c.replicas} instances × ${c.slotsPerInstance} slots, a fresh daemon per run, ${hostPromptCache(c.promptCacheMiB)}. ` +
      'Hit ratio: Σ cache_n ÷ Σ (cache_n + prompt_n) from llama-server\'s `timings` in each stream\'s last chunk. ' +
      '"TTFT − queue": TTFT less the daemon\'s queue wait (prefill and the first token once a slot was leased). ' +
      '"on previous replica": the later turns that ran on the replica of the conversation\'s turn before, where llama-server\'s ' +
      'own host prompt cache restores the history even without affinity, so "off" is a hit that often by placement alone; ' +
      '"later, same / other replica": the TTFT p50 (and count) of those later turns and of the rest, which compute the history again. Times in ms.',
    '',
    ...table(
      ['affinity', 'TTFT p50', 'TTFT p95', 'first turn TTFT p50', 'later turns TTFT p50', 'later, same replica', 'later, other replica', 'TTFT − queue p50', 'e2e p50', 'prompt tokens p50 (min–max)', 'prompt tokens Σ', 'computed Σ', 'cache hit', 'on previous replica', 'queue mean', 'failed'],
      c.runs.map((x) => [
        `${x.affinity ? 'on' : 'off'}${(c.rounds ?? 1) > 1 && x.round !== undefined ? ` (round ${x.round + 1})` : ''}`,
        fmt(x.level.ttftMs.p50, 2),
        fmt(x.level.ttftMs.p95, 2),
        fmt(x.firstTurnTtftMs.p50, 2),
        fmt(x.laterTurnTtftMs.p50, 2),
        byPlacement(x.sameReplicaTtftMs),
        byPlacement(x.otherReplicaTtftMs),
        x.ttftLessQueueMs ? fmt(x.ttftLessQueueMs.p50, 2) : '—',
        fmt(x.level.e2eMs.p50),
        `${fmt(x.promptTokens.p50, 0)} (${fmt(x.promptTokens.min, 0)}–${fmt(x.promptTokens.max, 0)})`,
        x.promptTokensTotal.cached + x.promptTokensTotal.processed,
        x.promptTokensTotal.processed,
        pct(x.hitRatio * 100),
        x.sameReplicaShare !== undefined && Number.isFinite(x.sameReplicaShare) ? pct(x.sameReplicaShare * 100) : '—',
        fmt(x.level.queueWaitMs.mean),
        x.level.failed,
      ]),
    ),
    '',
    ...((c.rounds ?? 1) > 1 && c.pooled
      ? [
          `${c.rounds} rounds in the order ${c.runs.map((x) => (x.affinity ? 'on' : 'off')).join(', ')}, so a drift in the machine's load hits both modes alike; ` +
            `pooled over them: ${c.pooled.map((p) => `${p.affinity ? 'on' : 'off'} TTFT p50 ${fmt(p.ttftMs.p50, 2)} ms, cache hit ${pct(p.hitRatio * 100)}`).join('; ')}.`,
          '',
        ]
      : []),
    `TTFT p50 off ÷ on${(c.rounds ?? 1) > 1 ? ' (pooled)' : ''}: **${fmt(c.ttftP50Ratio, 2)}×**.`,
    ...(c.runs.some((x) => x.level.errors.length) ? ['', ...c.runs.filter((x) => x.level.errors.length).map((x) => `- affinity ${x.affinity ? 'on' : 'off'}${x.round !== undefined ? ` (round ${x.round + 1})` : ''}: ${x.level.errors.join('; ')}`)] : []),
  ];
}

function photosSection(p: NonNullable<BenchReport['photos']>): string[] {
  const where = { none: 'no photos', direct: 'straight to the upstream', daemon: 'through the daemon' } as const;
  return [
    '',
    '## Photos: text streams while images are uploaded',
    '',
    `${p.streams} text streams decode at ${p.tokenMs} ms a token through the daemon (stand-in upstream) while another client uploads photos to a vision model, one after another: ` +
      `${fmt(p.photoBytes / 2 ** 20, 1)} MiB JSON bodies, from a worker thread. Each phase lasts ${p.phaseMs} ms, ${p.rounds}× in turn: no photos; photos sent straight to the vision model's upstream (what the uploads cost this machine anyway); photos through the daemon. ` +
      'Token gap: between consecutive chunks of one stream, at the client. Daemon lag: its event loop during the phase, from its /metrics. Times in ms.',
    '',
    ...table(
      ['photos', 'round', 'uploads', 'token gap p50', 'token gap p99', 'token gap max', 'daemon lag p99', 'daemon lag max'],
      p.runs.map((r, i) => [where[r.mode], Math.floor(i / 3) + 1, `${r.photos}${r.failed ? ` (${r.failed} failed)` : ''}`, fmt(r.gapMs.p50, 2), fmt(r.gapMs.p99, 2), fmt(r.gapMs.max, 1), fmt(r.daemonLagMs.p99, 2), fmt(r.daemonLagMs.max, 1)]),
    ),
    '',
    `Token gap p99, pooled: no photos ${fmt(p.gapP99Ms.none, 2)}, straight ${fmt(p.gapP99Ms.direct, 2)}, through the daemon ${fmt(p.gapP99Ms.daemon, 2)}: **${fmt(p.gapP99Ratio, 2)}×** of straight.`,
  ];
}

function typingSection(t: NonNullable<BenchReport['typing']>): string[] {
  const burstRows = t.runs.flatMap((run) =>
    run.bursts.map((b, i) => [
      run.mode,
      i + 1,
      `${b.leased}/${b.requests}`,
      b.superseded,
      fmt(b.slotMs, 0),
      fmt(b.wastedSlotMs, 0),
      fmt(b.finalTtftMs, 0),
      fmt(b.finalE2eMs, 0),
      `${fmt(b.gapMs.p50, 0)} / ${fmt(b.gapMs.max, 0)}`,
      b.finalOk ? 'ok' : b.errors.join('; ') || 'failed',
    ]),
  );
  return [
    '',
    '## Typing: newest wins with the adaptive hold',
    '',
    `Bursts of ${t.keystrokes} streamed \`/infill\` requests ${t.gapMs} ms apart (one more character each), n_predict ${t.nPredict}, ${t.pauseMs} ms pause after each burst's last completion; 1 × ${t.slots} slots. ` +
      '`session`: one X-Slotwise-Session with the adaptive hold (queue.sessionHoldMs ' +
      `${t.runs.find((r) => r.mode === 'session')?.sessionHoldMs ?? '–'} ms); \`session, no hold\`: the same with queue.sessionHoldMs 0 (newest wins alone); \`no session\`: every request kept. ` +
      'Slot time is the daemon\'s own lease records (dispatch → release), not client timings; wasted = slot time of every request but the last keystroke\'s. ' +
      'Final TTFT: the last keystroke\'s request, from its send to its first token (the completion the editor shows). Times in ms.',
    '',
    ...table(
      ['run', 'wasted slot time', 'final TTFT p50', 'final TTFT max'],
      t.runs.map((r) => [r.mode, `${fmt(r.wastedFraction * 100, 1)} %`, fmt(r.finalTtftMs.p50, 0), fmt(r.finalTtftMs.max, 0)]),
    ),
    '',
    ...table(['run', 'burst', 'leased', 'superseded', 'slot time', 'wasted', 'final TTFT', 'final e2e', 'keystroke gap p50 / max', 'final'], burstRows),
  ];
}

function prioritySection(p: NonNullable<BenchReport['priority']>): string[] {
  return [
    '',
    '## Priority: interactive requests under a saturating background load',
    '',
    `${p.backgroundStreams} background streams (max_tokens ${p.backgroundMaxTokens}, each refilled as it ends) on 1 × ${p.slots} slots, and ${p.interactiveRequests} interactive requests ` +
      `(max_tokens ${p.interactiveMaxTokens}) at random times (~${p.meanGapMs} ms apart, seeded), on one daemon: priority on (sent as interactive), then off (sent as background: one class, FIFO). ` +
      '"One slot frees": from the request\'s arrival to the first lease release after it, from the daemon\'s lease records. ' +
      'Upstream: the daemon\'s Server-Timing from slot given to llama-server\'s first byte. ' +
      '"Background given a slot while one waited": background requests granted a slot after an interactive request arrived and before it was granted its own (a slot is granted when its lease begins, or earlier when it is handed off near its predecessor\'s end). Times in ms.',
    '',
    ...table(
      ['priority', 'TTFT p50', 'TTFT p95', 'one slot frees p95', 'queue wait p95', 'TTFT p95 ÷ slot frees p95', 'queue p95 ÷ slot frees p95', 'took the first freed slot', 'background given a slot while one waited', 'upstream p95', 'background done', 'failed'],
      p.runs.map((r) => [
        r.priority ? 'on' : 'off',
        fmt(r.ttftMs.p50, 0),
        fmt(r.ttftMs.p95, 0),
        fmt(r.slotFreeMs.p95, 0),
        fmt(r.queueWaitMs.p95, 0),
        `${fmt(r.ttftOverSlotFree, 2)}×`,
        `${fmt(r.queueWaitOverSlotFree, 2)}×`,
        `${r.tookFirstFreed}/${r.samples.length}`,
        r.backgroundStartsWhileWaiting,
        fmt(r.upstreamP95Ms, 0),
        r.backgroundDone,
        r.samples.filter((s) => !s.ok).length + r.backgroundFailed,
      ]),
    ),
    '',
    'Took the first freed slot: its queue wait ended within 5 ms of the first release after its arrival (otherwise a release went to an earlier interactive request, or to background work: the next column). ' +
      'With priority off every request is background, so background starts count the FIFO ahead of it.',
  ];
}

/** One row per level: throughput, TTFT, e2e, queue wait, slots, CPU/GPU. */
function levelTable(levels: readonly LevelResult[]): string[] {
  return table(
    ['c', 'target', 'tok/s', 'TTFT p50', 'TTFT p95', 'TTFT p99', 'e2e p50', 'e2e p95', 'queue mean', 'queue p95', 'slots in use', 'slots busy (status)', 'llama CPU', 'host CPU', 'GPU', 'failed'],
    levels.map((l) => [
      l.concurrency,
      l.target,
      fmt(l.tokensPerSecond, 0),
      fmt(l.ttftMs.p50, 2),
      fmt(l.ttftMs.p95, 2),
      fmt(l.ttftMs.p99, 2),
      fmt(l.e2eMs.p50),
      fmt(l.e2eMs.p95),
      fmt(l.queueWaitMs.mean),
      fmt(l.queueWaitMs.p95),
      pct(l.utilization.inFlightPct),
      `${fmt(l.utilization.slotPct, 0)} % (peak ${l.utilization.peakBusySlots}/${l.utilization.totalSlots})`,
      pct(l.utilization.cpuPct),
      pct(l.utilization.hostCpuPct),
      pct(l.utilization.gpuPct),
      l.failed,
    ]),
  );
}

/** µs, whole; '–' when not measured. */
function us(v: number | undefined): string {
  return v === undefined ? '–' : String(Math.round(v));
}

/** A sweep's comparisons; the added TTFT of a level above its slots is marked "queued" (the goals leave it out: bench/targets.ts). */
function comparisonTable(comparisons: readonly Comparison[], layout: SweepResult['layout'] | undefined): string[] {
  if (!comparisons.length) return [];
  const slots = sweepSlots(layout) ?? Infinity;
  const added = (c: Comparison, v: number, digits: number): string => `${fmt(v, digits)}${c.concurrency > slots ? ' (queued)' : ''}`;
  if (comparisons.some((c) => c.floor)) {
    const f = (c: Comparison, pick: (x: NonNullable<Comparison['floor']>) => number, digits: number): string => (c.floor ? fmt(pick(c.floor), digits) : '–');
    return [
      '',
      '### Daemon vs direct, and the floor: a bare Node proxy',
      '',
      'The bare proxy (bench/floor-proxy.ts: `http.createServer`, `http.request` on a connection per stream, `pipe`, in a process of its own) runs in front of the same upstream in the same run, reached as the daemon reaches it (its UNIX socket where it listens on one; direct uses its TCP port, as a client without Slotwise would), which closes each stream\'s connection as llama-server does: ' +
        'what any Node proxy hop costs on this machine. Daemon over floor = what the daemon adds beyond it (queue, leases, status, validation). ' +
        'CPU per request: CPU time of the hop\'s own process during the level (all its threads, /proc schedstat) ÷ its requests, in µs; the daemon\'s includes its background work (the /slots polls, the 4 status reads a second the bench makes).',
      '',
      ...table(
        ['c', 'throughput daemon ÷ direct', 'floor ÷ direct', 'added TTFT p50 daemon / floor (ms)', 'added TTFT p99 daemon / floor (ms)', 'daemon over floor p50 (ms)', 'CPU per request daemon / floor (µs)'],
        comparisons.map((c) => [
          c.concurrency,
          fmt(c.throughputRatio, 3),
          f(c, (x) => x.throughputRatio, 3),
          `${added(c, c.addedTtftP50Ms, 2)} / ${f(c, (x) => x.addedTtftP50Ms, 2)}`,
          `${added(c, c.addedTtftP99Ms, 2)} / ${f(c, (x) => x.addedTtftP99Ms, 2)}`,
          c.floor ? fmt(c.addedTtftP50Ms - c.floor.addedTtftP50Ms, 2) : '–',
          `${us(c.cpuUsPerRequest)} / ${us(c.floor?.cpuUsPerRequest)}`,
        ]),
      ),
    ];
  }
  return [
    '',
    '### Daemon vs direct',
    '',
    ...table(
      ['c', 'throughput daemon ÷ direct', 'added TTFT p50 (ms)', 'added TTFT p99 (ms)', 'daemon CPU per request (µs)'],
      comparisons.map((c) => [c.concurrency, fmt(c.throughputRatio, 3), added(c, c.addedTtftP50Ms, 2), added(c, c.addedTtftP99Ms, 2), us(c.cpuUsPerRequest)]),
    ),
  ];
}

/** p50 / p99 of each daemon stage per daemon level; nothing when no level carried `Server-Timing`. */
export function stageTable(levels: readonly LevelResult[], heading = '### Where the time goes (daemon levels)'): string[] {
  const rows = levels.filter((l) => l.target === 'daemon' && l.stagesMs);
  if (!rows.length) return [];
  return [
    '',
    heading,
    '',
    'From the daemon\'s `Server-Timing` header on each response, p50 / p99 in ms: parse (body read and validated), admit (queue entry), ' +
      'queue (waiting for a slot), upstream (slot given → llama-server\'s headers: connect, send, its own start), first-byte (→ its first body chunk), ' +
      'total (request received → first upstream byte); outside = client TTFT − total (both network legs and the client).',
    '',
    ...table(
      ['c', ...STAGE_COLUMNS],
      rows.map((l) => [l.concurrency, ...STAGE_COLUMNS.map((name) => {
        const st = l.stagesMs?.[name];
        return st ? `${fmt(st.p50, 3)} / ${fmt(st.p99, 3)}` : '–';
      })]),
    ),
  ];
}

export function renderMarkdown(r: BenchReport): string {
  const e = r.environment;
  const s = r.sweep;
  const mix = s.options.mix.map((m) => (s.options.mix.length > 1 ? `${m.maxTokens}×${m.weight}` : `${m.maxTokens}`)).join(' + ');
  const out: string[] = [
    '# Slotwise benchmark',
    '',
    `${e.startedAt} · ${e.cpuModel}, ${e.cores} cores, ${e.memoryGiB} GiB · ${e.platform} · Node ${e.node} · Slotwise ${e.slotwise} · llama-server ${e.llamaServer ?? 'unknown'}${e.llamaLogLevel ? ` at -lv ${e.llamaLogLevel}` : ''} · GPU: ${e.gpus.join(', ') || 'none'}`,
    '',
    `Model \`${r.run.model}\`${r.run.modelPath ? ` (${r.run.modelPath})` : ''}: ${s.layout.instances} instance(s) × ${s.layout.slotsPerInstance} slots, routing ${r.run.routing}; ` +
      `${s.options.requests} streamed requests per level, max_tokens ${mix}, temperature 0, ignore_eos. Took ${fmt(r.durationMs / 1000, 0)} s.`,
    '',
    '## Goals',
    '',
    'Measured, not enforced: on a small shared machine run-to-run noise is several percent.',
    '',
    ...table(['Goal', 'Target', 'Measured', ''], r.targets.map((t: TargetCheck) => [t.name, t.goal, t.measured, mark(t.met)]), ['l', 'l', 'l', 'l']),
  ];
  if (r.chat) {
    out.push(...chatSection(r.chat), '', 'Raw numbers (every request, every status poll): `bench.json`.', '');
    return out.join('\n');
  }
  out.push(
    '',
    '## Concurrency sweep',
    '',
    (s.options.direct
      ? 'Each level runs through the daemon (`/v1/completions`) and straight against llama-server, alternating which goes first. '
      : 'Each level runs through the daemon (`/v1/completions`). ') +
      `${warmUpNote(s.options)} Times in ms.`,
    '',
    ...levelTable(s.levels),
    '',
    'Slots in use: exact, from each request\'s start and end (min(in flight, slots) ÷ slots, time-averaged). Slots busy (status): the mean of /api/status polls every 250 ms, i.e. what the daemon shows. CPU % is of all host cores (100 % = every core busy).',
  );
  out.push(...comparisonTable(s.comparisons, s.layout), ...stageTable(s.levels));
  if (r.gpuPace) {
    const g = r.gpuPace;
    out.push(
      '',
      '## Concurrency sweep at GPU pace (stand-in upstream)',
      '',
      `The same comparison against the stand-in (test/fixtures/fake-llama-server.mjs): ${g.sweep.layout.instances} × ${g.sweep.layout.slotsPerInstance} slots, ` +
        `${g.tokenMs} ms a token per stream as on a GPU (on a fixed schedule: a late timer does not push later tokens back), ${perLevel(g.sweep.options)} of max_tokens ${g.sweep.options.mix[0]?.maxTokens ?? '–'} per level. ` +
        `It needs almost no CPU, so the daemon's hop is measured without llama-server competing for the cores. ${warmUpNote(g.sweep.options)} Times in ms.`,
      '',
      ...levelTable(g.sweep.levels),
      ...comparisonTable(g.sweep.comparisons, g.sweep.layout),
      ...stageTable(g.sweep.levels),
    );
  }
  for (const g of [r.routing, r.routingStandIn]) {
    if (!g) continue;
    const standIn = g.upstream === 'stand-in';
    out.push(
      '',
      `## Routing: slot-aware vs round-robin${standIn ? ' (stand-in upstream)' : ''}`,
      '',
      `${g.replicas} instances × ${g.slotsPerInstance} slots, c=${g.concurrency}, the same seeded mix of short and long requests in both runs; e2e in ms.` +
        (standIn
          ? ' Upstream: the stand-in (test/fixtures/fake-llama-server.mjs), a fixed time per token and slot as on a GPU, deferring requests when its slots are full as llama-server does: the routing policy without CPU contention between the instances.'
          : ''),
      '',
      ...table(
        ['routing', 'e2e p50', 'e2e p95', 'short p95', 'long p95', 'queue mean', 'tok/s', 'failed'],
        g.runs.map((x) => [x.routing, fmt(x.level.e2eMs.p50), fmt(x.level.e2eMs.p95), fmt(x.shortE2eMs.p95), fmt(x.longE2eMs.p95), fmt(x.level.queueWaitMs.mean), fmt(x.level.tokensPerSecond, 0), x.level.failed]),
      ),
      '',
      `p95 round-robin ÷ slot-aware: **${fmt(g.p95Ratio, 2)}×** (short requests only: ${fmt(g.shortP95Ratio, 2)}×).`,
    );
  }
  if (r.load) {
    const l = r.load;
    out.push(
      '',
      `## ${l.streams.toLocaleString('en-US')} concurrent streams`,
      '',
      `Through the daemon against a stand-in upstream (test/fixtures/fake-llama-server.mjs: ${l.replicas} × ${l.slotsPerInstance} slots, a token every ${l.tokenIntervalMs} ms per stream) — ` +
        'a real llama-server cannot hold this many streams on a small machine. ' +
        loadProcessNote(l.daemon),
      '',
      ...table(
        ['streams ok', 'peak busy slots', 'tok/s', 'TTFT p50', 'TTFT p99', 'e2e p50', 'e2e p99', 'loop lag p50', 'loop lag p99', 'loop lag max', 'RSS before', 'RSS peak', 'daemon process'],
        [[
          `${l.level.requests - l.level.failed}/${l.level.requests}`,
          l.level.utilization.peakBusySlots,
          fmt(l.level.tokensPerSecond, 0),
          fmt(l.level.ttftMs.p50),
          fmt(l.level.ttftMs.p99),
          fmt(l.level.e2eMs.p50),
          fmt(l.level.e2eMs.p99),
          fmt(l.daemon.loopLagMs.p50, 2),
          fmt(l.daemon.loopLagMs.p99, 2),
          fmt(l.daemon.loopLagMs.max, 2),
          `${fmt(l.daemon.rssMB.before, 0)} MB`,
          `${fmt(l.daemon.rssMB.peak, 0)} MB`,
          l.daemon.process === 'own' ? `own (pid ${l.daemon.pid})` : 'bench\'s',
        ]],
      ),
      '',
      `Worst 250 ms windows of event-loop delay: ${worstWindows(l.daemon.loopLagTimeline)} (ramp-up is the first seconds; the full timeline is in bench.json).`,
    );
  }
  if (r.photos) out.push(...photosSection(r.photos));
  if (r.typing) out.push(...typingSection(r.typing));
  if (r.priority) out.push(...prioritySection(r.priority));
  if (r.onDemand) out.push(...onDemandSection(r.onDemand));
  const failures = [...s.levels, ...(r.gpuPace?.sweep.levels ?? []), ...(r.routing?.runs.map((x) => x.level) ?? []), ...(r.routingStandIn?.runs.map((x) => x.level) ?? []), ...(r.load ? [r.load.level] : [])].filter((l: LevelResult) => l.errors.length);
  if (failures.length) {
    out.push('', '## Errors', '', ...failures.map((l) => `- c=${l.concurrency} ${l.target}: ${l.errors.join('; ')}`));
  }
  out.push('', 'Raw numbers (every request, every status poll): `bench.json`. Chart: `bench.svg`.', '');
  return out.join('\n');
}

/** Whose process the load figures are (DaemonSide.process), for the paragraph above the table. */
function loadProcessNote(d: DaemonSide): string {
  if (d.process === 'own') {
    return 'Lag and RSS are the daemon\'s own process, started as users start it (`node dist/cli.js daemon`): RSS from /proc every 100 ms, lag from its /metrics (`slotwise_event_loop_lag_seconds`).';
  }
  return 'Lag and RSS are those of the bench process hosting the daemon (RSS includes the bench\'s own heap and earlier scenarios)' +
    (d.client === 'separate' ? '; the load generator ran in another process.' : '; the load generator shared it: lag is an upper bound.');
}

/** The warm-up of the JavaScript hops before the first level (sweep.ts HOP_WARM_UP). */
function warmUpNote(o: SweepOptions): string {
  const n = o.warmUp ?? HOP_WARM_UP.requests;
  return n > 0
    ? `Before the first level, up to ${n} short requests (${HOP_WARM_UP.maxMs / 1000} s at most) went through the daemon${o.floor ? ' and the bare proxy' : ''}, so their per-request code ran compiled, as in a daemon that has served a while.`
    : 'The JavaScript hops were not warmed up (`--warm-up 0`): their first levels include V8 compiling their code.';
}

/** "192 requests", or with a per-client floor "192 requests (48 per client where more: 768 at c=16)". */
function perLevel(o: SweepOptions): string {
  const most = Math.max(...o.concurrency);
  const top = levelRequests(o, most);
  return o.perClient && top > o.requests ? `${o.requests} requests (${o.perClient} per client where that is more: ${top} at c=${most})` : `${o.requests} requests`;
}
