// The scheduling hints a request carries: its priority class and its session key (newest wins).
// HTTP: `X-Slotwise-Priority: interactive | background` and `X-Slotwise-Session: KEY` on any proxied
// route; WS: `priority` and `session` in prompt.submit (jobs.ts). Absent = interactive, no session.
import type { IncomingHttpHeaders } from 'node:http';
import { SlotwiseError, describeValue } from '../../shared/errors';
import type { Priority } from '../../shared/protocol';
import type { OpenOptions } from '../scheduler/scheduler';

export const PRIORITY_HEADER = 'x-slotwise-priority';
export const SESSION_HEADER = 'x-slotwise-session';
/** Longest session key: an editor URI fits; anything longer is a mistake, not a key. */
export const MAX_SESSION_CHARS = 1024;

export function parsePriority(value: unknown, where: string): Priority | undefined {
  if (value === undefined) return undefined;
  if (value === 'interactive' || value === 'background') return value;
  throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where} must be "interactive" or "background", got ${describeValue(value)} — leave it out for interactive`);
}

export function parseSession(value: unknown, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_SESSION_CHARS) {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where} must be a non-empty string of at most ${MAX_SESSION_CHARS} characters (e.g. the editor's URI), got ${describeValue(value)}`);
  }
  return value;
}

/** The scheduler options named by a request's headers; throws SW_ERR_BAD_REQUEST on a malformed one. */
export function requestClass(headers: IncomingHttpHeaders): OpenOptions {
  const priority = parsePriority(one(headers[PRIORITY_HEADER])?.trim().toLowerCase(), 'header X-Slotwise-Priority');
  const session = parseSession(one(headers[SESSION_HEADER]), 'header X-Slotwise-Session');
  return { ...(priority ? { priority } : {}), ...(session !== undefined ? { session } : {}) };
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
