// One supervised llama-server. A state machine with one owner: every transition goes through
// #transition(), which emits a `state` event. Callers express intent (start, stop, ensureReady)
// and never "check the state, then act". States and ordering: daemon/runtime/design.md.
import { randomBytes } from 'node:crypto';
import { EventEmitter, once, setMaxListeners } from 'node:events';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import type { LaunchModel, Config } from '../config/types';
import { SlotwiseError, firstLine } from '../../shared/errors';
import type { Logger } from '../../platform/log';
import type { InstanceState, InstanceStatus, Placement } from '../../shared/protocol';
import { instanceFileStem, removePidRecord, writePidRecord, type StateDir } from '../../shared/state-dir';
import { ChildLog } from './child-log';
import { getHealth } from './llama-client';
import type { ModelFacts } from '../memory/model-facts';
import { readModelFile, readProjectorFile } from '../memory/model-file';
import { serverMemoryOptions } from '../memory/server-args';
import { PROMPT_CACHE_MIN_MIB, promptCacheTokens, resolvePromptCacheMiB } from '../memory/prompt-cache';
import { checkpointSize, kvBytesPerToken } from '../memory/plan';
import { autoCheckpoints } from '../memory/checkpoints';
import { isLoadEnd, parseLoadLine, parseProgressLine, setsVerbosity, type LoadProgress } from './load-log';
import { cachedPromptsOf, cacheListingWarning, LOG_QUEUE_LINES, RELAUNCH_AT_PROMPTS, type ListingKept } from './cache-listing';
import { settleLostConnection } from './lost-connection';
import { signalGroup, terminate } from '../../platform/process-group';
import { NONCE_ENV, processStartTime } from '../../platform/process-identity';
import { watchForStall } from './stall-watchdog';
import { httpThreads, socketPathFor, type Endpoint } from './endpoint';
import { setsFlag } from '../config/llama-args';

export type SupervisorTimings = Config['supervisor'];

export interface InstanceOptions {
  /** `<model>#<n>`. */
  id: string;
  model: LaunchModel;
  binary: string;
  timings: SupervisorTimings;
  stateDir: StateDir;
  logger: Logger;
  /** Kill the child when the daemon dies, even by SIGKILL (Linux `setpriv --pdeathsig`). Default true where available. */
  parentDeathSignal?: boolean;
  /** The daemon's nonce: put in the child's environment and its pid record, so a later daemon can tell it is ours. */
  nonce?: string;
  /**
   * The placement an earlier load recorded for this launch, if it cannot differ this time
   * (memory/calibration.ts recordedPlacement): llama-server then runs at -lv 3, not 4.
   */
  recordedPlacement?: (model: LaunchModel) => Promise<Placement | undefined>;
  /**
   * Whether a relaunch may take this instance out of service now (supervisor.ts: not while another
   * replica of its model is out of service). Asked again at each request's "cache state" line. Default yes.
   */
  mayRelaunch?: (inst: LlamaInstance) => boolean;
}

export interface StateEvent {
  from: InstanceState;
  to: InstanceState;
  status: InstanceStatus;
}

/** Lines of llama-server output that explain a failure better than its exit code. */
const ERROR_LINE = /error|failed|couldn't|cannot|abort|terminate|exception/i;
const PORT_IN_USE = /couldn't bind HTTP server socket|address already in use/i;
const LOAD_FAILURE = /failed to load model|error loading model|exiting due to model loading error|failed to load models on startup/i;
const MAX_PORT_RETRIES = 5;
/** How long ready waits for the load log's last line after /health answered ok (it usually trails by < 10 ms). */
const LOAD_LOG_GRACE_MS = 500;
/** llama-server's router/child protocol (tools/server/server-models.cpp): any value of the port makes it a child. */
const ROUTER_PORT_ENV = 'LLAMA_SERVER_ROUTER_PORT';
const ROUTER_EXIT_COMMAND = 'cmd_router_to_child:exit';

/** How long a relaunch at -lv 3 waits for the running requests (new ones wait meanwhile), and when it is tried again if they have not ended. */
const RELAUNCH_DRAIN_MS = 3_000;
const RELAUNCH_RETRY_MS = 30_000;

const hasSetpriv = process.platform === 'linux' && ['/usr/bin/setpriv', '/bin/setpriv'].some((p) => existsSync(p));

