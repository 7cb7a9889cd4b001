// The daemon process: config → state dir → supervisor → HTTP/WS server → autostart; signals.
// Wiring only: each part lives in its own module.
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, maxHeaderSize, type RequestListener, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { createServer as createHttpsServer } from 'node:https';
import { version } from '../package.json';
import { loadConfig } from './config/load';
import { resolveConfigPath } from '../shared/paths';
import type { Config } from './config/types';
import { SlotwiseError } from '../shared/errors';
import { onInternalError } from '../platform/internal-errors';
import { createHttpHandler, sendJson, type Route } from './server/http';
import { listen } from './server/listen';
import { findLlamaServer } from '../toolchain/binary';
import { createLogger, fileSink, streamSink, type Logger } from '../platform/log';
import { NONCE_ENV, processStartTime } from '../platform/process-identity';
import { coreHandlers } from './server/rpc';
import { ensureStateDir, ensureToken, removeDaemonInfo, writeDaemonInfo, type StateDir } from '../shared/state-dir';
import { secureStateDir } from '../shared/state-dir-perms';
import { lockStateDir, type DaemonLock } from './daemon-lock';
import { StatusHub } from './status/hub';
import { Supervisor } from './runtime/supervisor';
import { attachWebSocket } from './server/ws';
import { serveIgnoringUpgrade } from './server/ignore-upgrade';
import { answerClientError } from './server/client-error';
import { openAiRoutes } from './api/openai';
import { infillRoutes } from './api/infill';
import { anthropicRoutes } from './api/anthropic';
import { responsesRoutes } from './api/responses';
import { chatCountRoutes } from './api/count-tokens';
import { embeddingRoutes } from './api/embeddings';
import { Scheduler } from './scheduler/scheduler';
import { ModelLoader } from './runtime/loader';
import { readFreeMemory } from './memory/free-memory';
import { visibleGpus } from './resources/visible-gpus';
import { CalibrationStore, recordedPlacement, type GpusAtLaunch } from './memory/calibration';
import { AutoSlotsPreview } from './memory/auto-slots-preview';
import { JobStore } from './api/jobs';
import { JobArchive } from './api/job-archive';
import { MetricsRegistry, METRICS_CONTENT_TYPE } from './status/metrics';
import { startLoopLag } from './status/loop-lag';
import { ResourceSampler } from './resources/sampler';
import { startAutoscaler } from './autoscale/autoscaler';
import { join } from 'node:path';

export interface DaemonOptions {
  stateDir: string;
  configPath?: string;
  /** A ready config (the demo builds one); else loaded from configPath or the default location. */
  config?: Config;
  /** Overrides listen.port; 0 = any free port. */
  port?: number;
  env: NodeJS.ProcessEnv;
  /** Also log to stderr (foreground `slotwise daemon`). */
  logToStderr?: boolean;
}

export interface RunningDaemon {
  url: string;
  port: number;
  token: string;
  config: Config;
  stateDir: StateDir;
  supervisor: Supervisor;
  /** Queues and leases; its `lease` event records every ended lease (the bench's slot-time accounting). */
  scheduler: Scheduler;
  logger: Logger;
  /** Stops models, closes connections, removes daemon.json. Idempotent. */
  shutdown(reason: string): Promise<void>;
  /** Resolves after shutdown finished. */
  closed: Promise<void>;
}

export async function startDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const config = opts.config ?? (await loadConfig({ path: opts.configPath, env: opts.env, allowMissing: !opts.configPath }));
  const stateDir = await ensureStateDir(opts.stateDir);
  // Before the first log line: appending to a symlinked log would write wherever it points.
  const permFixes = await secureStateDir(stateDir);
  const lock = await lockStateDir(stateDir.root);
  try {
    return await runDaemon(opts, config, stateDir, lock, permFixes);
  } catch (err) {
    lock.release(); // a daemon that failed to start must not hold the state dir (the demo and bench run it in-process)
    throw err;
  }
}

