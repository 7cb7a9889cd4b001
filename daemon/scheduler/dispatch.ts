// Runs one accepted request through the scheduler: wait for a slot, attempt, release, record the
// single outcome. An attempt that fails because its instance died before the first byte reached
// the client is retried once on another ready instance (or the restarted one).
import { SlotwiseError, toSlotwiseError } from '../errors';
import type { RequestOutcome } from '../protocol';
import type { AcquireOptions, Lease, Scheduler, Ticket } from './scheduler';

/** Thrown by an attempt when its instance went away before anything reached the client. */
export class InstanceGoneError extends SlotwiseError {
  constructor(instance: string, cause: unknown) {
    super('SW_ERR_INSTANCE_EXITED', `[${instance}] llama-server went away before the response started: ${(cause as Error)?.message ?? cause}`, { cause });
  }
}

export interface DispatchOptions extends Omit<AcquireOptions, 'avoid'> {
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
      const lease = await scheduler.acquire(ticket, { signal: opts.signal, onQueued: opts.onQueued, avoid });
      opts.onStart?.(lease);
      try {
        const result = await attempt(lease);
        scheduler.finish(ticket, 'completed');
        return result;
      } catch (err) {
        if (err instanceof InstanceGoneError && tries === 0 && !opts.signal.aborted) {
          avoid = lease.instance.id;
          continue;
        }
        throw err;
      } finally {
        lease.release();
      }
    }
  } catch (err) {
    scheduler.finish(ticket, outcomeOf(err, opts.signal));
    throw opts.signal.aborted && !(err instanceof SlotwiseError) ? toSlotwiseError(opts.signal.reason ?? err) : err;
  }
}

function outcomeOf(err: unknown, signal: AbortSignal): RequestOutcome {
  if (signal.aborted) return 'cancelled';
  const code = toSlotwiseError(err).code;
  if (code === 'SW_ERR_CANCELLED') return 'cancelled';
  if (code === 'SW_ERR_QUEUE_TIMEOUT' || code === 'SW_ERR_QUEUE_FULL' || code === 'SW_ERR_NO_INSTANCE') return 'rejected';
  return 'failed';
}
