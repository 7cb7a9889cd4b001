// At -lv 4 llama-server lists its whole host prompt cache on every request; once that listing is
// longer than its 512-line log queue it slows requests down, and the daemon says so once, with the
// remedy (daemon/runtime/cache-listing.ts). Real llama-server, tiny model, distinct prompts: each one
// saved to the cache when its slot is taken by the next.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LOG_QUEUE_LINES } from '../../daemon/runtime/cache-listing';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon';

const WARNING = /llama-server's prompt cache holds (\d+) prompts, and at -lv 4 it logs every one on every request/g;

async function complete(d: TestDaemon, prompt: string): Promise<void> {
  const res = await d.fetch('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', prompt, max_tokens: 1 }) });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

describe('the prompt-cache listing warning', () => {
  it(`warns once, naming the count and the remedy, when the cache first holds ${LOG_QUEUE_LINES} prompts`, async () => {
    const d = await startTestDaemon({ models: { m: { slots: 2, gpuLayers: 0 } } });
    await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready', 'ready');
    const warnings = (): number[] => [...d.output().matchAll(WARNING)].map((m) => Number(m[1]));
    let sent = 0;
    const send = async (n: number): Promise<void> => {
      const workers = Array.from({ length: 2 }, async () => {
        while (sent < n) await complete(d, `Item ${sent++}: describe the number in one word.`);
      });
      await Promise.all(workers);
    };
    await send(LOG_QUEUE_LINES - 100);
    expect(warnings()).toEqual([]); // a few hundred cached prompts: quiet
    expect((await d.status()).warnings.filter((w) => w.startsWith('m#1:'))).toEqual([]);
    await send(LOG_QUEUE_LINES + 200); // a few dozen fewer are cached than sent
    await d.waitFor(() => warnings().length > 0, 'the warning', 5_000).catch(() => undefined);
    const seen = warnings();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeGreaterThanOrEqual(LOG_QUEUE_LINES);
    expect(d.output()).toContain('add "-lv", "3" to this model\'s "args"');
    // status shows it too, on the replica and among the snapshot's warnings (the CLI and the GPU panel show those)
    const s = await d.status();
    expect(s.models[0]!.instances[0]!.warnings?.[0]).toMatch(/^llama-server's prompt cache holds \d+ prompts/);
    expect(s.warnings.some((w) => w.startsWith("m#1: llama-server's prompt cache holds"))).toBe(true);

    // The remedy it names first: a restart runs on the placement this load recorded, at -lv 3, with no listing to warn of.
    expect(d.output()).toContain('`slotwise restart m` starts it now');
    const verbosity = (pid: number): string | undefined => {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv[argv.indexOf('-lv') + 1];
    };
    const before = s.models[0]!.instances[0]!.pid!;
    expect(verbosity(before)).toBe('4');
    await (await d.client()).call('models.restart', { model: 'm' });
    const after = await d.waitFor((x) => x.models[0]?.instances[0]?.state === 'ready' && x.models[0].instances[0].pid !== before, 'restarted');
    expect(verbosity(after.models[0]!.instances[0]!.pid!)).toBe('3');
    expect(after.models[0]!.instances[0]!.warnings).toBeUndefined();
    expect(after.warnings.filter((w) => w.startsWith('m#1:'))).toEqual([]);
  }, 120_000);
});