export class LlamaInstance extends EventEmitter<{ state: [StateEvent]; progress: [LoadProgress]; requestStart: []; idle: [] }> {
  readonly id: string;
  readonly model: LaunchModel;
  readonly log: ChildLog;
  #opts: InstanceOptions;
  #logger: Logger;
  #state: InstanceState = 'stopped';
  #since = Date.now();
  #want: 'running' | 'stopped' = 'stopped';
  #generation = 0;
  #child: ResultPromise | undefined;
  #exited: Promise<void> | undefined;
  #pid: number | undefined;
  #port: number | undefined;
  /** The UNIX socket the current process also listens on, for the daemon's own requests (endpoint.ts). */
  #socketPath: string | undefined;
  /** Its port alone from now on: this llama-server could not listen on a socket (a build before `--host` took several, or `.sock`), or the state dir's path allows none. */
  #tcpOnly = false;
  #restarts = 0;
  /** Prompt tokens the running process's host prompt cache holds (Infinity: unknown; 0: off). */
  #promptCacheTokens = Number.POSITIVE_INFINITY;
  #consecutiveCrashes = 0;
  #crashTimes: number[] = [];
  #portRetries = 0;
  #readyAt: number | undefined;
  /** The load log's last line was read: `offload` is complete (see isLoadEnd). */
  #loadLogEnded = false;
  #loadLogEnd: (() => void) | undefined;
  #lastError: string | undefined;
  #lastLogLines: string[] | undefined;
  #nextRestartAt: number | undefined;
  #backoffTimer: NodeJS.Timeout | undefined;
  #healthAbort: AbortController | undefined;
  #pendingError: string | undefined;
  /** Set while a lost connection is being checked (see connectionLost); no new requests come here meanwhile. */
  #suspect: Promise<void> | undefined;
  /** Placement read from the current process's load log, or recorded by an earlier load (then `recordedAt`). */
  #offload: Placement = { buffers: {} };
  /** How far the current process's load got (load-log.ts parseProgressLine); reset at each launch. */
  #load: LoadProgress = { phase: 'starting' };
  /** The current process's API key: only the daemon can use it (see #launch). */
  #apiKey = '';
  /** Aborted when the current process stalls: every request to it ends at once. */
  #requestAbort = requestAbort();
  #watchAbort: AbortController | undefined;
  #inFlight = 0;
  #lastProgressAt = Date.now();
  /** The current process's prompt-cache listing warning (cache-listing.ts): logged once, in status while it runs (its cache never empties). */
  #cacheWarning: string | undefined;
  /**
   * What the current process's prompt-cache listing may lead to: `relaunch` (at -lv 4 only for its
   * placement: once that is recorded, a relaunch at -lv 3 ends the listing), `pending` (that relaunch
   * is under way: no new requests come here), or a reason it stays (the warning then says what to do).
   */
  #listing: 'relaunch' | 'pending' | ListingKept | undefined;
  /** A relaunch that found requests still running after RELAUNCH_DRAIN_MS is tried again from then. */
  #relaunchAfter = 0;

