// The bench restarts its model once the first load recorded the placement, so it measures llama-server
// at -lv 3 as users run it from a model's second launch on (bench/after-first-load.ts). Real daemon,
// real llama-server, tiny model.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { restartAfterFirstLoad } from '../../bench/after-first-load';
import { llamaVerbosity, startTestDaemon } from '../helpers/daemon';

describe('bench: restart after the first load', () => {
  it('restarts the model once its placement is recorded and waits until it is ready at -lv 3', async () => {
    const d = await startTestDaemon({ models: { m: { slots: 1, gpuLayers: 0 } } });
    try {
      const first = (await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready', 'ready')).models[0]!.instances[0]!;
      expect(llamaVerbosity(first.pid!)).toBe('4');
      const snap = await restartAfterFirstLoad({ url: d.url, token: d.token, stateDir: d.stateDir, model: 'm' });
      const again = snap!.models[0]!.instances[0]!;
      expect(again.state).toBe('ready');
      expect(again.pid).not.toBe(first.pid);
      expect(llamaVerbosity(again.pid!)).toBe('3');
    } finally {
      await d.stop();
    }
  }, 120_000);

  it('fails at once, naming the replica and why, when the restarted replica fails', async () => {
    const d = await startTestDaemon({ models: { m: { slots: 1, gpuLayers: 0 } } });
    try {
      await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready', 'ready');
      rmSync(join(d.dir, 'm.gguf')); // the restart cannot load it
      const started = Date.now();
      await expect(restartAfterFirstLoad({ url: d.url, token: d.token, stateDir: d.stateDir, model: 'm' })).rejects.toThrow(/\[m#1\] failed after its restart: .*m\.gguf/);
      expect(Date.now() - started).toBeLessThan(60_000); // not the 120 s wait for "ready"
    } finally {
      await d.stop();
    }
  }, 120_000);
});
