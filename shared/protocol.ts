// Every type that crosses the wire between the daemon and its clients (CLI, extension, scripts).
// Types only: clients `import type` from here so no daemon code is bundled into them.

/** Bumped on any incompatible change to the shapes below; clients refuse a daemon that differs. */
export type ProtocolVersion = 1;

/** Stable error codes; match on these, never on messages. Listed with fixes in docs/errors.md. */
export type ErrorCode =
  | 'SW_ERR_USAGE'
  | 'SW_ERR_CONFIG'
  | 'SW_ERR_MODEL_NOT_FOUND'
  | 'SW_ERR_MODEL_FILE'
  | 'SW_ERR_GGUF_INVALID'
  | 'SW_ERR_LLAMA_SERVER_NOT_FOUND'
  | 'SW_ERR_TOOL_MISSING'
  | 'SW_ERR_BUILD_FAILED'
  | 'SW_ERR_INSTANCE_FAILED'
  | 'SW_ERR_INSTANCE_EXITED'
  | 'SW_ERR_INSTANCE_STALLED'
  | 'SW_ERR_HEALTH_TIMEOUT'
  | 'SW_ERR_NO_INSTANCE'
  | 'SW_ERR_NOT_ENOUGH_MEMORY'
  | 'SW_ERR_UNAUTHORIZED'
  | 'SW_ERR_FORBIDDEN'
  | 'SW_ERR_BAD_REQUEST'
  | 'SW_ERR_BODY_TOO_LARGE'
  | 'SW_ERR_BODY_TIMEOUT'
  | 'SW_ERR_HEADERS_TOO_LARGE'
  | 'SW_ERR_METHOD_NOT_ALLOWED'
  | 'SW_ERR_UPGRADE_REQUIRED'
  | 'SW_ERR_NOT_FOUND'
  | 'SW_ERR_METHOD_NOT_FOUND'
  | 'SW_ERR_QUEUE_FULL'
  | 'SW_ERR_QUEUE_TIMEOUT'
  | 'SW_ERR_UPSTREAM'
  | 'SW_ERR_UPSTREAM_REJECTED'
  | 'SW_ERR_CANCELLED'
  | 'SW_ERR_SUPERSEDED'
  | 'SW_ERR_JOB_NOT_FOUND'
  | 'SW_ERR_MODEL_CANNOT_INFILL'
  | 'SW_ERR_WRONG_MODEL_KIND'
  | 'SW_ERR_DAEMON_UNREACHABLE'
  | 'SW_ERR_DAEMON_RUNNING'
  | 'SW_ERR_STATE_DIR_UNSAFE'
  | 'SW_ERR_STATE_DIR_UNUSABLE'
  | 'SW_ERR_SHUTTING_DOWN'
  | 'SW_ERR_JOB_INTERRUPTED'
  | 'SW_ERR_PROTOCOL_MISMATCH'
  | 'SW_ERR_INTERNAL';

/** The one error envelope of HTTP bodies and JSON-RPC `error.data` (OpenAI's shape for /v1/*). */
export interface ErrorBody {
  code: ErrorCode;
  /** OpenAI-style category, e.g. `invalid_request_error`, `authentication_error`, `server_error`. */
  type: string;
  /** One line naming the subject and, where there is one, the fix. */
  message: string;
  /** Extra detail (a log excerpt, the offending key); shown only on request. */
  detail?: string;
}

// ---------------------------------------------------------------------------------------------
// Status snapshot

export type InstanceState =
  | 'starting'
  | 'loading'
  | 'ready'
  /** Made no progress for `supervisor.stallTimeoutMs`: being killed, then restarts like a crash. */
  | 'stalled'
  | 'stopping'
  | 'stopped'
  | 'crashed'
  | 'backoff'
  | 'failed';

