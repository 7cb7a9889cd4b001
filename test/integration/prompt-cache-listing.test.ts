// At -lv 4 llama-server lists its whole host prompt cache on every request, which slows requests down
// as the cache grows (past its 512-line log queue, inference waits for the log's reader). A process at
// -lv 4 only for its first load's placement is relaunched at -lv 3 once that placement is recorded;
// one kept at -lv 4 (the user's args) gets a warning naming the way out (daemon/runtime/cache-listing.ts).
// Real llama-server, tiny model, distinct prompts: each one saved to the cache when its slot is taken by the next.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { LOG_QUEUE_LINES, RELAUNCH_AT_PROMPTS } from '../../daemon/runtime/cache-listing';
import { llamaVerbosity, placementRecorded, startTestDaemon, type TestDaemon } from '../helpers/daemon';

const WARNING = /llama-server's prompt cache holds (\d+) prompts, and at -lv 4 it logs every one on every request, past/g;
const RELAUNCH = /llama-server's prompt cache holds (\d+) prompts, and at -lv 4 \(for the placement of its first load, now recorded\) it logs every one on every request: restarting it at -lv 3/g;

async function complete(d: TestDaemon, prompt: string): Promise<void> {
  const res = await d.fetch('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', prompt, max_tokens: 1 }) });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

/** Sends distinct prompts from `clients` clients until `n` were sent in all (every one must succeed). */
function sender(d: TestDaemon, clients = 2): (n: number) => Promise<void> {
  let sent = 0;
  return async (n) => {
    const workers = Array.from({ length: clients }, async () => {
      while (sent < n) await complete(d, `Item ${sent++}: describe the number in one word.`);
    });
    await Promise.all(workers);
  };
}

