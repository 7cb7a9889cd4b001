// Chaos against real llama-servers: 2 replicas × 2 slots of the slow tiny model under a steady load of
// 6 clients (streaming and not, some aborting mid-stream), while the test kill -9s a llama-server
// KILLS times (mid-stream where one is streaming) and SIGSTOPs/SIGCONTs one STOPS times. At the end
// every request the clients sent is accounted for by the daemon with the outcome the client saw, no
// slot or queue entry is leaked, no llama-server outlives its record, and the daemon is alive.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../platform/prng';
import { FAST_SUPERVISOR, isAlive, llamaServersWith, startTestDaemon, type TestDaemon } from '../helpers/daemon';
import type { InstanceStatus, RequestOutcome, Snapshot } from '../../shared/protocol';
import { busySlotsOf } from '../../shared/slots';

/** kill -9 count: 50 fits in the time budget on 2 shared cores (one restart of the slow tiny model ≈ 1 s). */
const KILLS = 50;
/** SIGSTOP/SIGCONT count; pauses are short (there is no stall timeout in config to stay under). */
const STOPS = 5;
const PAUSE_MS = 300;
const CLIENTS = 6;
const SEED = 9001;

/** What the client saw, in the daemon's outcome terms (daemon/scheduler/dispatch.ts outcomeOf). */
type Seen = RequestOutcome | 'aborted';

/** The daemon's outcome for an error code, as outcomeOf maps it. */
function outcomeOfCode(code: string): RequestOutcome {
  if (code === 'SW_ERR_CANCELLED') return 'cancelled';
  if (['SW_ERR_QUEUE_TIMEOUT', 'SW_ERR_QUEUE_FULL', 'SW_ERR_NO_INSTANCE', 'SW_ERR_SHUTTING_DOWN', 'SW_ERR_UPSTREAM_REJECTED', 'SW_ERR_BAD_REQUEST'].includes(code)) return 'rejected';
  return 'failed';
}

