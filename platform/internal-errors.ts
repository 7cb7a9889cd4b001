// Where unexpected errors (bugs) go in a long-running process: the daemon subscribes and logs them
// with their stack instead of dying; without a subscriber the CLI prints one line and exits.
import { EventEmitter } from 'node:events';
import type { SlotwiseError } from '../shared/errors';

const bus = new EventEmitter<{ error: [SlotwiseError] }>();

/** Returns false when nobody handles internal errors (then the caller exits). */
export function reportInternalError(err: SlotwiseError): boolean {
  return bus.emit('error', err);
}

export function onInternalError(listener: (err: SlotwiseError) => void): () => void {
  bus.on('error', listener);
  return () => bus.off('error', listener);
}