describe('the prompt-cache listing', () => {
  it(`relaunches a first load at -lv 3 once its cache holds ${RELAUNCH_AT_PROMPTS} prompts, with no request lost`, async () => {
    const d = await startTestDaemon({ models: { m: { slots: 2, gpuLayers: 0 } } });
    const s1 = await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready', 'ready');
    const first = s1.models[0]!.instances[0]!.pid!;
    expect(llamaVerbosity(first)).toBe('4'); // the first load: its placement is not recorded yet
    await placementRecorded(d.stateDir); // a relaunch needs it
    const send = sender(d);
    await send(RELAUNCH_AT_PROMPTS - 100);
    expect([...d.output().matchAll(RELAUNCH)]).toEqual([]); // fewer cached prompts: it stays
    expect((await d.status()).models[0]!.instances[0]!.pid).toBe(first);
    // Past the threshold: the 2 clients keep sending through the relaunch; each request succeeds
    // (complete() asserts 200), the ones that arrive meanwhile wait for the new process.
    await send(RELAUNCH_AT_PROMPTS + 150);
    const relaunched = [...d.output().matchAll(RELAUNCH)].map((m) => Number(m[1]));
    expect(relaunched).toHaveLength(1);
    expect(relaunched[0]).toBeGreaterThanOrEqual(RELAUNCH_AT_PROMPTS);
    const after = await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready' && s.models[0].instances[0].pid !== first, 'relaunched');
    expect(llamaVerbosity(after.models[0]!.instances[0]!.pid!)).toBe('3');
    expect(after.models[0]!.instances[0]!.offload?.recordedAt).toBeDefined(); // the placement status shows is the recorded one
    expect([...d.output().matchAll(WARNING)]).toEqual([]);
    expect(after.warnings.filter((w) => w.startsWith('m#1:'))).toEqual([]);
    await send(RELAUNCH_AT_PROMPTS + 170); // and it serves on
  }, 180_000);

  it('relaunches the replicas of a model one at a time, so it keeps serving on the other', async () => {
    const d = await startTestDaemon({ models: { m: { slots: 2, gpuLayers: 0, replicas: 2 } } });
    const s1 = await d.waitFor((s) => s.models[0]?.instances.length === 2 && s.models[0].instances.every((i) => i.state === 'ready'), 'both ready');
    const first = s1.models[0]!.instances.map((i) => i.pid!);
    expect(first.map(llamaVerbosity)).toEqual(['4', '4']);
    await placementRecorded(d.stateDir);
    // Status every 20 ms, against the relaunch's stop and load (about a second with this model).
    let polling = true;
    let samples = 0;
    const bothOut: string[][] = [];
    const poll = (async () => {
      while (polling) {
        const states = (await d.status()).models[0]!.instances.map((i) => i.state);
        samples++;
        if (states.every((st) => st !== 'ready')) bothOut.push(states);
        await sleep(20);
      }
    })();
    const relaunches = (): string[] => d.output().split('\n').filter((l) => l.match(RELAUNCH) !== null);
    const send = sender(d, 4);
    // Distinct prompts over both replicas until each has passed the threshold and relaunched.
    for (let n = 2 * RELAUNCH_AT_PROMPTS; relaunches().length < 2 && n < 6 * RELAUNCH_AT_PROMPTS; n += 100) await send(n);
    const after = await d.waitFor((s) => s.models[0]!.instances.every((i, k) => i.state === 'ready' && i.pid !== first[k]), 'both relaunched');
    polling = false;
    await poll;
    const lines = relaunches();
    expect(lines).toHaveLength(2);
    expect(lines.some((l) => l.includes('m#1')) && lines.some((l) => l.includes('m#2'))).toBe(true);
    expect(after.models[0]!.instances.map((i) => llamaVerbosity(i.pid!))).toEqual(['3', '3']);
    expect(samples).toBeGreaterThan(20);
    expect(bothOut).toEqual([]); // at no status read were both replicas out of service
  }, 240_000);

  it('serves on at -lv 4 when a long generation is still running 3 s into the relaunch, with no request lost', async () => {
    const d = await startTestDaemon({ models: { m: { size: 'slow', slots: 2, ctxPerSlot: 8192, gpuLayers: 0 } } });
    const s1 = await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready', 'ready');
    const pid = s1.models[0]!.instances[0]!.pid!;
    await placementRecorded(d.stateDir); // a relaunch needs it
    // One slot holds a long generation; the other takes distinct short prompts until the cache is past the threshold.
    let longDone = false;
    const long = (async () => {
      const res = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'm', prompt: 'Tell a long story.', max_tokens: 7000, ignore_eos: true, stream: true }) });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      longDone = true;
    })();
    const servedOn = /(\d+) request\(s\) still running after 3 s: serving on at -lv 4, the restart is tried again in 30 s/;
    let sent = 0;
    while (!servedOn.test(d.output()) && !longDone && sent < 2000) await complete(d, `Item ${sent++}: describe the number in one word.`);
    expect(servedOn.test(d.output())).toBe(true);
    expect(longDone).toBe(false); // it was the long generation that held the relaunch back
    expect([...d.output().matchAll(RELAUNCH)]).toHaveLength(1);
    for (let i = 0; i < 20; i++) await complete(d, `After ${i}: one word.`); // served on, by the same process
    expect((await d.status()).models[0]!.instances[0]!.pid).toBe(pid);
    await long;
  }, 180_000);

  it(`warns once, naming the way out, when -lv 4 comes from the model's args and the cache first holds ${LOG_QUEUE_LINES} prompts`, async () => {
    const d = await startTestDaemon({ models: { m: { slots: 2, gpuLayers: 0, args: ['-lv', '4'] } } });
    const s1 = await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready', 'ready');
    const pid = s1.models[0]!.instances[0]!.pid!;
    const warnings = (): number[] => [...d.output().matchAll(WARNING)].map((m) => Number(m[1]));
    const send = sender(d);
    await send(LOG_QUEUE_LINES - 100);
    expect(warnings()).toEqual([]); // a few hundred cached prompts: quiet
    expect((await d.status()).warnings.filter((w) => w.startsWith('m#1:'))).toEqual([]);
    await send(LOG_QUEUE_LINES + 200); // a few dozen fewer are cached than sent
    await d.waitFor(() => warnings().length > 0, 'the warning', 5_000).catch(() => undefined);
    const seen = warnings();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeGreaterThanOrEqual(LOG_QUEUE_LINES);
    expect(d.output()).toContain('this model\'s "args" set its log verbosity; drop that');
    // status shows it too, on the replica and among the snapshot's warnings (the CLI and the GPU panel show those)
    const s = await d.status();
    expect(s.models[0]!.instances[0]!.warnings?.[0]).toMatch(/^llama-server's prompt cache holds \d+ prompts/);
    expect(s.warnings.some((w) => w.startsWith("m#1: llama-server's prompt cache holds"))).toBe(true);
    // the user's choice stands: no relaunch
    expect(s.models[0]!.instances[0]!.pid).toBe(pid);
    expect(llamaVerbosity(pid)).toBe('4');
    expect([...d.output().matchAll(RELAUNCH)]).toEqual([]);
  }, 120_000);
});
