// Settles whether a llama-server whose connection a request just lost is gone or alive. The socket
// error often reaches the daemon before the child's exit does, so "ready" alone cannot tell.
import { setTimeout as sleep } from 'node:timers/promises';
import { getHealth } from './llama-client';
import type { LlamaTarget } from './endpoint';
import type { StateEvent } from './instance';

/**
 * Resolves with how it was settled: the instance left `ready` (its exit was seen), its /health
 * answered 200 (alive: only the connection was lost), or `limitMs` passed. Never rejects.
 */
/** What this needs of an instance: its state events. */
interface StateSource {
  on(event: 'state', listener: (e: StateEvent) => void): unknown;
  off(event: 'state', listener: (e: StateEvent) => void): unknown;
}

export async function settleLostConnection(instance: StateSource, target: LlamaTarget, limitMs: number): Promise<string> {
  const done = new AbortController();
  const left = new Promise<string>((resolve) => {
    const onState = (e: StateEvent): void => {
      if (e.to !== 'ready') resolve(`state ${e.to}`);
    };
    instance.on('state', onState);
    done.signal.addEventListener('abort', () => instance.off('state', onState), { once: true });
  });
  const alive = (async (): Promise<string> => {
    while (!done.signal.aborted) {
      // getHealth throws only when aborted, which also ends this loop: another branch won
      const health = await getHealth(target, { timeoutMs: limitMs, signal: done.signal }).catch(() => undefined);
      if (health?.kind === 'ok') return 'alive, /health answered 200';
      await sleep(100, undefined, { signal: done.signal }).catch(() => undefined); // aborted: another branch won
    }
    return 'aborted';
  })();
  const limit = sleep(limitMs, `not settled within ${limitMs} ms`, { signal: done.signal }).catch(() => 'aborted'); // aborted: another branch won
  try {
    return await Promise.race([left, alive, limit]);
  } finally {
    done.abort();
  }
}
