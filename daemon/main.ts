// The daemon process: config → state dir → supervisor → HTTP/WS server → autostart; signals.
// Wiring only: each part lives in its own module.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { version } from '../package.json';
import { loadConfig } from './config/load';
import type { Config } from './config/types';
import { SlotwiseError } from '../shared/errors';
import { onInternalError } from '../platform/internal-errors';
import { createHttpHandler, sendJson, type Route } from './server/http';
import { findLlamaServer } from '../toolchain/binary';
import { createLogger, fileSink, streamSink, type Logger } from '../platform/log';
import { isAlive } from '../platform/procfs';
import { coreHandlers } from './server/rpc';
import { ensureStateDir, ensureToken, readDaemonInfo, removeDaemonInfo, writeDaemonInfo, type StateDir } from '../shared/state-dir';
import { StatusHub } from './status/hub';
import { Supervisor } from './runtime/supervisor';
import { attachWebSocket } from './server/ws';
import { openAiRoutes } from './api/openai';
import { infillRoutes } from './api/infill';
import { embeddingRoutes } from './api/embeddings';
import { Scheduler } from './scheduler/scheduler';
import { JobStore } from './api/jobs';
import { MetricsRegistry, METRICS_CONTENT_TYPE } from './status/metrics';
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
  logger: Logger;
  /** Stops models, closes connections, removes daemon.json. Idempotent. */
  shutdown(reason: string): Promise<void>;
  /** Resolves after shutdown finished. */
  closed: Promise<void>;
}

export async function startDaemon(opts: DaemonOptions): Promise<RunningDaemon> {
  const config = opts.config ?? (await loadConfig({ path: opts.configPath, env: opts.env, allowMissing: !opts.configPath }));
  const stateDir = await ensureStateDir(opts.stateDir);
  const sinks = [fileSink(join(stateDir.logs, 'daemon.log'))];
  if (opts.logToStderr) sinks.push(streamSink(process.stderr));
  const logger = createLogger({ level: opts.env.SLOTWISE_LOG_LEVEL === 'debug' ? 'debug' : 'info', sinks });

  await refuseSecondDaemon(stateDir);
  // cli/main.ts routes unexpected errors here in the daemon process: log them with their stack, keep serving.
  const stopLoggingInternal = onInternalError((e) => logger.error(`unexpected error (please report): ${e.detail ?? e.message}`));
  const binary = await findLlamaServer({ configured: config.llamaServer, env: opts.env });
  if (!binary && config.models.length > 0) {
    throw new SlotwiseError('SW_ERR_LLAMA_SERVER_NOT_FOUND', 'llama-server not found — run `slotwise setup` to build it, or set "llamaServer" in the config');
  }
  const token = await ensureToken(stateDir);
  const supervisor = new Supervisor({
    config,
    binary: binary?.path ?? 'llama-server',
    stateDir,
    logger,
    parentDeathSignal: opts.env.SLOTWISE_NO_PDEATHSIG !== '1',
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
  const scheduler = new Scheduler({
    supervisor,
    config,
    hooks: { onQueueWait: (m, s) => metrics.observeQueueWait(m, s), onOutcome: (m, o) => metrics.countRequest(m, o) },
  });
  const jobs = new JobStore({ scheduler, supervisor });
  const hub = new StatusHub({
    version,
    startedAt,
    url: () => url,
    supervisor,
    resources: () => sampler.view(),
    queue: (model) => {
      const v = scheduler.queueView(model);
      return v && { ...v.queue, received: v.received, outcomes: v.outcomes, inFlight: v.inFlight };
    },
  });
  supervisor.on('change', () => hub.changed());
  scheduler.on('change', () => hub.changed());
  sampler.on('change', () => hub.changed());

  const stopAutoscaler = startAutoscaler({ supervisor, scheduler, snapshot: () => hub.snapshot(), config, logger });
  const guard = { token, allowedOrigins: config.listen.allowedOrigins, listenHost: config.listen.host };
  const routes: Route[] = [
    { method: 'GET', path: '/healthz', open: true, handle: ({ res }) => sendJson(res, 200, { status: 'ok', version }) },
    { method: 'GET', path: '/api/status', handle: ({ res }) => sendJson(res, 200, hub.snapshot()) },
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
    ...embeddingRoutes({ supervisor, scheduler }),
  ];
  const server = createServer(createHttpHandler({ guard, maxBodyBytes: config.limits.maxBodyBytes, routes, logger }));
  server.keepAliveTimeout = 30_000;

  let shuttingDown: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  const shutdown = (reason: string): Promise<void> => {
    shuttingDown ??= (async () => {
      logger.info(`shutting down: ${reason}`);
      stopAutoscaler();
      ws.close();
      hub.close();
      jobs.close();
      scheduler.close();
      server.close();
      server.closeAllConnections();
      await Promise.all([supervisor.shutdown(), sampler.close()]);
      await removeDaemonInfo(stateDir, process.pid);
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
    handlers: { ...coreHandlers({ version, hub, supervisor, requestShutdown: () => void shutdown('daemon.stop request') }), ...jobs.handlers() },
  });

  const port = await listen(server, config.listen.host, opts.port ?? config.listen.port);
  const hostForUrl = config.listen.host.includes(':') ? `[${config.listen.host}]` : config.listen.host;
  url = `http://${hostForUrl}:${port}`;
  await writeDaemonInfo(stateDir, { pid: process.pid, port, url, version, protocol: 1, startedAt: new Date(startedAt).toISOString() });
  logger.info(`listening on ${url} (state dir ${stateDir.root}); llama-server: ${binary ? `${binary.path} (${binary.source})` : 'none'}`);
  supervisor.startAutostart();
  return { url, port, token, config, stateDir, supervisor, logger, shutdown, closed };
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

/** One daemon per state dir: a live daemon recorded in daemon.json wins. */
async function refuseSecondDaemon(stateDir: StateDir): Promise<void> {
  const info = await readDaemonInfo(stateDir);
  if (info && info.pid !== process.pid && isAlive(info.pid)) {
    throw new SlotwiseError('SW_ERR_DAEMON_RUNNING', `a daemon is already running for ${stateDir.root} (pid ${info.pid}, ${info.url}) — use it, or \`slotwise stop\` first`);
  }
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        err.code === 'EADDRINUSE'
          ? new SlotwiseError('SW_ERR_CONFIG', `port ${port} on ${host} is in use — pick another with --port or listen.port (0 = any free port)`, { cause: err })
          : err,
      );
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