async function runDaemon(opts: DaemonOptions, config: Config, stateDir: StateDir, lock: DaemonLock, permFixes: string[]): Promise<RunningDaemon> {
  const sinks = [fileSink(join(stateDir.logs, 'daemon.log'))];
  if (opts.logToStderr) sinks.push(streamSink(process.stderr));
  const logger = createLogger({ level: opts.env.SLOTWISE_LOG_LEVEL === 'debug' ? 'debug' : 'info', sinks });
  for (const fix of permFixes) logger.warn(`state dir permissions: ${fix}`);
  // `slotwise start` puts the nonce in our environment so /proc/PID/environ proves who we are; a
  // daemon run by hand makes one up (its children still carry it; `stop` reaches it over RPC).
  const nonce = /^[0-9a-f]{32}$/.test(opts.env[NONCE_ENV] ?? '') ? opts.env[NONCE_ENV]! : randomBytes(16).toString('hex');
  // cli/main.ts routes unexpected errors here in the daemon process: log them with their stack, keep serving.
  const stopLoggingInternal = onInternalError((e) => logger.error(`unexpected error (please report): ${e.detail ?? e.message}`));
  const binary = await findLlamaServer({ configured: config.llamaServer, env: opts.env });
  if (!binary && config.models.length > 0) {
    throw new SlotwiseError('SW_ERR_LLAMA_SERVER_NOT_FOUND', 'llama-server not found — run `slotwise setup` to build it, or set "llamaServer" in the config');
  }
  const token = await ensureToken(stateDir);
  const calibration = new CalibrationStore(stateDir.calibration, binary?.path);
  const supervisor: Supervisor = new Supervisor({
    config,
    // Called by an instance as it launches (itself starting): any other starting or loading one is a load nvidia-smi does not show yet.
    recordedPlacement: (model) => recordedPlacement(calibration, model, () => gpusAtLaunch(opts.env, supervisor.instances().filter((i) => i.state === 'starting' || i.state === 'loading').length > 1)),
    binary: binary?.path ?? 'llama-server',
    stateDir,
    logger,
    parentDeathSignal: opts.env.SLOTWISE_NO_PDEATHSIG !== '1',
    nonce,
  });
  await supervisor.readModelInfo();
  const reaped = await supervisor.reapOrphans();
  if (reaped) logger.warn(`reaped ${reaped} orphan llama-server process(es) from an earlier daemon`);

  const startedAt = Date.now();
  let url = '';
  const sampler = new ResourceSampler({
    intervalMs: config.gpu.sampleIntervalMs,
    pids: () => supervisor.instances().flatMap((i) => (i.pid === undefined ? [] : [i.pid])),
    logger: logger.child('resources'),
  });
  void sampler.start(); // never rejects; a hanging `nvidia-smi -L` must not delay startup
  const metrics = new MetricsRegistry();
  countGeneratedTokens(supervisor, (model, n) => metrics.addTokens(model, n));
  // The loader and the scheduler call each other through hooks; `scheduler` is bound before any request.
  const loader: ModelLoader = new ModelLoader({
    supervisor,
    config,
    logger: logger.child('loader'),
    readFree: async () => (await readFreeMemory(opts.env)).free,
    gpuOrder: visibleGpus(opts.env),
    calibration,
    busy: (m) => scheduler.busy(m),
    waiting: (m) => scheduler.waiting(m),
    fail: (m, err) => scheduler.failWaiters(m, err),
    hooks: { onLoaded: (m, s) => metrics.observeLoad(m, s), onUnloaded: (m, r) => metrics.countUnload(m, r) },
  });
  const scheduler = new Scheduler({
    supervisor,
    config,
    hooks: {
      onQueueWait: (m, s) => metrics.observeQueueWait(m, s),
      onOutcome: (m, o) => metrics.countRequest(m, o),
      onSuperseded: (m, started) => metrics.countSuperseded(m, started),
      onHandoff: (m) => metrics.countHandoff(m),
      onDemand: (m) => loader.demand(m),
      onLease: (m) => loader.used(m),
      onIdle: (m) => loader.idle(m),
      preparing: (m) => loader.preparing(m),
      waitingForRoom: (m) => loader.waitingForRoom(m),
    },
  });
  const archive = new JobArchive({ dir: stateDir.jobs, onError: (err) => logger.warn(`could not keep a job on disk: ${err.message}`) });
  const jobs = new JobStore({ scheduler, supervisor, archive });
  await jobs.restore();
  const autoSlotsPreview = new AutoSlotsPreview(config.models);
  // Where a user adds models: the file read, or the default path that had none. A config passed in
  // (the demo, the bench) has no file to name.
  const configFile = config.source ? { path: config.source, exists: true } : opts.config ? undefined : { path: resolveConfigPath(opts.configPath, opts.env), exists: false };
  const hub = new StatusHub({
    version,
    startedAt,
    url: () => url,
    ...(configFile ? { config: configFile } : {}),
    supervisor,
    resources: () => sampler.view(),
    memoryBudgetMiB: config.memoryBudgetMiB,
    planPreview: (m, free, room) => autoSlotsPreview.memoryFor(m, free, room),
    queue: (model) => {
      const v = scheduler.queueView(model);
      return v && { ...v.queue, received: v.received, outcomes: v.outcomes, superseded: v.superseded, supersededUnstarted: v.supersededUnstarted, inFlight: v.inFlight, slots: v.slots, promptTokens: v.promptTokens, draftTokens: v.draftTokens };
    },
  });
  supervisor.on('change', () => hub.changed());
  loader.on('change', () => hub.changed());
  loader.on('loadState', () => hub.changed({ now: true })); // unloaded/loading/ready reach subscribers at once, not up to 250 ms later
  scheduler.on('change', () => hub.changed());
  // Ticks only while a request runs or waits (status/loop-lag.ts); a scheduler event is when work begins.
  const loopLag = startLoopLag((s) => metrics.observeLoopLag(s), { active: () => scheduler.active() });
  scheduler.on('change', loopLag.wake);
  sampler.on('change', () => hub.changed());

  const stopAutoscaler = startAutoscaler({ supervisor, scheduler, snapshot: () => hub.snapshot(), config, logger });
  const guard = { token, allowedOrigins: config.listen.allowedOrigins, listenHost: config.listen.host, allowedHosts: config.listen.allowedHosts };
  const routes: Route[] = [
    { method: 'GET', path: '/healthz', open: true, handle: ({ res }) => sendJson(res, 200, { status: 'ok', version }) },
    { method: 'GET', path: '/api/status', handle: ({ res }) => sendJson(res, 200, hub.snapshot()) },
    // Each replica's own key, for a token holder who measures it directly (`slotwise bench --attach --direct`).
    // The token already grants everything the replicas do; processes without it still cannot reach them.
    {
      method: 'GET',
      path: '/api/instance-keys',
      handle: ({ res }) => sendJson(res, 200, Object.fromEntries(supervisor.instances().map((i) => [i.id, i.apiKey]))),
    },
    {
      method: 'GET',
      path: '/metrics',
      handle: async ({ res }) => {
        const body = await metrics.render(hub.snapshot());
        res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
        res.end(body);
      },
    },
    ...openAiRoutes({ supervisor, scheduler, models: () => hub.snapshot().models }),
    ...infillRoutes({ supervisor, scheduler }),
    ...anthropicRoutes({ supervisor, scheduler }),
    ...responsesRoutes({ supervisor, scheduler }),
    ...chatCountRoutes({ supervisor, scheduler }),
    ...embeddingRoutes({ supervisor, scheduler }),
  ];
  // Graceful shutdown (see shutdown below): `refusing` answers new requests 503, `cut` ends running ones.
  let refusing: SlotwiseError | undefined;
  const cut = new AbortController();
  // Every running request listens on it (removed when it ends): more than 10 at once is not a leak.
  setMaxListeners(0, cut.signal);
  const http = createHttpHandler({
    guard,
    maxBodyBytes: config.limits.maxBodyBytes,
    bodyTimeoutMs: config.listen.bodyTimeoutMs,
    routes,
    logger,
    stop: cut.signal,
    refuse: () => refusing,
  });
  const server = await createListener(config.listen, http, logger);

  let shuttingDown: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const shutdown = (reason: string): Promise<void> => {
    shuttingDown ??= (async () => {
      // New requests get 503 and queued ones 503 with the reason at once; running ones get
      // shutdownGraceMs to finish, then end with an SSE error event / job.error; then the llama-servers stop.
      const grace = config.shutdownGraceMs;
      logger.info(`shutting down: ${reason}; running requests get ${grace} ms to finish`);
      stopAutoscaler();
      loopLag.stop();
      refusing = new SlotwiseError('SW_ERR_SHUTTING_DOWN', `daemon is shutting down (${reason}) — retry once a daemon runs again`);
      scheduler.close(reason);
      const idle = (): Promise<unknown> => Promise.all([http.settled(), jobs.settled()]);
      if (!(await within(idle(), grace))) {
        logger.warn(`requests still running after ${grace} ms (shutdownGraceMs); ending them`);
        const why = new SlotwiseError('SW_ERR_SHUTTING_DOWN', `daemon is shutting down (${reason}); the response was ended after shutdownGraceMs (${grace} ms)`);
        cut.abort(why);
        jobs.close(why);
        await within(idle(), 2000); // their error events are written, then the connections close
      }
      ws.close();
      hub.close();
      loader.close();
      server.close();
      server.closeAllConnections();
      await Promise.all([supervisor.shutdown(), sampler.close(), jobs.flush()]);
      await removeDaemonInfo(stateDir, process.pid);
      lock.release();
      stopLoggingInternal();
      logger.info('stopped');
      resolveClosed();
    })();
    return shuttingDown;
  };

  const ws = attachWebSocket(server, {
    guard,
    maxPayload: config.limits.maxBodyBytes,
    logger,
    plain: (req, socket, head) => serveIgnoringUpgrade(req, socket, head, http, { maxBodyBytes: config.limits.maxBodyBytes, bodyTimeoutMs: config.listen.bodyTimeoutMs }),
    handlers: { ...coreHandlers({ version, hub, supervisor, startModel: (m) => loader.start(m), restartModel: (m) => loader.restart(m), requestShutdown: () => void shutdown('daemon.stop request') }), ...jobs.handlers() },
  });

  const port = await listen(server, config.listen.host, opts.port ?? config.listen.port);
  const hostForUrl = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  url = `${config.listen.tls ? 'https' : 'http'}://${hostForUrl}:${port}`;
  lock.setPort(port);
  const startTime = processStartTime(process.pid);
  await writeDaemonInfo(stateDir, { pid: process.pid, port, url, version, protocol: 1, startedAt: new Date(startedAt).toISOString(), startTime, nonce });
  logger.info(`listening on ${url} (state dir ${stateDir.root}); llama-server: ${binary ? `${binary.path} (${binary.source})` : 'none'}`);
  if (configFile) logger.info(configFile.exists ? `config: ${configFile.path}` : `config: no file at ${configFile.path}, so no models: add one under "models" there and restart the daemon`);
  // Memory in status for every model (never rejects); awaited only when an "auto" slot count must be chosen first.
  const planned = loader.planAll();
  if (config.models.some((m) => m.slots === 'auto' && m.load === 'always')) await planned;
  // Each "always" model after its memory check (free memory and a plan: milliseconds; nvidia-smi is
  // bounded by its timeout): once this returns, their instances exist, as callers (bench) expect.
  await loader.startAlways().catch((err: Error) => logger.error(`could not start the "always" models: ${err.message}`));
  return { url, port, token, config, stateDir, supervisor, scheduler, logger, shutdown, closed };
}