  constructor(opts: InstanceOptions) {
    super();
    this.id = opts.id;
    this.model = opts.model;
    this.#opts = opts;
    this.#logger = opts.logger.child(opts.id);
    const fileName = `${instanceFileStem(opts.id)}.log`;
    this.log = new ChildLog({ file: join(opts.stateDir.logs, fileName), drop: isLogNoise });
    this.log.onLine((line) => {
      if (this.#loadLogEnded) {
        // Later lines (prompt cache, requests) are no placement; a growing prompt-cache listing is acted on.
        const prompts = cachedPromptsOf(line);
        if (prompts !== undefined) this.#onCachedPrompts(prompts);
        return;
      }
      if (isLoadEnd(line)) {
        this.#loadLogEnded = true;
        this.#loadLogEnd?.();
        return;
      }
      if (this.#offload.recordedAt === undefined) parseLoadLine(line, this.#offload);
      // llama-server reports at most every 200 ms (plus 4 phase lines a load): no throttle needed here.
      if (parseProgressLine(line, this.#load)) this.emit('progress', { ...this.#load });
    });
  }

  get state(): InstanceState {
    return this.#state;
  }

  /** Prompt tokens its llama-server's host prompt cache (--cache-ram) holds, for the scheduler's model of it. */
  get promptCacheTokens(): number {
    return this.#promptCacheTokens;
  }

  get port(): number | undefined {
    return this.#port;
  }

  get pid(): number | undefined {
    return this.#pid;
  }

  /** `Bearer` key of the running process; llama-server refuses every endpoint but /health without it. */
  get apiKey(): string {
    return this.#apiKey;
  }

  /** Aborted (reason: SW_ERR_INSTANCE_STALLED) when the current process stalls; requests to it use it. */
  get requestSignal(): AbortSignal {
    return this.#requestAbort.signal;
  }

  /** Counts a request in flight here for the stall watchdog; call the result once it ended. */
  trackRequest(): () => void {
    if (this.#inFlight++ === 0) this.#lastProgressAt = Date.now(); // the clock starts with the first request
    this.emit('requestStart'); // the supervisor's /slots poll returns to its active cadence
    let done = false;
    return () => {
      if (!done && --this.#inFlight === 0) this.emit('idle');
      done = true;
    };
  }

  /** Requests counted in flight here (trackRequest). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** The current -lv 4 process's "cache state" line: relaunch it at -lv 3 where that ends the listing, else warn once it is past the log queue. */
  #onCachedPrompts(prompts: number): void {
    if (this.#listing === 'relaunch' && prompts >= RELAUNCH_AT_PROMPTS && Date.now() >= this.#relaunchAfter && (this.#opts.mayRelaunch?.(this) ?? true)) {
      this.#listing = 'pending';
      void this.#relaunchQuieter(prompts);
    } else if ((this.#listing === 'args' || this.#listing === 'placement') && this.#cacheWarning === undefined && prompts >= LOG_QUEUE_LINES) {
      this.#cacheWarning = cacheListingWarning(prompts, this.#listing);
      this.#logger.warn(this.#cacheWarning);
    }
  }

  /**
   * Takes no new requests, lets the running ones end, then restarts at -lv 3 on the placement this load
   * recorded (queued requests wait for it, as for any restart). Only a model that caches many short
   * prompts gets here, so the reload is short; the listing would cost every later request instead.
   */
  async #relaunchQuieter(prompts: number): Promise<void> {
    const gen = this.#generation;
    // Asked now, with this process still holding its memory: a GPU "auto" placement then reads as one
    // that may change (no relaunch, the warning instead), never the other way round.
    const recorded = await this.#opts.recordedPlacement?.(this.model).catch(() => undefined);
    if (gen !== this.#generation || this.#listing !== 'pending') return;
    if (!recorded) {
      this.#listing = 'placement';
      this.#onCachedPrompts(prompts);
      return;
    }
    this.#logger.info(
      `llama-server's prompt cache holds ${prompts} prompts, and at -lv 4 (for the placement of its first load, now recorded) it logs every one on every request: ` +
        `restarting it at -lv 3 once its ${this.#inFlight} running request(s) end; new ones wait for it`,
    );
    // True once nothing is in flight here; false (the timeout's abort) if something still is after RELAUNCH_DRAIN_MS.
    const idle = this.#inFlight === 0 || (await once(this, 'idle', { signal: AbortSignal.timeout(RELAUNCH_DRAIN_MS) }).then(() => true, () => false));
    if (gen !== this.#generation || this.#want !== 'running' || this.#listing !== 'pending') return;
    if (!idle) {
      // A long generation would hold every new request back: serve on, and try again later.
      this.#listing = 'relaunch';
      this.#relaunchAfter = Date.now() + RELAUNCH_RETRY_MS;
      this.#logger.info(`${this.#inFlight} request(s) still running after ${RELAUNCH_DRAIN_MS / 1000} s: serving on at -lv 4, the restart is tried again in ${RELAUNCH_RETRY_MS / 1000} s`);
      return;
    }
    await this.restart();
  }

  /** A sign of life from the process: bytes of a response, an answer to /slots (see supervisor.ts). */
  noteProgress(): void {
    this.#lastProgressAt = Date.now();
  }

  /** Whether the scheduler may send new requests here: ready, no lost connection being checked, no relaunch pending. */
  get routable(): boolean {
    return this.#state === 'ready' && this.#suspect === undefined && this.#listing !== 'pending';
  }

  /** Base URL of the running server's loopback port, e.g. `http://127.0.0.1:41234`: what others use. */
  get url(): string | undefined {
    return this.#port === undefined ? undefined : `http://127.0.0.1:${this.#port}`;
  }

  /** How the daemon reaches the running server: its socket where it listens on one, else `url`. */
  get endpoint(): Endpoint | undefined {
    const origin = this.url;
    if (origin === undefined) return undefined;
    return this.#socketPath ? { origin, socketPath: this.#socketPath } : { origin };
  }

  status(): InstanceStatus {
    const s: InstanceStatus = { id: this.id, state: this.#state, since: this.#since, restarts: this.#restarts, slots: [] };
    if (this.#pid !== undefined) s.pid = this.#pid;
    if (this.#port !== undefined) s.port = this.#port;
    if (this.#socketPath !== undefined && this.#pid !== undefined) s.socket = this.#socketPath;
    if (this.#lastError) s.lastError = this.#lastError;
    if (this.#cacheWarning && this.#state === 'ready') s.warnings = [this.#cacheWarning];
    if (this.#lastLogLines) s.lastLogLines = this.#lastLogLines;
    if (this.#state === 'backoff' && this.#nextRestartAt) s.nextRestartAt = this.#nextRestartAt;
    if (this.#offload.layersTotal !== undefined || Object.keys(this.#offload.buffers).length) s.offload = structuredClone(this.#offload);
    return s;
  }

  /** How far the current load got; meaningful while starting or loading. */
  loadProgress(): LoadProgress {
    return { ...this.#load };
  }

  /** Intent: keep this instance running. Idempotent; a `failed` or `stopped` one gets a fresh crash budget (a new start, not a restart). */
  start(): void {
    this.#want = 'running';
    if (this.#state === 'failed' || this.#state === 'stopped') {
      this.#crashTimes = [];
      this.#consecutiveCrashes = 0;
    }
    if (this.#state === 'stopped' || this.#state === 'failed') void this.#launch();
    // stopping: #onExit relaunches because #want is running; other states are already on their way up.
  }

  /** Intent: stop. SIGTERM to the process group, SIGKILL after the grace period, resolves once it exited. */
  async stop(graceMs = this.#opts.timings.stopGraceMs): Promise<void> {
    this.#want = 'stopped';
    this.#clearBackoff();
    if (this.#state === 'stopped') return;
    if (!this.#child) {
      // Between launch steps or waiting to restart: invalidate the pending launch.
      this.#generation++;
      this.#transition('stopped', { clearError: false });
      return;
    }
    if (this.#state !== 'stopping') this.#transition('stopping');
    this.#healthAbort?.abort();
    const exited = this.#exited!;
    const pid = this.#pid;
    if (pid === undefined) {
      await exited; // the spawn failed: nothing to signal, and its exit is reported at once
      return;
    }
    // As a router child (see #launch) a ready llama-server joins a thread that waits on stdin before it
    // exits after SIGTERM: the router's exit command ends that wait (tools/server/server-models.cpp).
    this.#child.stdin?.write(`${ROUTER_EXIT_COMMAND}\n`);
    await terminate(
      { pid, exited },
      {
        graceMs,
        onKill: () => this.#logger.warn(`did not exit within ${graceMs} ms of SIGTERM; sending SIGKILL`),
        onError: (err) => this.#logger.warn(err.message),
      },
    );
  }

  async restart(): Promise<void> {
    await this.stop();
    this.start();
  }

  /** Resolves when ready; rejects with SW_ERR_INSTANCE_FAILED once it failed or was stopped. */
  ensureReady({ signal }: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state === 'ready') return Promise.resolve();
    if (this.#want === 'stopped' && this.#state !== 'stopping') {
      return Promise.reject(new SlotwiseError('SW_ERR_NO_INSTANCE', `[${this.id}] is not running — start it with \`slotwise up ${this.model.name}\``));
    }
    return new Promise((resolve, reject) => {
      const onState = (e: StateEvent): void => {
        if (e.to === 'ready') done(undefined);
        else if (e.to === 'failed') done(new SlotwiseError('SW_ERR_INSTANCE_FAILED', `[${this.id}] failed: ${this.#lastError ?? 'unknown reason'}`));
        else if (e.to === 'stopped' && this.#want === 'stopped') done(new SlotwiseError('SW_ERR_NO_INSTANCE', `[${this.id}] was stopped`));
      };
      const onAbort = (): void => done(signal!.reason ?? new SlotwiseError('SW_ERR_CANCELLED', `[${this.id}] wait for ready was cancelled`));
      const done = (err: unknown): void => {
        this.off('state', onState);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      this.on('state', onState);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * A request here failed as if the process were gone (connection refused or reset before any
   * byte). The exit may not have been seen yet — the socket error often arrives first — so until
   * that is settled the instance is not routable, and a retry cannot land on the dead process.
   * Settled when the state leaves `ready` (the exit was seen), when /health answers 200 (the
   * process is alive: only the connection was lost), or after `limitMs`. Never rejects; concurrent
   * callers share one check.
   */
  connectionLost(limitMs = 5000): Promise<void> {
    if (this.#state !== 'ready') return Promise.resolve();
    if (!this.#suspect) {
      this.#logger.warn('a request lost its connection; no new requests until the exit is seen or /health answers');
      this.#suspect = settleLostConnection(this, this.endpoint!, limitMs)
        .then((how) => this.#logger.info(`lost connection settled: ${how}`))
        .finally(() => (this.#suspect = undefined));
    }
    return this.#suspect;
  }

  // ------------------------------------------------------------------------------------------

  async #launch(): Promise<void> {
    const gen = ++this.#generation;
    this.#clearBackoff();
    this.#transition('starting', { clearError: false });
    let perToken: number | undefined;
    let checkpoints: number | undefined;
    try {
      const file = await readModelFile(this.model.path); // a missing or corrupt file fails now, with the reader's clear reason
      perToken = kvPerToken(file.facts, this.model.args);
      // The model's other files fail it likewise, under the key that names them.
      const underKey = (key: string) => (err: unknown): never => {
        throw new SlotwiseError('SW_ERR_MODEL_FILE', `models.${this.model.name}.${key}: ${(err as Error).message}`);
      };
      if (this.model.mmproj) await readProjectorFile(this.model.mmproj).catch(underKey('mmproj'));
      const draft = this.model.draft ? await readModelFile(this.model.draft).catch(underKey('draft')) : undefined;
      checkpoints = ctxCheckpointsFor(file.facts, draft?.facts, this.model);
    } catch (err) {
      if (gen === this.#generation) this.#fail(err instanceof SlotwiseError ? err.message : `cannot read model file: ${(err as Error).message}`);
      return;
    }
    // Known placement: no need for -lv 4, whose per-request listing of the prompt cache slows llama-server down.
    const recorded = setsVerbosity(this.model.args) ? undefined : await this.#opts.recordedPlacement?.(this.model).catch(() => undefined);
    const port = await freePort();
    if (gen !== this.#generation || this.#want !== 'running') return;
    const socketPath = this.#tcpOnly ? undefined : socketPathFor(this.#opts.stateDir.sockets, this.id);
    if (!socketPath && !this.#tcpOnly && process.platform !== 'win32') {
      this.#tcpOnly = true; // said once; the path will not change
      this.#logger.info(`no UNIX socket for this instance: ${join(this.#opts.stateDir.sockets, '…')} is too long for one or holds a comma or quote; the daemon uses its TCP port (a shorter --state-dir gives it one)`);
    }
    if (socketPath) {
      // The dir may have been removed under a running daemon; a file left by a process that died would fail the bind.
      await mkdir(this.#opts.stateDir.sockets, { recursive: true, mode: 0o700 }).catch(() => undefined);
      await rm(socketPath, { force: true }).catch(() => undefined);
    }
    if (gen !== this.#generation || this.#want !== 'running') return;

    const cacheMiB = resolvePromptCacheMiB(this.model.promptCacheMiB, perToken, this.model.slots, this.model.ctxPerSlot, totalmem());
    this.#promptCacheTokens = promptCacheTokens(cacheMiB, perToken);
    const args = llamaServerArgs(this.model, { port, socketPath }, cacheMiB, recorded ? 3 : 4, checkpoints);
    // A fresh key per process, in its environment (LLAMA_API_KEY, see `llama-server --help`), never
    // on the command line, which every user of the host can read in `ps`.
    this.#apiKey = randomBytes(24).toString('base64url');
    this.#requestAbort = requestAbort();
    let command = this.#opts.binary;
    let argv = args;
    if ((this.#opts.parentDeathSignal ?? true) && hasSetpriv) {
      // setpriv execs llama-server in place (same pid) with PR_SET_PDEATHSIG, so a SIGKILLed daemon leaves no orphan.
      command = 'setpriv';
      argv = ['--pdeathsig', 'SIGKILL', '--', this.#opts.binary, ...args];
    }
    this.log.line(`--- ${new Date().toISOString()} slotwise: ${this.#opts.binary} ${args.join(' ')}`);
    const child = execa(command, argv, {
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      detached: true, // own process group: stop() signals the whole group
      reject: false,
      buffer: false,
      cleanup: false,
      env: {
        LLAMA_API_KEY: this.#apiKey,
        // CUDA numbers GPUs fastest first by default, nvidia-smi by PCI bus: in PCI order llama-server's
        // CUDA0 is nvidia-smi's GPU 0, which the plan, the buffers in status and the GPU panel all assume.
        CUDA_DEVICE_ORDER: process.env.CUDA_DEVICE_ORDER ?? 'PCI_BUS_ID',
        // Run as a router child: the only way this build reports load progress (load-log.ts). Its other
        // effects: a ready line on stdout, and once ready it exits when stdin closes (the daemon is gone),
        // a second tie to the daemon's life: left out with the parent-death signal (SLOTWISE_NO_PDEATHSIG).
        ...(this.#opts.parentDeathSignal ?? true ? { [ROUTER_PORT_ENV]: '0' } : {}),
        ...(this.#opts.nonce ? { [NONCE_ENV]: this.#opts.nonce } : {}),
      },
    });
    child.stdin?.on('error', () => {}); // EPIPE on the exit command of a process that already died: its exit is reported
    this.#child = child;
    this.#pid = child.pid;
    this.#port = port;
    this.#socketPath = socketPath;
    this.#readyAt = undefined;
    this.#loadLogEnded = false;
    this.#cacheWarning = undefined;
    this.#listing = setsVerbosity(this.model.args) ? 'args' : recorded ? undefined : 'relaunch';
    this.#offload = recorded ?? { buffers: {} };
    this.#load = { phase: 'starting' };
    child.stdout?.on('data', (d: Buffer) => this.log.write(d));
    child.stderr?.on('data', (d: Buffer) => this.log.write(d));
    this.#exited = child.then(
      (result) => this.#onExit(gen, describeExit(result.exitCode, result.signal, result.failed ? result.shortMessage : undefined), socketPath),
      (err: Error) => this.#onExit(gen, `could not be started: ${firstLine(err.message)}`, socketPath),
    );
    if (child.pid === undefined) return; // spawn failed; #onExit reports it
    await writePidRecord(this.#opts.stateDir, {
      pid: child.pid,
      instance: this.id,
      binary: this.#opts.binary,
      port,
      daemonPid: process.pid,
      startedAt: new Date().toISOString(),
      startTime: processStartTime(child.pid),
      nonce: this.#opts.nonce,
      daemonStartTime: processStartTime(process.pid),
    });
    if (this.#child !== child) {
      // It exited while the record was written (a binary that cannot start: a missing library, a bad
      // flag): #onExit has already counted the crash and backed off, or failed it. Do not wait for its health.
      if (this.#child === undefined) void removePidRecord(this.#opts.stateDir, this.id).catch(() => undefined);
      return;
    }
    this.#transition('starting', { clearError: false });
    void this.#waitHealthy(gen);
  }

  /** Resolves once the load log's end was read, or after `ms` (a build or verbosity that never prints it). */
  #loadLogRead(ms: number): Promise<void> {
    if (this.#loadLogEnded) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#loadLogEnd = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#loadLogEnd = done;
    });
  }

  async #waitHealthy(gen: number): Promise<void> {
    const abort = new AbortController();
    this.#healthAbort = abort;
    const target = this.endpoint!;
    const deadline = Date.now() + this.#opts.timings.healthTimeoutMs;
    try {
      while (gen === this.#generation && (this.#state === 'starting' || this.#state === 'loading')) {
        const health = await getHealth(target, { timeoutMs: 2000, signal: abort.signal });
        if (gen !== this.#generation || abort.signal.aborted) return;
        if (health.kind === 'ok') {
          // Ready means its buffers are known (the loader calibrates from them): wait, briefly, for
          // the log thread's last load lines when /health answered first.
          await this.#loadLogRead(LOAD_LOG_GRACE_MS);
          if (gen !== this.#generation || abort.signal.aborted) return;
          this.#readyAt = Date.now();
          this.#portRetries = 0;
          this.#transition('ready');
          return;
        }
        if (health.kind === 'loading' && this.#state === 'starting') this.#transition('loading');
        if (Date.now() > deadline) {
          this.#pendingError = `health check timed out after ${Math.round(this.#opts.timings.healthTimeoutMs / 1000)} s`;
          this.#logger.warn(this.#pendingError);
          this.#killGroup();
          return;
        }
        await sleep(150, undefined, { signal: abort.signal });
      }
    } catch (err) {
      if (!abort.signal.aborted) this.#logger.warn(`health polling stopped: ${(err as Error).message}`);
      // aborted: stop() or an exit ended the wait; nothing to report
    }
  }

  #onExit(gen: number, how: string, socketPath: string | undefined): void {
    this.log.flush();
    // llama-server leaves its socket file behind; the next launch of this id would not bind over it.
    if (socketPath) removeSocketFile(socketPath);
    this.#healthAbort?.abort();
    const pid = this.#pid;
    this.#child = undefined;
    this.#pid = undefined;
    void removePidRecord(this.#opts.stateDir, this.id).catch((err: Error) => this.#logger.warn(`could not remove pid file: ${err.message}`));
    this.log.line(`--- slotwise: process ${pid ?? '?'} ${how}`);
    if (gen !== this.#generation) return;

    if (this.#want === 'stopped' || this.#state === 'stopping') {
      this.#transition('stopped');
      if (this.#want === 'running') void this.#launch(); // restart() or start() during stopping
      return;
    }

    const neverReady = this.#readyAt === undefined;
    const recent = this.log.tail(40);
    const explanation = this.#pendingError ?? lastMatching(recent, ERROR_LINE);
    this.#pendingError = undefined;
    const reason = explanation ? `${how}: ${explanation}` : how;

    if (neverReady && socketPath && recent.some((l) => PORT_IN_USE.test(l) && l.includes(socketPath))) {
      // An older build reads `--host 127.0.0.1,PATH.sock` as one host name it cannot bind: not retried as a port.
      this.#tcpOnly = true;
      this.#logger.warn(`this llama-server cannot listen on a UNIX socket besides its port (${firstLine(explanation ?? how)}); retrying on its port alone`);
      void this.#launch();
      return;
    }
    if (neverReady && recent.some((l) => PORT_IN_USE.test(l)) && this.#portRetries < MAX_PORT_RETRIES) {
      this.#portRetries++;
      this.#logger.warn(`port ${this.#port} was taken; retrying on another port (${this.#portRetries}/${MAX_PORT_RETRIES})`);
      void this.#launch();
      return;
    }
    if (neverReady && recent.some((l) => LOAD_FAILURE.test(l))) {
      // Deterministic: restarting cannot help until the file or args change.
      this.#fail(`llama-server could not load ${this.model.path}: ${explanation ?? how}`);
      return;
    }

    const now = Date.now();
    if (this.#readyAt !== undefined && now - this.#readyAt >= this.#opts.timings.healthyResetMs) this.#consecutiveCrashes = 0;
    this.#consecutiveCrashes++;
    this.#crashTimes = this.#crashTimes.filter((t) => now - t < this.#opts.timings.crashWindowMs);
    this.#crashTimes.push(now);
    this.#lastError = reason;
    this.#lastLogLines = this.log.tail(20);
    this.#transition('crashed', { clearError: false });
    if (this.#crashTimes.length >= this.#opts.timings.maxCrashes) {
      const windowMin = Math.round(this.#opts.timings.crashWindowMs / 60_000);
      this.#fail(`crashed ${this.#crashTimes.length} times in ${windowMin} min; last: ${reason}`);
      return;
    }
    const t = this.#opts.timings;
    const delay = Math.min(t.backoffInitialMs * 2 ** (this.#consecutiveCrashes - 1), t.backoffMaxMs);
    this.#nextRestartAt = now + delay;
    this.#transition('backoff', { clearError: false });
    this.#backoffTimer = setTimeout(() => {
      this.#backoffTimer = undefined;
      if (this.#want === 'running' && this.#state === 'backoff') {
        this.#restarts++;
        void this.#launch();
      }
    }, delay);
  }

  /** Frozen: fail its requests now and SIGKILL it (a stopped process ignores SIGTERM); #onExit restarts it like a crash. */
  #stall(reason: string): void {
    if (this.#state !== 'ready') return;
    this.#pendingError = `stalled: ${reason}`;
    this.#lastError = this.#pendingError;
    this.#logger.warn(`${this.#pendingError}; killing the process group`);
    this.#transition('stalled');
    this.#requestAbort.abort(new SlotwiseError('SW_ERR_INSTANCE_STALLED', `[${this.id}] llama-server stalled (${reason}) — it was killed and restarts; raise supervisor.stallTimeoutMs if it was only slow`));
    this.#killGroup();
  }

  #fail(reason: string): void {
    this.#lastError = reason;
    this.#lastLogLines = this.log.tail(20);
    this.#logger.error(reason);
    this.#transition('failed', { clearError: false });
  }

  #transition(to: InstanceState, { clearError = to === 'ready' }: { clearError?: boolean } = {}): void {
    const from = this.#state;
    this.#state = to;
    this.#since = Date.now();
    if (clearError) this.#lastLogLines = undefined;
    if (to !== 'backoff') this.#nextRestartAt = undefined;
    if (from !== to) this.#logger.info(`${from} → ${to}${to === 'failed' || to === 'crashed' ? `: ${this.#lastError}` : ''}`);
    if (to === 'stopped' || to === 'failed') this.log.close(); // no fd held by an instance that is not running
    if (from === 'ready' && to !== 'ready') this.#watchAbort?.abort();
    if (to === 'ready' && from !== 'ready') this.#watch();
    this.emit('state', { from, to, status: this.status() });
  }

  #watch(): void {
    const abort = new AbortController();
    this.#watchAbort = abort;
    this.#lastProgressAt = Date.now();
    void watchForStall({
      target: this.endpoint!,
      timeoutMs: this.#opts.timings.stallTimeoutMs,
      signal: abort.signal,
      inFlight: () => this.#inFlight,
      lastProgressAt: () => this.#lastProgressAt,
      onStall: (reason) => this.#stall(reason),
    });
  }

  #killGroup(): void {
    if (this.#pid === undefined) return;
    // 'gone': already exited, and #onExit reports it.
    const result = signalGroup(this.#pid, 'SIGKILL');
    if (result instanceof Error) this.#logger.warn(result.message);
  }

  #clearBackoff(): void {
    if (this.#backoffTimer) clearTimeout(this.#backoffTimer);
    this.#backoffTimer = undefined;
  }
}

/** KV bytes per token from the header; undefined when its facts or the args cannot say (the cache is then sized at its minimum). */
function kvPerToken(facts: ModelFacts | Error, args: readonly string[]): number | undefined {
  if (facts instanceof Error) return undefined;
  try {
    return kvBytesPerToken(facts, serverMemoryOptions(args));
  } catch {
    return undefined;
  }
}

/**
 * The `--ctx-checkpoints` Slotwise passes for a model that makes context checkpoints (window or
 * recurrent layers: memory/checkpoints.ts), sized as the plan counts them; undefined when it makes
 * none, its args set their own, or its header cannot be planned from.
 */
function ctxCheckpointsFor(facts: ModelFacts | Error, draft: ModelFacts | Error | undefined, model: LaunchModel): number | undefined {
  if (facts instanceof Error) return undefined;
  try {
    const server = serverMemoryOptions(model.args);
    if (server.ctxCheckpoints !== undefined) return undefined;
    // A draft's state goes into each checkpoint too: the bound counts it.
    const bytes = checkpointSize(draft && !(draft instanceof Error) ? { ...facts, draft } : facts, server, model.ctxPerSlot);
    return bytes > 0 ? autoCheckpoints(bytes, model.slots, totalmem()) : undefined;
  } catch {
    return undefined;
  }
}

/** Where a llama-server listens: its loopback port, and a UNIX socket for the daemon where it has one. */
export interface Listen {
  port: number;
  socketPath?: string;
}

/**
 * The llama-server command line Slotwise owns; user `args` come last. `promptCacheMiB`: the resolved
 * `--cache-ram` when the model's is "auto" (daemon/memory/prompt-cache.ts). `verbosity`: 4 prints the
 * load's placement lines (layers, buffers: load-log.ts), 3 leaves them out when an earlier load
 * recorded them; a verbosity in the user's args wins over either. `ctxCheckpoints`: the bound on
 * context checkpoints per slot (ctxCheckpointsFor), passed when set.
 */
export function llamaServerArgs(model: LaunchModel, { port, socketPath }: Listen, promptCacheMiB?: number, verbosity: 3 | 4 = 4, ctxCheckpoints?: number): string[] {
  const args = [
    '-m', model.path,
    ...(model.mmproj ? ['--mmproj', model.mmproj] : []),
    // A draft model is loaded but unused without a speculative type: draft-simple unless the args name one.
    ...(model.draft ? ['--spec-draft-model', model.draft, ...(setsFlag(model.args, ['--spec-type']) ? [] : ['--spec-type', 'draft-simple'])] : []),
    '--alias', model.name, // responses name the configured model, not its file path
    // The socket is the daemon's (endpoint.ts); the loopback port is for everyone else.
    '--host', socketPath ? `127.0.0.1,${socketPath}` : '127.0.0.1',
    '--port', String(port),
    '--parallel', String(model.slots),
    '--ctx-size', String(model.slots * model.ctxPerSlot),
    '--metrics',
    '--slots',
    // llama-server's default (8 GiB) let a soak grow it to 522 MB; "auto" sizes it from the model: see ModelConfig
    '--cache-ram', String(typeof model.promptCacheMiB === 'number' ? model.promptCacheMiB : (promptCacheMiB ?? PROMPT_CACHE_MIN_MIB)),
  ];
  if (typeof model.gpuLayers === 'number') args.push('-ngl', String(model.gpuLayers));
  else if (model.gpuLayers === 'all') args.push('-ngl', 'all');
  // 'auto': leave -ngl and --fit to llama-server's own fitting
  if (model.kind === 'embedding') args.push('--embedding'); // pooling: the model's own (`<arch>.pooling_type`), else `--pooling` in args
  else if (model.kind === 'rerank') args.push('--reranking'); // implies rank pooling
  if (!setsVerbosity(model.args)) args.push('-lv', String(verbosity));
  if (ctxCheckpoints !== undefined) args.push('--ctx-checkpoints', String(ctxCheckpoints));
  // Threads for the streams, the daemon's spare connections and its polls (endpoint.ts httpThreads).
  if (!setsFlag(model.args, ['--threads-http'])) args.push('--threads-http', String(httpThreads(model.slots)));
  return [...args, ...model.args];
}

/**
 * Lines of llama-server's -lv 4 output (needed for the load's placement lines) that would bury the
 * useful ones, in the log file and in the ring `logs.tail` and crash reports read:
 * - the whole prompt cache, listed on every request, one line per cached prompt: ~300 lines a request
 *   after a few hundred requests, which rotated the log every few seconds under load;
 * - "all slots are idle", a trace line after every task of an idle server, so after each of the
 *   daemon's own /slots and /metrics polls: 5 lines a second, all day, in an idle model's log.
 */
export function isLogNoise(line: string): boolean {
  return / srv +(load|update): +- prompt /.test(line) || line.endsWith(' srv  update_slots: all slots are idle');
}

export function describeExit(code: number | undefined, signal: string | undefined, fallback?: string): string {
  if (signal) return `killed by ${signal}`;
  if (code !== undefined) return `exited with code ${code}`;
  return fallback ? firstLine(fallback) : 'exited';
}

function lastMatching(lines: string[], re: RegExp): string | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!;
    if (!line.startsWith('--- slotwise') && re.test(line)) return firstLine(line.trim());
  }
  return undefined;
}

/** An ephemeral port free right now; a race with another process is caught as "port in use" and retried. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function removeSocketFile(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // the next launch's own removal says nothing either; its bind failure would name the file
  }
}

/** The controller behind `requestSignal`: every stream in flight listens on its signal, so no listener cap (Node warns past 10). */
function requestAbort(): AbortController {
  const ctl = new AbortController();
  setMaxListeners(0, ctl.signal);
  return ctl;
}