/** One request; `abortAfterMs` aborts that long after the first streamed bytes (an in-flight cancel). */
async function oneRequest(d: TestDaemon, stream: boolean, maxTokens: number, abortAfterMs: number | undefined): Promise<Seen> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    const res = await d.fetch('/v1/completions', {
      method: 'POST',
      signal: ac.signal,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: 'c', prompt: 'Once upon a time', max_tokens: maxTokens, ignore_eos: true, stream }),
    });
    if (res.status !== 200) {
      const body = (await res.json()) as { error: { code: string } };
      return outcomeOfCode(body.error.code);
    }
    if (!stream) {
      const text = await res.text(); // throws when the body is cut mid-way
      return (JSON.parse(text) as { choices?: unknown[] }).choices ? 'completed' : 'failed';
    }
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (abortAfterMs !== undefined && timer === undefined) timer = setTimeout(() => ac.abort(), abortAfterMs);
    }
    // A stream cut after the first byte ends with an error event and no [DONE] (architecture.md).
    return text.includes('data: [DONE]') && !/"error":\{"code"/.test(text) ? 'completed' : 'failed';
  } catch (err) {
    if (ac.signal.aborted) return 'aborted';
    // The body was cut (kill -9 mid-response): fetch throws "terminated".
    if (err instanceof TypeError && err.message === 'terminated') return 'failed';
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

const instancesOf = (s: Snapshot): InstanceStatus[] => s.models[0]!.instances;

describe('chaos: kill -9 and SIGSTOP under load (real llama-server)', () => {
  it(`${KILLS} × kill -9 and ${STOPS} × SIGSTOP/SIGCONT: every request accounted, nothing leaked, no orphans`, async () => {
    const d = await startTestDaemon({
      models: { c: { slots: 2, replicas: 2, ctxPerSlot: 1024, size: 'slow' } },
      // Quick restarts that never give up: the crash limit would otherwise mark the model failed.
      config: { supervisor: { ...FAST_SUPERVISOR, backoffInitialMs: 100, backoffMaxMs: 300, healthyResetMs: 1000, maxCrashes: 10_000 } },
    });
    await d.waitFor((s) => instancesOf(s).length === 2 && instancesOf(s).every((i) => i.state === 'ready'), 'both replicas ready', 120_000);
    const started = Date.now();

    // ---- the load ----
    const seen: Record<Seen, number> = { completed: 0, rejected: 0, failed: 0, cancelled: 0, aborted: 0 };
    let sent = 0;
    let stop = false;
    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      const rng = mulberry32(SEED + c);
      while (!stop) {
        const stream = rng() < 0.65;
        const abort = stream && rng() < 0.3;
        // An aborting request asks for many tokens so it is still generating when the abort fires.
        const maxTokens = abort ? 400 : 16 + Math.floor(rng() * 120);
        sent++;
        seen[await oneRequest(d, stream, maxTokens, abort ? 30 + Math.floor(rng() * 250) : undefined)]++;
      }
    });

    // ---- the chaos ----
    const killed: number[] = [];
    const rng = mulberry32(SEED);
    // Ready and not killed yet: status may show a killed process as ready until its exit is seen.
    const isUp = (i: InstanceStatus): boolean => i.state === 'ready' && i.pid !== undefined && !killed.includes(i.pid);
    const readyNow = async (): Promise<InstanceStatus[]> => instancesOf(await d.waitFor((x) => instancesOf(x).some(isUp), 'an instance ready', 60_000)).filter(isUp);
    let stops = 0;
    let midStream = 0;
    for (let k = 0; k < KILLS; k++) {
      // Mid-stream where possible: give the load up to 1 s to put a request on a ready instance.
      let ready = await readyNow();
      const until = Date.now() + 1000;
      while (!ready.some((i) => (i.inFlight ?? 0) > 0) && Date.now() < until) {
        await sleep(50);
        ready = await readyNow();
      }
      const busy = ready.filter((i) => (i.inFlight ?? 0) > 0);
      const pool = busy.length > 0 ? busy : ready;
      if (busy.length > 0) midStream++;
      const victim = pool[Math.floor(rng() * pool.length)]!;
      process.kill(victim.pid!, 'SIGKILL');
      killed.push(victim.pid!);
      if ((k + 1) % Math.floor(KILLS / STOPS) === 0 && stops < STOPS) {
        const target = (await readyNow())[0]!;
        process.kill(target.pid!, 'SIGSTOP');
        await sleep(PAUSE_MS);
        process.kill(target.pid!, 'SIGCONT');
        stops++;
      }
      await sleep(100 + Math.floor(rng() * 300));
    }
    stop = true;
    await Promise.all(clients);
    const chaosMs = Date.now() - started;

    // ---- the accounting ----
    const s = await d.waitFor(
      (x) => {
        const m = x.models[0]!;
        const total = Object.values(m.outcomes ?? {}).reduce((a, b) => a + b, 0);
        return (
          total === (m.requests ?? -1) &&
          m.queue.waiting === 0 &&
          m.instances.length === 2 &&
          m.instances.every((i) => i.state === 'ready' && (i.inFlight ?? 0) === 0 && busySlotsOf(i, m.slotsPerInstance) === 0)
        );
      },
      'every request ended, both replicas ready with no busy slot',
      30_000,
    );
    const m = s.models[0]!;
    const outcomes = m.outcomes!;
    expect({ stops, kills: killed.length }).toEqual({ stops: STOPS, kills: KILLS });
    expect(m.requests).toBe(sent);
    expect(outcomes.completed).toBe(seen.completed);
    expect(outcomes.rejected).toBe(seen.rejected);
    // A client abort that crosses a kill -9 may be recorded as either: the daemon sees whichever comes
    // first. Together they match exactly, and the daemon never records more cancels than aborts.
    expect(outcomes.cancelled + outcomes.failed).toBe(seen.aborted + seen.cancelled + seen.failed);
    expect(outcomes.cancelled).toBeLessThanOrEqual(seen.aborted + seen.cancelled);
    // /metrics counts the same outcomes.
    const metrics = await (await d.fetch('/metrics')).text();
    for (const o of ['completed', 'cancelled', 'rejected', 'failed'] as const) {
      const line = new RegExp(`^slotwise_requests_total\\{[^}]*outcome="${o}"[^}]*\\} (\\S+)$`, 'm').exec(metrics);
      expect({ o, n: Number(line?.[1] ?? 0) }).toEqual({ o, n: outcomes[o] });
    }
    // No orphans: the live llama-servers of this daemon are exactly the two in status; every killed one is gone.
    const live = llamaServersWith(d.dir).sort();
    expect(live).toEqual(m.instances.map((i) => i.pid!).sort());
    expect(killed.filter(isAlive)).toEqual([]);
    expect(isAlive(d.pid)).toBe(true);
    expect((await fetch(`${d.url}/healthz`)).status).toBe(200);
    console.log(`chaos: ${KILLS} kills (${midStream} with a request in flight), ${STOPS} stops in ${chaosMs} ms; ${sent} requests, seen ${JSON.stringify(seen)}, daemon ${JSON.stringify(outcomes)}`);
  }, 240_000);
});
