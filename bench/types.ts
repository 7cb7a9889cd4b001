// The shapes of a benchmark run: what the load generator measures and what bench.json holds.
// bench.json is `BenchReport` as JSON; `schema` is bumped on any incompatible change.

/**
 * Where a request was sent: through the daemon's /v1 proxy, straight to a llama-server port, or
 * through the bare Node proxy that is the hop's floor (bench/floor-proxy.ts; GPU-pace sweep only).
 */
export type BenchTarget = 'daemon' | 'direct' | 'floor';

/** One streamed completion as the client saw it. Times in ms from the level's start (`performance.now()`). */
export interface RequestSample {
  target: BenchTarget;
  ok: boolean;
  /** One line: HTTP status and message, or the network error. */
  error?: string;
  /** `max_tokens` sent. */
  maxTokens: number;
  startMs: number;
  /** Time to the response headers (the daemon may send them before llama-server answers). */
  headersMs?: number;
  /** Time to the first chunk with content; undefined when none came. */
  ttftMs?: number;
  /** Request start to the end of the stream. */
  e2eMs: number;
  /** Generated tokens: `usage.completion_tokens` of the last chunk, else the content chunks counted. */
  tokens: number;
  /** `X-Slotwise-Request-Id` of the daemon's response (a request that took a slot). */
  requestId?: string;
  /** `X-Slotwise-Queue-Wait-Ms` of the daemon's response; 0 when absent (and always for direct). */
  queueWaitMs: number;
  /** The daemon's `Server-Timing` stages (parse, admit, queue, upstream, first-byte, total), ms; absent for direct. */
  stages?: Record<string, number>;
  /** llama-server's `timings` of the last chunk: prompt tokens evaluated, and those reused from its cache. */
  promptN?: number;
  cacheN?: number;
}

