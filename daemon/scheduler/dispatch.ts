// Runs one accepted request through the scheduler: wait for a slot, attempt, release, record the
// single outcome. An attempt that fails because its instance died before the first byte reached
// the client is retried once on another ready instance (or the restarted one).
import { SlotwiseError, toSlotwiseError } from '../../shared/errors';
import type { RequestOutcome } from '../../shared/protocol';
import type { AcquireOptions, Lease, Scheduler, Ticket } from './scheduler';

/** Thrown by an attempt when its instance went away before anything reached the client. */
export class InstanceGoneError extends SlotwiseError {
  /** `stalled`: the instance's stall reason (SW_ERR_INSTANCE_STALLED), when it was killed for making no progress. */
  constructor(instance: string, cause: unknown, stalled?: SlotwiseError) {
    if (stalled) super(stalled.code, stalled.message, { cause });
    else super('SW_ERR_INSTANCE_EXITED', `[${instance}] llama-server went away before the response started: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

export interface DispatchOptions extends Omit<AcquireOptions, 'avoid' | 'retry'> {
  signal: AbortSignal;
  onStart?: (lease: Lease) => void;
}

export async function dispatch<T>(
  scheduler: Scheduler,
  ticket: Ticket,
  opts: DispatchOptions,
  attempt: (lease: Lease) => Promise<T>,
): Promise<T> {
  let avoid: string | undefined;
  try {
    for (let tries = 0; ; tries++) {
      const lease = await scheduler.acquire(ticket, { signal: opts.signal, onQueued: opts.onQueued, handoff: opts.handoff, avoid, retry: tries > 0 });
      opts.onStart?.(lease);
      const untrack = lease.instance.trackRequest(); // for the stall watchdog
      try {
        const result = await attempt(lease);
        scheduler.finish(ticket, 'completed');
        return result;
      } catch (err) {
        if (err instanceof InstanceGoneError && tries === 0 && !opts.signal.aborted) {
          avoid = lease.instance.id;
          // Still holding the lease: until the instance has settled whether its process is gone,
          // neither this retry nor anything else is sent there (with one replica the retry then
          // waits for the restarted process instead of failing on the dead one).
          await untilAborted(lease.instance.connectionLost(), opts.signal);
          continue;
        }
        throw err;
      } finally {
        untrack();
        lease.release();
      }
    }
  } catch (err) {
    scheduler.finish(ticket, outcomeOf(err, opts.signal));
    throw opts.signal.aborted && !(err instanceof SlotwiseError) ? toSlotwiseError(opts.signal.reason ?? err) : err;
  }
}

/** Resolves with `promise`, or as soon as `signal` aborts (the caller then sees the signal). */
function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    void promise.then(done);
  });
}

function outcomeOf(err: unknown, signal: AbortSignal): RequestOutcome {
  if (signal.aborted) return 'cancelled';
  const code = toSlotwiseError(err).code;
  if (code === 'SW_ERR_CANCELLED') return 'cancelled';
  if (code === 'SW_ERR_QUEUE_TIMEOUT' || code === 'SW_ERR_QUEUE_FULL' || code === 'SW_ERR_NO_INSTANCE' || code === 'SW_ERR_SHUTTING_DOWN') return 'rejected';
  if (code === 'SW_ERR_UPSTREAM_REJECTED' || code === 'SW_ERR_BAD_REQUEST') return 'rejected'; // the client's request, refused
  return 'failed';
}