/** True when the promise settled within ms. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Feeds per-model generated-token counts from each instance's `tokens_predicted_total` (it restarts at 0 with the process). */
function countGeneratedTokens(supervisor: Supervisor, add: (model: string, n: number) => void): void {
  const last = new Map<number, number>(); // by pid: a restarted instance is a new counter
  supervisor.on('scrape', (inst) => {
    const total = supervisor.scrape(inst)?.tokensPredictedTotal;
    if (total === undefined || inst.pid === undefined) return;
    const prev = last.get(inst.pid) ?? 0;
    if (total > prev) add(inst.model.name, total - prev);
    last.set(inst.pid, total);
  });
}

/**
 * The HTTP(S) server with its limits: a connection cap, and deadlines so a client that never finishes
 * its headers or body cannot hold a socket (the route's own body deadline answers 408 first; Node's
 * requestTimeout is the backstop for bodies no route reads).
 */
async function createListener(listen: Config['listen'], handler: RequestListener, logger: Logger): Promise<Server> {
  const headersTimeout = Math.min(10_000, listen.bodyTimeoutMs);
  const options = { requestTimeout: listen.bodyTimeoutMs + headersTimeout, headersTimeout, connectionsCheckingInterval: 1000 };
  let server: Server;
  if (listen.tls) {
    const [cert, key] = await Promise.all([readPem(listen.tls.cert, 'listen.tls.cert'), readPem(listen.tls.key, 'listen.tls.key')]);
    server = createHttpsServer({ ...options, cert, key }, handler) as unknown as Server;
  } else {
    server = createServer(options, handler);
  }
  server.maxConnections = listen.maxConnections;
  server.keepAliveTimeout = 30_000;
  const limits = { maxHeaderBytes: maxHeaderSize, headersTimeoutMs: headersTimeout };
  server.on('clientError', (err: Error, socket: Duplex) => answerClientError(err, socket, limits));
  // The client of a dropped connection sees only a reset: say why in the log (at most once a minute).
  let warnedAt = 0;
  server.on('drop', () => {
    const now = Date.now();
    if (now - warnedAt < 60_000) return;
    warnedAt = now;
    logger.warn(`${listen.maxConnections} connections are open (listen.maxConnections): new ones are closed at once — raise it in the config if these clients are yours`);
  });
  return server;
}

async function readPem(file: string, key: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new SlotwiseError('SW_ERR_CONFIG', `${key}: cannot read ${file}: ${(err as Error).message} — fix the path or its permissions`, { cause: err });
  }
}

/** The host's GPUs for recordedPlacement: a GPU tool that is there but failed or lists none cannot say there is none, so it counts as one. */
async function gpusAtLaunch(env: NodeJS.ProcessEnv, othersLoading: boolean): Promise<GpusAtLaunch> {
  const { free, warnings } = await readFreeMemory(env);
  return { count: warnings.length ? Math.max(1, free.gpus.length) : free.gpus.length, free: free.gpus, othersLoading };
}