export interface SlotStatus {
  /** llama-server's slot id, 0-based. */
  id: number;
  /** Leased to one of the daemon's requests, or `foreign`. Exact at every instant (from the leases, not a poll). */
  busy: boolean;
  /** The daemon's request holding the slot: the HTTP request id (`X-Slotwise-Request-Id`) or the WS job id. */
  requestId?: string;
  /** Where the leasing request came from. */
  source?: RequestSource;
  /** Epoch ms the lease began. */
  since?: number;
  /** Tokens decoded so far, where the daemon sees them (prompt jobs). */
  tokens?: number;
  /** Busy in llama-server's /slots for more than one poll with no lease: a client talking to llama-server directly. */
  foreign?: boolean;
  /**
   * The request this slot was handed off to (queue.handoffTokens): already sent to llama-server, which
   * starts it when this slot frees; until then it is counted as queued.
   */
  next?: string;
  /** llama-server's task id while busy (from the last /slots poll). */
  taskId?: number;
  /** Tokens generated so far by the current task. */
  nDecoded?: number;
  /** Tokens of the current task's prompt. */
  nPromptTokens?: number;
  /** Context size of this slot, in tokens. */
  nCtx?: number;
}

/** Resource use of one llama-server process. */
export interface ProcessUsage {
  /** CPU use over the last sampling interval, 100 = one core. */
  cpuPct: number;
  rssBytes: number;
  /** VRAM held on any GPU, when a GPU tool reports per-process memory. */
  vramBytes?: number;
}

export interface InstanceStatus {
  /** `<model>#<n>`, n from 1. */
  id: string;
  state: InstanceState;
  /** Epoch ms at which `state` was entered. */
  since: number;
  pid?: number;
  /** llama-server's loopback port (127.0.0.1), for clients other than the daemon. */
  port?: number;
  /** The UNIX socket it also listens on, which the daemon's own requests use (state dir `sockets/`); absent where it listens on the port alone. */
  socket?: string;
  /** Restarts after a crash since the daemon started this instance. */
  restarts: number;
  /** One line: why the instance last crashed or failed. */
  lastError?: string;
  /** What slows this process down now, one line each (its -lv 4 prompt-cache listing); also in the snapshot's `warnings`. */
  warnings?: string[];
  /** The last log lines of the process, set when it crashed or failed. */
  lastLogLines?: string[];
  /** Epoch ms of the next restart attempt while in `backoff`. */
  nextRestartAt?: number;
  slots: SlotStatus[];
  /** Generated tokens per second over the last few seconds, all slots together. */
  tokensPerSecond?: number;
  /** Requests the daemon currently has in flight on this instance. */
  inFlight?: number;
  usage?: ProcessUsage;
  /** KV cache in use by processing slots at the last /slots poll (sum of their tokens) of the total context. */
  kvCache?: { usedTokens: number; totalTokens: number };
  /** Placement as reported by llama-server's load log. */
  offload?: Placement;
}

/** Where llama-server put a model: layers on the GPU and buffer sizes per device (MiB), from its load log. */
export interface Placement {
  layersOnGpu?: number;
  layersTotal?: number;
  /** `"<kind> <device>"` → MiB, e.g. `"model CUDA0": 3891.2`, `"kv CPU": 64`. */
  buffers: Record<string, number>;
  /**
   * Epoch ms of the earlier load this placement was read from, when this process did not print it: a
   * launch that places the model as that load did runs llama-server at -lv 3, below its placement lines
   * (daemon/memory/calibration.ts `recordedPlacement`). Absent: read from this process's own log.
   */
  recordedAt?: number;
}

