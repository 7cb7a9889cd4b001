// The /slots poll's cadence (daemon/runtime/scraper.ts): fine while the instance is in use, slow once
// it has been quiet, and back within one fine interval when a request starts. A plain HTTP server
// stands in for llama-server's /slots and /metrics: a real llama-server neither says when it was polled
// nor shows a slot busy on cue, and only when the polls come is under test (the daemon in front of a
// process that counts its polls: test/integration/idle-polls.test.ts).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RECHECK_MIN_MS, scrapeLoop, type ScrapeHandle } from '../../daemon/runtime/scraper';

interface Upstream {
  url: string;
  /** performance.now() of each /slots request. */
  polls: number[];
  busy: boolean;
  server: Server;
}

async function upstream(): Promise<Upstream> {
  const u: Upstream = { url: '', polls: [], busy: false, server: createServer() };
  u.server.on('request', (req, res) => {
    if (req.url === '/slots') {
      u.polls.push(performance.now());
      res.end(JSON.stringify([{ id: 0, n_ctx: 512, is_processing: u.busy }]));
    } else res.end('llamacpp:tokens_predicted_total 0\n');
  });
  await new Promise<void>((r) => u.server.listen(0, '127.0.0.1', r));
  u.url = `http://127.0.0.1:${(u.server.address() as AddressInfo).port}`;
  return u;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const gaps = (t: number[]): number[] => t.slice(1).map((x, i) => x - t[i]!);

describe('scrapeLoop cadence', () => {
  let stop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await stop?.();
    stop = undefined;
  });

  async function start(u: Upstream, inFlight = (): number => 0): Promise<ScrapeHandle> {
    const abort = new AbortController();
    const h = scrapeLoop({ target: u.url, signal: abort.signal, intervalMs: 25, idleIntervalMs: 800, idleAfterMs: 250, inFlight, onResult: () => {}, onError: () => {} });
    stop = async () => {
      abort.abort();
      await h.done;
      await new Promise((r) => u.server.close(r));
    };
    return h;
  }

  it('polls finely at first, slowly once quiet, and finely again within one interval of a request starting', async () => {
    const u = await upstream();
    const h = await start(u);
    await sleep(200);
    const early = u.polls.length;
    expect(early).toBeGreaterThanOrEqual(4); // ~8 at 25 ms; a slow machine may lose some
    await sleep(2000);
    // Quiet since the start: after 250 ms the gaps are the idle cadence.
    const late = gaps(u.polls.filter((t) => t > u.polls[0]! + 600));
    expect(late.length).toBeGreaterThanOrEqual(1);
    for (const g of late) expect(g).toBeGreaterThan(600);
    const woke = performance.now();
    h.wake();
    await sleep(200);
    const after = u.polls.filter((t) => t >= woke);
    expect(after.length).toBeGreaterThanOrEqual(2); // the next within ~25 ms, then the fine cadence again
    expect(after[0]! - woke).toBeLessThan(400); // not the up to 800 ms left of the idle wait
  });

  it('keeps the fine cadence while a slot reads busy (a foreign client) or requests are in flight', async () => {
    const u = await upstream();
    u.busy = true;
    await start(u);
    await sleep(900);
    const tail = gaps(u.polls.filter((t) => t > u.polls[0]! + 400));
    expect(tail.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...tail)).toBeLessThan(400); // 25 ms apart, with room for a busy machine; idle would be 800
  });

  it('counts requests in flight as use', async () => {
    const u = await upstream();
    let inFlight = 1;
    await start(u, () => inFlight);
    await sleep(900);
    const busyGaps = gaps(u.polls.filter((t) => t > u.polls[0]! + 400));
    expect(busyGaps.length).toBeGreaterThanOrEqual(4);
    expect(Math.max(...busyGaps)).toBeLessThan(400);
    inFlight = 0;
    const quietFrom = performance.now();
    await sleep(2200);
    const quietGaps = gaps(u.polls.filter((t) => t > quietFrom + 400));
    expect(quietGaps.length).toBeGreaterThanOrEqual(1);
    for (const g of quietGaps) expect(g).toBeGreaterThan(600);
  });

  it('polls at once on recheck(), but never two starts closer than RECHECK_MIN_MS', async () => {
    const u = await upstream();
    const abort = new AbortController();
    const h = scrapeLoop({ target: u.url, signal: abort.signal, intervalMs: 25, idleIntervalMs: 60_000, idleAfterMs: 0, onResult: () => {}, onError: () => {} });
    stop = async () => {
      abort.abort();
      await h.done;
      await new Promise((r) => u.server.close(r));
    };
    await sleep(300); // in the 60 s idle wait now
    const n = u.polls.length;
    const asked = performance.now();
    h.recheck();
    while (u.polls.length === n && performance.now() - asked < 5000) await sleep(5);
    expect(u.polls.length).toBe(n + 1);
    expect(u.polls[n]! - asked).toBeLessThan(1000); // not the 60 s wait
    for (let i = 0; i < 5; i++) h.recheck(); // a burst of asks within the limit (the first poll's answer may be on its way): one more poll
    await sleep(RECHECK_MIN_MS * 3);
    expect(u.polls.length).toBe(n + 2);
    // Spaced by the limit, not at once (arrival times: a loaded machine may delay the first more than the second).
    expect(u.polls[n + 1]! - u.polls[n]!).toBeGreaterThan(RECHECK_MIN_MS / 2);
  });

  it('stops at once when its signal aborts, even in a long idle wait', async () => {
    const u = await upstream();
    const abort = new AbortController();
    const h = scrapeLoop({ target: u.url, signal: abort.signal, intervalMs: 25, idleIntervalMs: 60_000, idleAfterMs: 0, onResult: () => {}, onError: () => {} });
    await sleep(100); // in the 60 s wait now
    const t0 = performance.now();
    abort.abort();
    await h.done;
    expect(performance.now() - t0).toBeLessThan(500);
    await new Promise((r) => u.server.close(r));
  });
});
