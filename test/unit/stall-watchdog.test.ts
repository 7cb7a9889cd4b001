// The stall watchdog's /health probes (daemon/runtime/stall-watchdog.ts): any answer from llama-server
// is a sign of life, so /health is asked only after a quiet spell; a process that answers nothing at
// all for the timeout is a stall. A plain HTTP server stands in for llama-server's /health: a real one
// does not count the probes it answers, and the frozen case on the real llama-server (SIGSTOP) is
// test/integration/hardening-runtime.test.ts.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { watchForStall } from '../../daemon/runtime/stall-watchdog';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('watchForStall', () => {
  it('asks /health only when nothing else showed life, and calls a silent process stalled', async () => {
    let probes = 0;
    let answer = true;
    const server = createServer((req, res) => {
      probes++;
      if (answer) res.end('{"status":"ok"}'); // else: accepted, never answered, as a frozen process
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    let progressAt = Date.now();
    let lively = true;
    const abort = new AbortController();
    let stalled: string | undefined;
    // timeoutMs 800: ticks every 200 ms, /health after 200 ms without a sign of life.
    const done = watchForStall({ target: url, timeoutMs: 800, signal: abort.signal, inFlight: () => 0, lastProgressAt: () => (lively ? (progressAt = Date.now()) : progressAt), onStall: (r) => (stalled = r) });
    try {
      await sleep(1000);
      expect(probes).toBe(0); // /slots answers (progress) kept coming: no probe
      lively = false;
      await sleep(1000);
      expect(probes).toBeGreaterThanOrEqual(2); // quiet: /health every tick or so, and it answers
      expect(stalled).toBeUndefined();
      answer = false;
      await sleep(2500);
      expect(stalled).toMatch(/^\/health did not answer for \d+ ms$/);
    } finally {
      abort.abort();
      await done;
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }, 10_000);
});