export interface ModelStatus {
  name: string;
  path: string;
  /** Slots per instance (`--parallel`). */
  slotsPerInstance: number;
  ctxPerSlot: number;
  gpuLayers: number | 'auto' | 'all';
  /** Wanted instances: 0 when the model is down. */
  replicas: number;
  queue: QueueStatus;
  instances: InstanceStatus[];
  /** Finished requests by outcome since the daemon started. */
  outcomes?: Record<RequestOutcome, number>;
  /** Requests received for this model (admitted or refused at once); equals the outcome total once all ended. */
  requests?: number;
  /** Of `outcomes.cancelled`, the requests a newer one with the same session key superseded (SW_ERR_SUPERSEDED). */
  superseded?: number;
  /** Of `superseded`, those that never took a slot (still queued, or held in a typing burst: queue.sessionHoldMs): they cost no slot time. */
  supersededUnstarted?: number;
  /** Prompt tokens of finished requests: reused from llama-server's KV cache vs computed (its final `timings`). */
  promptTokens?: { cached: number; processed: number };
  /** cached / (cached + processed); absent until a request reported timings. */
  promptCacheHitRatio?: number;
  /** With a draft model (`draft`): tokens it proposed and the model accepted (llama-server's `draft_n`, `draft_n_accepted`). */
  draftTokens?: { drafted: number; accepted: number };
  /** accepted / drafted: how much of the draft's work counts; absent until a request drafted. */
  draftAcceptance?: number;
  /** Replica scaling: fixed, or "auto" with its bounds and the last decision and why. */
  scaling?: ScalingStatus;
  /** From the GGUF header, read before launch. */
  info?: {
    fileBytes: number;
    layers?: number;
    architecture?: string;
    trainCtx?: number;
    canInfill?: boolean;
    /** What its projector (`mmproj`) lets it read besides text; absent without one. */
    modalities?: Modality[];
  };
  /** The config's `kind`: which routes serve the model. Absent from daemons before it existed (= completion). */
  kind?: 'completion' | 'embedding' | 'rerank';
  /** Whether the model is in memory, and why not (absent from daemons before on-demand loading). */
  load?: ModelLoadStatus;
  /** Epoch ms of the last request that took a slot of this model. */
  lastUsedAt?: number;
  /** The memory plan of one replica at its last launch and, once loaded, what llama-server reported. */
  memory?: ModelMemoryStatus;
}

export interface ModelLoadStatus {
  state: 'unloaded' | 'loading' | 'ready';
  /**
   * Why the model is unloaded; `no-memory`: its memory plan does not fit (see `error`); `failed`: every
   * replica failed (crashed too often, or cannot start: see `error`, and the replicas' lastError).
   */
  reason?: 'idle' | 'evicted' | 'stopped' | 'never-loaded' | 'no-memory' | 'failed';
  /** Epoch ms when the model entered this state (the daemon's clock). */
  since?: number;
  /**
   * While loading: where the furthest replica is (the model is ready with its first). `planning`: the memory plan and any eviction,
   * before llama-server runs; `starting`: the process runs, nothing loaded yet; `weights`: reading the
   * tensors (`progress`); `context`: KV cache and compute buffers; `warmup`: llama-server's empty run.
   */
  phase?: 'planning' | 'starting' | 'weights' | 'context' | 'warmup';
  /** While loading: share of the weights read, 0..1, as llama-server reports it (absent before its first report). */
  progress?: number;
  /** Unloaded because it cannot load: the error its requests get (e.g. SW_ERR_NOT_ENOUGH_MEMORY with the numbers). */
  error?: { code: ErrorCode; message: string };
}

export interface ModelMemoryStatus {
  /** What llama-server allocates at load (weights, KV, compute, output), one replica: compare with `actualBytes`. */
  planBytes: number;
  /** Sum of llama-server's buffers (its load log), once loaded. */
  actualBytes?: number;
  /**
   * llama-server's host prompt cache at its limit (`--cache-ram`), with its context checkpoints at
   * theirs (`--ctx-checkpoints`, window and recurrent models), one replica; absent when neither. Not in
   * `planBytes` or `actualBytes` (they fill as prompts are read and saved, after the load), but the memory
   * checks count them: what a replica may hold is (actualBytes ?? planBytes) + promptCacheBytes.
   */
  promptCacheBytes?: number;
  /** `host`, `gpu0`, …; `promptCacheBytes` only on `host`, with the same meaning as above. */
  byDevice: { device: string; label: string; planBytes: number; actualBytes?: number; promptCacheBytes?: number }[];
  /**
   * Models that are down only: whether the plan fits now beside the loaded models, without unloading
   * any (free memory capped by memoryBudgetMiB less what they hold: the loader's own check). Absent
   * while loaded, or until free memory is known on every device of the plan.
   */
  fitsNow?: boolean;
}

