// The event-loop lag of a daemon in its own process, from its /metrics: the cumulative histogram
// `slotwise_event_loop_lag_seconds` (read at the start and the end of the load: the quantiles of the
// difference) and `slotwise_event_loop_lag_max_seconds` (the largest delay since the previous
// scrape: read every 250 ms, it is the timeline, and its largest value the maximum).
import { request } from 'undici';
import { SlotwiseError } from '../shared/errors';

/** Cumulative bucket counts by upper bound (seconds; Infinity for +Inf), and the max gauge. */
export interface LagScrape {
  buckets: { le: number; count: number }[];
  maxSeconds: number;
}

const BUCKET = /^slotwise_event_loop_lag_seconds_bucket\{le="([^"]+)"\} (\S+)$/;
const MAX = /^slotwise_event_loop_lag_max_seconds (\S+)$/;

/** Parses the lag series out of a /metrics text; undefined when the daemon exposes none (an older build). */
export function parseLag(text: string): LagScrape | undefined {
  const buckets: LagScrape['buckets'] = [];
  let maxSeconds: number | undefined;
  for (const line of text.split('\n')) {
    const b = BUCKET.exec(line);
    if (b) buckets.push({ le: b[1] === '+Inf' ? Infinity : Number(b[1]), count: Number(b[2]) });
    const m = MAX.exec(line);
    if (m) maxSeconds = Number(m[1]);
  }
  if (!buckets.length || maxSeconds === undefined) return undefined;
  return { buckets: buckets.sort((a, b) => a.le - b.le), maxSeconds };
}

/**
 * The q-quantile (0..1) of the delays observed between two scrapes, in ms, interpolated linearly
 * inside its bucket as Prometheus' histogram_quantile does; 0 when none were observed. A quantile
 * in the +Inf bucket reads as the largest finite bound.
 */
export function lagQuantileMs(before: LagScrape, after: LagScrape, q: number): number {
  const delta = after.buckets.map((b, i) => ({ le: b.le, count: b.count - (before.buckets[i]?.count ?? 0) }));
  const total = delta.at(-1)?.count ?? 0;
  if (total <= 0) return 0;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const b of delta) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return lower * 1000;
      const inBucket = b.count - below;
      return (lower + (inBucket > 0 ? (b.le - lower) * ((rank - below) / inBucket) : 0)) * 1000;
    }
    lower = b.le;
    below = b.count;
  }
  return lower * 1000;
}

/** One authenticated GET /metrics. */
export async function scrapeLag(url: string, token: string): Promise<LagScrape> {
  const res = await request(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` }, headersTimeout: 5000, bodyTimeout: 5000 });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new SlotwiseError('SW_ERR_INTERNAL', `bench: GET ${url}/metrics answered ${res.statusCode} — is the token right?`);
  const lag = parseLag(text);
  if (!lag) throw new SlotwiseError('SW_ERR_INTERNAL', `bench: the daemon at ${url} exposes no slotwise_event_loop_lag_seconds on /metrics — rebuild it (npm run build)`);
  return lag;
}
