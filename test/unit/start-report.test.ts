// What `slotwise start` warns about once the daemon answers (cli/start-report.ts): models that cannot
// start and a config without models; and which models it still waits for.
import { describe, expect, it } from 'vitest';
import { launching, startWarnings } from '../../cli/start-report';
import type { InstanceStatus, ModelLoadStatus, ModelStatus, Snapshot } from '../../shared/protocol';

function model(name: string, load: ModelLoadStatus, instances: Array<Partial<InstanceStatus>> = []): ModelStatus {
  return { name, load, instances: instances.map((i, k) => ({ id: `${name}#${k + 1}`, state: 'starting', since: 0, restarts: 0, slots: [], ...i })) } as unknown as ModelStatus;
}
const snapshot = (models: ModelStatus[], config?: { path: string; exists: boolean }): Snapshot => ({ models, daemon: { config } }) as unknown as Snapshot;

describe('start report', () => {
  it('waits while a model is planned or its llama-server has just been launched, not once it exited or loads weights', () => {
    expect(launching(model('a', { state: 'loading', phase: 'planning' }))).toBe(true);
    expect(launching(model('a', { state: 'loading', phase: 'starting' }, [{ state: 'starting' }]))).toBe(true);
    expect(launching(model('a', { state: 'loading', phase: 'starting' }, [{ state: 'backoff' }]))).toBe(false);
    expect(launching(model('a', { state: 'loading', phase: 'weights', progress: 0.2 }, [{ state: 'loading' }]))).toBe(false);
    expect(launching(model('a', { state: 'unloaded', reason: 'never-loaded' }))).toBe(false);
    expect(launching(model('a', { state: 'ready' }, [{ state: 'ready' }]))).toBe(false);
  });

  it('names each model that cannot start with its reason and where to look next; nothing for loading or idle ones', () => {
    const lines = startWarnings(
      snapshot([
        model('big', { state: 'unloaded', reason: 'no-memory', error: { code: 'SW_ERR_NOT_ENOUGH_MEMORY', message: 'needs 9 GiB, 2 GiB free' } }),
        model('bad', { state: 'loading', phase: 'starting' }, [{ state: 'backoff', lastError: 'exited with code 1: invalid argument: --x' }]),
        model('gone', { state: 'unloaded', reason: 'failed', error: { code: 'SW_ERR_INSTANCE_FAILED', message: '[gone#1] failed: crashed 5 times' } }, [{ state: 'failed', lastError: 'crashed 5 times' }]),
        model('fine', { state: 'loading', phase: 'weights' }, [{ state: 'loading' }]),
        model('later', { state: 'unloaded', reason: 'never-loaded' }),
      ]),
    );
    expect(lines).toEqual([
      'big not started: needs 9 GiB, 2 GiB free — `slotwise plan big`',
      '[bad#1] exited at launch: exited with code 1: invalid argument: --x, restarting it — `slotwise logs bad#1`',
      'gone not started: [gone#1] failed: crashed 5 times — `slotwise logs gone`',
    ]);
  });

  it('a daemon without models names the file to add one to', () => {
    expect(startWarnings(snapshot([], { path: '/c/config.json', exists: false }))).toEqual(['no models configured: add one under "models" in /c/config.json, then `slotwise stop && slotwise start`']);
  });
});