export interface ScalingStatus {
  mode: 'fixed' | 'auto';
  min: number;
  max: number;
  /** Instances being drained before they stop (no new requests go there). */
  draining?: string[];
  /** The latest decision, e.g. `{action: 'up', reason: 'saturated for 30 s …'}`; `hold` carries why not. */
  last?: { at: number; action: 'up' | 'down' | 'hold'; reason: string };
}

export type RequestOutcome = 'completed' | 'cancelled' | 'rejected' | 'failed';

export interface QueueStatus {
  waiting: number;
  oldestWaitMs: number;
  /** Each waiting request, head first. */
  entries?: { id: string; position: number; waitMs: number; source: RequestSource; priority?: Priority }[];
  /** Waiting requests by the class they were sent with; absent from daemons before priorities. */
  byClass?: Record<Priority, number>;
}

/** `interactive` is served first; `background` (X-Slotwise-Priority: background, benchmarks) after, until it has waited queue.backgroundMaxWaitMs. */
export type Priority = 'interactive' | 'background';

/** Where a request came from: the OpenAI-compatible HTTP API or a WebSocket prompt job. */
export type RequestSource = 'http' | 'ws';

export interface GpuStatus {
  index: number;
  name: string;
  utilizationPct: number;
  memoryUsedMiB: number;
  memoryTotalMiB: number;
  temperatureC?: number;
  powerW?: number;
}

export type CapacityVerdict = 'idle' | 'ok' | 'busy' | 'saturated' | 'down';

export interface Capacity {
  busySlots: number;
  totalSlots: number;
  queued: number;
  headroomSlots: number;
  verdict: CapacityVerdict;
  /** One sentence a person reads. */
  reason: string;
}

export interface Snapshot {
  protocol: ProtocolVersion;
  version: string;
  daemon: {
    pid: number;
    uptimeMs: number;
    url: string;
    /**
     * The config file the daemon read, or (`exists` false) the default path where there was none and
     * defaults were used: where a user adds models. Absent from daemons before it was added.
     */
    config?: { path: string; exists: boolean };
  };
  models: ModelStatus[];
  gpus: GpuStatus[];
  /** Host memory; always present so CPU-only hosts get a useful panel. */
  host?: { memoryTotalBytes: number; memoryAvailableBytes: number; cpuCount: number; loadPct?: number };
  /** The config's memoryBudgetMiB: what Slotwise's models may hold on each device together; absent = free memory is the limit. */
  memoryBudgetMiB?: number;
  capacity: Capacity;
  /** Sampler problems, one line each; never fatal. */
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------
// Files on disk

/** `daemon.json` in the state dir, written once the daemon accepts requests. */
export interface DaemonInfo {
  pid: number;
  port: number;
  url: string;
  version: string;
  protocol: ProtocolVersion;
  startedAt: string;
  /** The daemon's /proc start time (clock ticks since boot) and its nonce: what proves the pid is still this daemon. */
  startTime?: number;
  nonce?: string;
}

// ---------------------------------------------------------------------------------------------
// Prompt jobs

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  /** Text, or parts: text and images (`data:` URLs; for a model with a projector, `mmproj`), as OpenAI's chat API takes them. */
  content: string | ChatContentPart[];
}

/** What a multimodal projector's encoder reads: images (and video, as frames) or audio. */
export type Modality = 'vision' | 'audio';

export type ChatContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string } }
  /** OpenAI's audio part: `data` is the file's base64; llama-server reads the format from the bytes. */
  | { type: 'input_audio'; input_audio: { data: string; format: string } };

