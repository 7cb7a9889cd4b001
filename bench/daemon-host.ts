// A daemon run inside the bench process for one scenario, with what only its own process can see:
// event-loop delay and RSS. Temp state dir, any free port; everything is removed afterwards.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import type { Config, ModelConfig } from '../daemon/config/types';
import { defaultConfig } from '../daemon/config/validate';
import { startDaemon, type RunningDaemon } from '../daemon/main';
import type { DaemonSide } from './types';

export interface HostedDaemon {
  daemon: RunningDaemon;
  stateDir: string;
  /** Starts measuring loop lag and RSS (call right before the load). */
  startMeasuring(): void;
  /** Stops measuring; `client` says where the load generator ran. */
  stopMeasuring(client: DaemonSide['client']): DaemonSide;
  close(): Promise<void>;
}

export interface HostOptions {
  models: ModelConfig[];
  routing: Config['routing'];
  /** Config `llamaServer`: `auto` or a path (the stand-in upstream for the load bench). */
  llamaServer?: string;
  /** Default: the daemon's defaults. */
  queue?: Config['queue'];
  env: NodeJS.ProcessEnv;
}

const MB = 1e6;
/**
 * Sampling period of the loop-delay histograms, ms. They record the whole period, so an idle loop
 * reads ~10 ms: it is subtracted from every figure.
 */
const RESOLUTION_MS = 10;

export async function hostDaemon(opts: HostOptions): Promise<HostedDaemon> {
  const base = defaultConfig();
  const config: Config = {
    ...base,
    listen: { ...base.listen, host: '127.0.0.1', port: 0 },
    llamaServer: opts.llamaServer ?? base.llamaServer,
    routing: opts.routing,
    queue: opts.queue ?? base.queue,
    supervisor: { ...base.supervisor, healthTimeoutMs: 120_000, stopGraceMs: 5_000 },
    models: opts.models,
  };
  const stateDir = await mkdtemp(join(tmpdir(), 'slotwise-bench-'));
  let daemon: RunningDaemon;
  try {
    daemon = await startDaemon({ stateDir, config, env: opts.env });
  } catch (err) {
    await rm(stateDir, { recursive: true, force: true });
    throw err;
  }
  let histogram: IntervalHistogram | undefined;
  // A second histogram, reset every 250 ms, gives the lag over time (ramp-up vs steady state).
  let window: IntervalHistogram | undefined;
  let timeline: DaemonSide['loopLagTimeline'] = [];
  let t0 = 0;
  let rssBefore = 0;
  let rssPeak = 0;
  let rssTimer: NodeJS.Timeout | undefined;
  let lagTimer: NodeJS.Timeout | undefined;
  const lag = (ns: number | undefined): number => Math.max(0, (ns ?? 0) / 1e6 - RESOLUTION_MS);
  const stopTimers = (): void => {
    clearInterval(rssTimer);
    clearInterval(lagTimer);
    histogram?.disable();
    window?.disable();
  };
  return {
    daemon,
    stateDir,
    startMeasuring() {
      histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      window = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
      histogram.enable();
      window.enable();
      timeline = [];
      t0 = performance.now();
      rssBefore = rssPeak = process.memoryUsage.rss();
      rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage.rss())), 100);
      lagTimer = setInterval(() => {
        timeline.push({ tMs: Math.round(performance.now() - t0), maxMs: lag(window?.max) });
        window?.reset();
      }, 250);
    },
    stopMeasuring(client) {
      stopTimers();
      rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
      const h = histogram;
      return {
        loopLagMs: { p50: lag(h?.percentile(50)), p99: lag(h?.percentile(99)), max: lag(h?.max) },
        loopLagTimeline: timeline,
        rssMB: { before: rssBefore / MB, peak: rssPeak / MB },
        process: 'bench',
        pid: process.pid,
        client,
      };
    },
    async close() {
      stopTimers();
      try {
        await daemon.shutdown('benchmark finished');
      } finally {
        await rm(stateDir, { recursive: true, force: true });
      }
    },
  };
}
