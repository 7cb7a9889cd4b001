// What a daemon in its own process costs during a load: its RSS read from /proc every 100 ms, and
// its event-loop lag from its own /metrics (bench/daemon-lag.ts). Nothing of the bench's process is in
// these figures.
import { performance } from 'node:perf_hooks';
import { lagQuantileMs, scrapeLag, type LagScrape } from './daemon-lag';
import { rssBytes } from './soak';
import type { DaemonSide } from './types';

export interface ProcessMeasure {
  /** Stops sampling and returns the figures (`client`: where the load generator ran). */
  stop(): Promise<DaemonSide>;
}

const MB = 1e6;
const RSS_EVERY_MS = 100;
/** As the in-process host's windows: the largest delay of each 250 ms. */
const LAG_EVERY_MS = 250;

/** Starts measuring now: call it with the daemon ready and idle, right before the load. */
export async function measureProcess(d: { url: string; token: string; pid: number }): Promise<ProcessMeasure> {
  const rssBefore = rssBytes([d.pid]);
  let rssPeak = rssBefore;
  const first = await scrapeLag(d.url, d.token); // also zeroes the daemon's "max since the last scrape"
  const t0 = performance.now();
  const timeline: DaemonSide['loopLagTimeline'] = [];
  let inFlight: Promise<void> | undefined;
  let scrapeError: unknown;
  const sampleLag = (): Promise<void> =>
    scrapeLag(d.url, d.token).then((s) => {
      timeline.push({ tMs: Math.round(performance.now() - t0), maxMs: s.maxSeconds * 1000 });
    });
  const rssTimer = setInterval(() => (rssPeak = Math.max(rssPeak, rssBytes([d.pid]))), RSS_EVERY_MS);
  const lagTimer = setInterval(() => {
    if (inFlight) return; // a slow scrape is not stacked under the next one
    inFlight = sampleLag()
      .catch((err: unknown) => void (scrapeError ??= err))
      .finally(() => (inFlight = undefined));
  }, LAG_EVERY_MS);
  return {
    async stop() {
      clearInterval(rssTimer);
      clearInterval(lagTimer);
      await inFlight;
      rssPeak = Math.max(rssPeak, rssBytes([d.pid]));
      let last: LagScrape;
      try {
        last = await scrapeLag(d.url, d.token);
      } catch (err) {
        throw scrapeError ?? err;
      }
      timeline.push({ tMs: Math.round(performance.now() - t0), maxMs: last.maxSeconds * 1000 });
      const max = Math.max(0, ...timeline.map((w) => w.maxMs));
      // Interpolation inside a bucket may overshoot the largest delay actually seen.
      const q = (p: number): number => Math.min(max, lagQuantileMs(first, last, p));
      return {
        loopLagMs: { p50: q(0.5), p99: q(0.99), max },
        loopLagTimeline: timeline,
        rssMB: { before: rssBefore / MB, peak: rssPeak / MB },
        process: 'own',
        pid: d.pid,
        client: 'separate',
      };
    },
  };
}