export interface PromptParams {
  model?: string;
  prompt?: string;
  messages?: ChatMessage[];
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  /** Default `interactive`; `background` waits behind interactive work (at most queue.backgroundMaxWaitMs). */
  priority?: Priority;
  /** A session key: this job supersedes the queued or running jobs and requests of the same key and model (SW_ERR_SUPERSEDED). */
  session?: string;
}

/** `interrupted`: the daemon died (crash, kill -9) while the job was queued or running; seen after a restart. */
export type JobState = 'queued' | 'running' | 'completed' | 'cancelled' | 'failed' | 'interrupted';

export interface JobUsage {
  promptTokens: number;
  completionTokens: number;
}

export interface JobTimings {
  queuedMs: number;
  ttftMs?: number;
  totalMs: number;
  tokensPerSecond?: number;
}

export interface JobSummary {
  jobId: string;
  model: string;
  state: JobState;
  createdAt: number;
  /** First characters of the prompt, for lists. */
  title: string;
  /** Number of deltas so far; `prompt.attach {fromSeq}` replays from here. */
  seq: number;
  finishReason?: string;
  error?: ErrorBody;
  usage?: JobUsage;
  timings?: JobTimings;
  instance?: string;
}

// ---------------------------------------------------------------------------------------------
// WebSocket JSON-RPC 2.0

/** Method name → params and result. */
export interface RpcMethods {
  'daemon.hello': { params: { protocol: ProtocolVersion; client?: string }; result: { protocol: ProtocolVersion; version: string } };
  'status.get': { params: Record<string, never> | undefined; result: Snapshot };
  'status.subscribe': { params: Record<string, never> | undefined; result: Snapshot };
  'status.unsubscribe': { params: Record<string, never> | undefined; result: { ok: true } };
  'models.list': { params: Record<string, never> | undefined; result: ModelStatus[] };
  'models.start': { params: { model: string }; result: ModelStatus };
  'models.stop': { params: { model: string }; result: ModelStatus };
  'models.restart': { params: { model: string }; result: ModelStatus };
  'logs.tail': { params: { model?: string; instance?: string; lines?: number }; result: { lines: string[] } };
  'prompt.submit': { params: PromptParams; result: { jobId: string } };
  'prompt.cancel': { params: { jobId: string }; result: JobSummary };
  'prompt.attach': { params: { jobId: string; fromSeq?: number }; result: JobSummary };
  'jobs.list': { params: Record<string, never> | undefined; result: JobSummary[] };
  'daemon.stop': { params: Record<string, never> | undefined; result: { ok: true } };
}
export type RpcMethod = keyof RpcMethods;

/** Notification name → params. */
export interface RpcNotifications {
  status: { snapshot: Snapshot };
  /** While waiting: position in service order and the estimated wait (absent until a service time is known); at most every 250 ms. */
  'job.queued': { jobId: string; position: number; etaMs?: number };
  'job.started': { jobId: string; instance: string };
  'job.delta': { jobId: string; seq: number; text: string };
  'job.end': { jobId: string; finishReason: string; usage: JobUsage; timings: JobTimings };
  'job.error': { jobId: string; code: ErrorCode; message: string };
}
export type RpcNotification = keyof RpcNotifications;

export interface RpcRequest<M extends RpcMethod = RpcMethod> {
  jsonrpc: '2.0';
  id: number | string;
  method: M;
  params?: RpcMethods[M]['params'];
}

export interface RpcSuccess<M extends RpcMethod = RpcMethod> {
  jsonrpc: '2.0';
  id: number | string;
  result: RpcMethods[M]['result'];
}

export interface RpcFailure {
  jsonrpc: '2.0';
  id: number | string | null;
  /** Standard JSON-RPC codes (-32700 parse, -32600 invalid request, -32601 method, -32602 params) or -32000 for Slotwise errors. */
  error: { code: number; message: string; data?: ErrorBody };
}

export interface RpcNotificationMessage<N extends RpcNotification = RpcNotification> {
  jsonrpc: '2.0';
  method: N;
  params: RpcNotifications[N];
}