/** Distribution of one measure over a level's requests. All in the measure's unit (ms). */
export interface Summary {
  count: number;
  mean: number;
  min: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** One `/api/status` poll during a level (every 250 ms). */
export interface StatusSample {
  /** ms since the level started. */
  tMs: number;
  busySlots: number;
  totalSlots: number;
  /** Requests waiting in the daemon's queue for this model. */
  queued: number;
  /** Busiest GPU's utilization, when the daemon reports GPUs. */
  gpuPct?: number;
  /** The model's llama-server processes together, % of all host cores (100 = every core busy). */
  cpuPct?: number;
  /** Whole host, % of all cores. */
  hostCpuPct?: number;
}

/** Averages of a level's status polls while the load was steady (see `steadySamples`). */
export interface Utilization {
  samples: number;
  /** Mean busy/total slots as /api/status showed them, %. */
  slotPct: number;
  /**
   * Exact slot occupancy from the requests' own start and end times: the time-average of
   * min(requests in flight, total slots) ÷ total slots while the load was steady, %.
   */
  inFlightPct?: number;
  peakBusySlots: number;
  totalSlots: number;
  gpuPct?: number;
  cpuPct?: number;
  hostCpuPct?: number;
}

/** One concurrency level against one target. */
export interface LevelResult {
  target: BenchTarget;
  concurrency: number;
  requests: number;
  failed: number;
  /** First request start to last request end. */
  wallMs: number;
  tokens: number;
  /** All tokens of the level / wallMs. */
  tokensPerSecond: number;
  ttftMs: Summary;
  e2eMs: Summary;
  queueWaitMs: Summary;
  /**
   * The daemon's stage timings (daemon levels only): each `Server-Timing` stage, and `outside` =
   * client TTFT − the daemon's `total`: both network legs and the client's own reading.
   */
  stagesMs?: Record<string, Summary>;
  /**
   * CPU time of the hop's own process (the daemon, or the bare proxy) during the level per request,
   * µs, all its threads: what the hop costs in CPU, steadier than its latency. Absent for direct
   * levels, a daemon that shares its process with the client, or where /proc cannot tell.
   */
  cpuUsPerRequest?: number;
  utilization: Utilization;
  /** The first failures' messages (at most 5, deduplicated). */
  errors: string[];
  samples: RequestSample[];
  timeline: StatusSample[];
}

/** Daemon against direct at one concurrency. */
export interface Comparison {
  concurrency: number;
  /** daemon tokens/s ÷ direct tokens/s; target ≥ 0.99. */
  throughputRatio: number;
  /** daemon TTFT p50 − direct TTFT p50, ms; target ≤ 1. */
  addedTtftP50Ms: number;
  /** daemon TTFT p99 − direct TTFT p99, ms; target ≤ 3. */
  addedTtftP99Ms: number;
  /** The daemon's CPU per request at this level (LevelResult.cpuUsPerRequest), µs. */
  cpuUsPerRequest?: number;
  /** The bare proxy (target `floor`) against the same direct level, when the sweep ran it. */
  floor?: { throughputRatio: number; addedTtftP50Ms: number; addedTtftP99Ms: number; cpuUsPerRequest?: number };
}

/** `max_tokens` values and their weights, e.g. 3 × 16 and 1 × 256 for a mixed load. */
export interface MixEntry {
  maxTokens: number;
  weight: number;
}

/** What the client side of a sweep was asked to do. */
export interface SweepOptions {
  model: string;
  concurrency: number[];
  requests: number;
  /**
   * At least this many requests per client: a level of c clients runs max(requests, perClient × c).
   * A short level at high concurrency is a few waves of slot turnovers, and one stall or its ramp-up
   * moved its throughput by several percent between runs.
   */
  perClient?: number;
  /**
   * Short requests through each JavaScript hop (the daemon, the bare proxy) before the first level, so
   * its per-request code runs compiled as in a daemon that has served a while (sweep.ts HOP_WARM_UP,
   * bounded in time); default HOP_WARM_UP.requests, 0: none.
   */
  warmUp?: number;
  /** Request lengths; one entry = every request the same. */
  mix: MixEntry[];
  direct: boolean;
  prompt: string;
  /** Base URL of the bare proxy in front of the (single) llama-server: each level also runs through it. */
  floor?: string;
}

export interface SweepResult {
  options: SweepOptions;
  /** Interleaved in run order: daemon and direct alternate which goes first at each level. */
  levels: LevelResult[];
  /** One per level when `direct` was set. */
  comparisons: Comparison[];
  /** The daemon's routing mode and the model's layout, as the status snapshot showed them. */
  layout: { instances: number; slotsPerInstance: number };
}

/** What the daemon process itself went through during a scenario (measured in-process). */
export interface DaemonSide {
  /**
   * Event-loop delay of the daemon's thread beyond a 10 ms timer period: `monitorEventLoopDelay`
   * in the bench process (`process: 'bench'`), the daemon's /metrics `slotwise_event_loop_lag_seconds`
   * histogram in its own (`process: 'own'`; quantiles interpolated in its buckets).
   */
  loopLagMs: { p50: number; p99: number; max: number };
  /** The largest delay in each 250 ms window since the load started: shows when the lag happened. */
  loopLagTimeline: { tMs: number; maxMs: number }[];
  /** Resident set size of the daemon process, MB (10^6 bytes), sampled every 100 ms. */
  rssMB: { before: number; peak: number };
  /**
   * Whose process the figures are: `own` = the daemon alone, run as users run it (`node dist/cli.js
   * daemon`); `bench` = hosted in the bench process (RSS includes the bench and earlier scenarios).
   * Absent in reports from before it was recorded (they were `bench`).
   */
  process?: 'own' | 'bench';
  /** The pid the RSS was read from. */
  pid?: number;
  /** Where the load generator ran: `separate` (its own process) or `in-process` (shares the loop: lag is an upper bound). */
  client: 'separate' | 'in-process';
}

/** The routing comparison: same mixed load, slot-aware vs round-robin. */
export interface RoutingResult {
  /** What served the requests: the real llama-server, or the stand-in (a fixed time per token and
   * slot, as on a GPU, with llama-server's deferral when its slots are full). */
  upstream: 'llama-server' | 'stand-in';
  replicas: number;
  slotsPerInstance: number;
  concurrency: number;
  runs: { routing: 'slot-aware' | 'round-robin'; level: LevelResult; shortE2eMs: Summary; longE2eMs: Summary }[];
  /** round-robin e2e p95 ÷ slot-aware e2e p95; target ≥ 1.3. */
  p95Ratio: number;
  /** The same for the short requests only (those that get stuck behind long ones). */
  shortP95Ratio: number;
}

/** The daemon-vs-direct sweep against the stand-in upstream. */
export interface GpuPaceResult {
  /** The stand-in's time per token of one stream, ms. */
  tokenMs: number;
  sweep: SweepResult;
  /** Where the daemon ran (its own process in the standard suite) and its loop lag and RSS meanwhile. */
  daemon?: DaemonSide;
}

/** `--workload chat`: the same conversations with prompt-cache affinity routing on and off. */
export interface ChatResult {
  conversations: number;
  turns: number;
  replicas: number;
  slotsPerInstance: number;
  maxTokens: number;
  /** Replies limited to whole-word tokens (`replyLogitBias`), so they re-tokenize as generated. */
  wordBias: boolean;
  /** Mean gap between a reply's end and the next turn (the user reading and writing), ms; 0: none. */
  thinkMs: number;
  /** The conversations' first turns are spread over this window, ms (0: all at once). Absent in older reports. */
  startSpreadMs?: number;
  /** Rounds of off and on, in ABBA order (off, on, on, off, …) so drift over the run hits both alike. Absent in older reports: 1. */
  rounds?: number;
  /** The model's `promptCacheMiB` (llama-server's host prompt cache; 0: none), which restores a history on any slot of the replica that held it. Absent in older reports: auto. */
  promptCacheMiB?: number | 'auto';
  /** Each mode over all its rounds: what the ratio and the goals read. Absent in older reports (one round). */
  pooled?: { affinity: boolean; ttftMs: Summary; hitRatio: number }[];
  runs: {
    affinity: boolean;
    /** 0-based round (absent in older reports). */
    round?: number;
    level: LevelResult;
    /** Σ cache_n ÷ Σ (cache_n + prompt_n) from llama-server's `timings` in each stream's last chunk. */
    hitRatio: number;
    /** Prompt tokens per request (evaluated + reused from the cache). */
    promptTokens: Summary;
    /** Σ over the run's requests: the runs differ only by the replies generated, so these show they sent comparable prompts. */
    promptTokensTotal: { cached: number; processed: number };
    /** TTFT of the first turns (nothing to reuse yet) and of the later ones. */
    firstTurnTtftMs: Summary;
    laterTurnTtftMs: Summary;
    /** TTFT less the daemon's queue wait: what prefill (and the first token) took once a slot was leased. Absent in older reports. */
    ttftLessQueueMs?: Summary;
    /** Of the later turns, the share on the replica that ran the conversation's turn before (sameReplicaShare). Absent in older reports. */
    sameReplicaShare?: number;
    /** TTFT of the later turns on the previous turn's replica and on another (laterTurnsByReplica). Absent in older reports. */
    sameReplicaTtftMs?: Summary;
    otherReplicaTtftMs?: Summary;
  }[];
  /** TTFT p50 without affinity ÷ with (pooled over the rounds); goal ≥ 3. */
  ttftP50Ratio: number;
}

/** Many concurrent streams through the daemon against the stand-in upstream. */
export interface LoadResult {
  streams: number;
  replicas: number;
  slotsPerInstance: number;
  /** The stand-in's delay between tokens of one stream, ms. */
  tokenIntervalMs: number;
  level: LevelResult;
  daemon: DaemonSide;
}

/** One keystroke burst of the typing scenario, from the daemon's lease records and the client. */
export interface TypingBurst {
  requests: number;
  /** Requests that took a slot (the others were superseded while queued or held). */
  leased: number;
  /** Requests answered 409 SW_ERR_SUPERSEDED. */
  superseded: number;
  /** Σ lease time of the burst's requests, ms. */
  slotMs: number;
  /** Of `slotMs`: the requests before the last keystroke's (superseded, or finished but stale). */
  wastedSlotMs: number;
  /** The last keystroke's request: from its send to its first token, and to its end, ms. */
  finalTtftMs?: number;
  finalE2eMs?: number;
  finalOk: boolean;
  /** The gaps between the keystrokes' sends as the client managed them (a loaded host stretches some), ms. */
  gapMs: Summary;
  /** Failures other than 409 SW_ERR_SUPERSEDED (at most 5, deduplicated). */
  errors: string[];
}

/** The typing bursts of one configuration. */
export interface TypingRun {
  /** `session`: X-Slotwise-Session with the adaptive hold; `session, no hold`: queue.sessionHoldMs 0 (newest wins alone); `no session`: every request kept. */
  mode: 'session' | 'session, no hold' | 'no session';
  sessionHoldMs: number;
  bursts: TypingBurst[];
  /** Σ wastedSlotMs ÷ Σ slotMs over the bursts (goal ≤ 5 % with a session key). */
  wastedFraction: number;
  finalTtftMs: Summary;
}

/** Where the photos scenario's uploads go in a phase: none, straight to the vision model's upstream, or through the daemon. */
export type PhotosMode = 'none' | 'direct' | 'daemon';

/** One phase of the photos scenario. */
export interface PhotosRun {
  mode: PhotosMode;
  /** Uploads answered 200 during the phase, and those that failed. */
  photos: number;
  failed: number;
  /** Gaps between consecutive chunks of each text stream during the phase, ms. */
  gapMs: Summary;
  /** The daemon's event-loop lag during the phase (its /metrics histogram and max gauge), ms. */
  daemonLagMs: { p99: number; max: number };
}

/** Text streams while photos are uploaded to a vision model: what the uploads cost the streams' token pace. */
export interface PhotosResult {
  streams: number;
  tokenMs: number;
  phaseMs: number;
  rounds: number;
  /** Bytes of each upload's JSON body. */
  photoBytes: number;
  runs: PhotosRun[];
  /** Token-gap p99 of each mode, pooled over its rounds, ms. */
  gapP99Ms: Record<PhotosMode, number>;
  /** Token-gap p99 with photos through the daemon ÷ with photos sent straight to the upstream. */
  gapP99Ratio: number;
}

/** Keystroke-like /infill bursts: slot time spent on superseded work, and the latency of the completion the editor shows. */
export interface TypingResult {
  keystrokes: number;
  gapMs: number;
  pauseMs: number;
  nPredict: number;
  slots: number;
  runs: TypingRun[];
}

/** One interactive request under the background load. */
export interface InteractiveSample {
  ok: boolean;
  error?: string;
  /** Client: send → first token. */
  ttftMs?: number;
  /** The daemon's X-Slotwise-Queue-Wait-Ms. */
  queueWaitMs: number;
  /** Daemon records: its arrival → the first lease release after it ("one slot frees"). */
  slotFreeMs?: number;
  /** Lease releases between its arrival and its own lease (several can land in the same millisecond). */
  releasesWaited?: number;
  /** Leases of background requests that began while it waited: any with priority on is an inversion. */
  backgroundStartsWhileWaiting?: number;
  /** The daemon's Server-Timing: slot given → llama-server's first body byte (its own time to start), ms. */
  upstreamMs?: number;
}

/** The interactive requests of one half of the priority scenario. */
export interface PriorityRun {
  /** true: sent as interactive; false: sent as background too (everything in one class, FIFO). */
  priority: boolean;
  samples: InteractiveSample[];
  ttftMs: Summary;
  slotFreeMs: Summary;
  queueWaitMs: Summary;
  /** TTFT p95 ÷ slot-free p95 (goal ≤ 1.1 with priority on). */
  ttftOverSlotFree: number;
  /** Queue wait p95 ÷ slot-free p95: the scheduler's part alone (without llama-server's time to the first token). */
  queueWaitOverSlotFree: number;
  /** How many started within 5 ms of the first lease release after they arrived (or at once). */
  tookFirstFreed: number;
  /** Background leases that began while an interactive request waited, over all of them (0 expected with priority on). */
  backgroundStartsWhileWaiting: number;
  /** p95 of the daemon's slot given → llama-server's first byte (Server-Timing), ms. */
  upstreamP95Ms: number;
  /** Background requests that finished meanwhile, and those that failed. */
  backgroundDone: number;
  backgroundFailed: number;
}

/** Interactive requests at random times under a saturating, continuously refilled background load. */
export interface PriorityResult extends PriorityLoad {
  runs: PriorityRun[];
}

/** The priority scenario's load: slots, the background streams that fill them, the interactive requests. */
export interface PriorityLoad {
  slots: number;
  backgroundStreams: number;
  backgroundMaxTokens: number;
  interactiveRequests: number;
  interactiveMaxTokens: number;
  /** Mean gap between interactive requests (exponential gaps, seeded). */
  meanGapMs: number;
}

export interface Environment {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  platform: string;
  node: string;
  slotwise: string;
  /** llama-server's build (`/props` build_info), e.g. `b1-de3ff81`. */
  llamaServer?: string;
  /** Its log level: 4 on a model's first load (placement lines), 3 once that placement is recorded; absent: unknown. */
  llamaLogLevel?: 3 | 4;
  gpus: string[];
  startedAt: string;
}

/** One goal from the issue, checked against what was measured (reported, never pass/fail). */
export interface TargetCheck {
  name: string;
  goal: string;
  measured: string;
  /** undefined when not measured in this run. */
  met: boolean | undefined;
}

/** A model loaded on demand: cold vs warm first token, and load state pushes to a WS subscriber. */
export interface OnDemandResult {
  repetitions: number;
  slots: number;
  maxTokens: number;
  /** Request to first token with the model unloaded: the load (plan, llama-server start, weights, warmup) is in it. ms. */
  coldTtftMs: Summary;
  /** The same request with the model loaded. ms. */
  warmTtftMs: Summary;
  /** A load state change (the daemon's `load.since`) to a `status.subscribe` client receiving it, ms. */
  statusDelayMs: Summary;
  statusDelayByState: Record<'loading' | 'ready' | 'unloaded', Summary>;
  /** Load state changes the subscriber saw (3 per round when none is missed). */
  changes: number;
  errors: string[];
}

export interface BenchReport {
  schema: 1;
  environment: Environment;
  /** The command line's meaning: `standard` or `custom`, and the model benched. */
  run: {
    kind: 'standard' | 'custom';
    model: string;
    modelPath?: string;
    routing: 'slot-aware' | 'round-robin' | 'daemon config';
    /** Extra llama-server flags of the hosted model (the standard suite sets `--threads`). */
    llamaArgs?: string[];
  };
  sweep: SweepResult;
  /** The daemon side of the sweep, when the daemon ran in this process. */
  sweepDaemon?: DaemonSide;
  /**
   * The same daemon-vs-direct sweep against the stand-in at a GPU's pace (a fixed time per token
   * and slot, no CPU of its own to speak of): the hop alone, without llama-server competing for the cores.
   */
  gpuPace?: GpuPaceResult;
  routing?: RoutingResult;
  /** The same comparison against the stand-in: routing policy alone, without CPU contention. */
  routingStandIn?: RoutingResult;
  load?: LoadResult;
  /** Keystroke bursts on one session: newest wins with the adaptive hold, without it, and without a session key. */
  typing?: TypingResult;
  photos?: PhotosResult;
  /** Interactive requests under a saturating background load, priority on and off. */
  priority?: PriorityResult;
  onDemand?: OnDemandResult;
  chat?: ChatResult;
  targets: TargetCheck[];
  durationMs: number;
}
