// The request path the router matches: a plain path is taken as it is (no URL parse on the hot path),
// anything else is read as WHATWG URL reads it, so both ways route alike.
import { describe, expect, it } from 'vitest';
import { pathOf } from '../../daemon/server/http';

const viaUrl = (target: string): string => new URL(target, 'http://localhost').pathname;

describe('pathOf', () => {
  it.each([
    '/v1/completions',
    '/v1/completions?stream=1',
    '/v1/chat/completions#x',
    '/healthz',
    '/',
    '/api/',
    '/api/jobs/abc-123_x',
    '//v1',
    '/v1//models',
    '/v1/../api/status',
    '/v1/./models',
    '/v1/%63ompletions',
    '/v1/compl%20etions',
    'http://example.com/v1/models?x',
    '/ünïcode',
    '/v1/models\\x',
  ])('reads %s as URL does', (target) => {
    expect(pathOf(target)).toBe(viaUrl(target));
  });

  it('reads a missing target as /', () => {
    expect(pathOf(undefined)).toBe('/');
    expect(pathOf('')).toBe('/');
  });

  it('answers a long target with many segments (no backtracking blow-up) as URL does', () => {
    const target = `/${'a/'.repeat(20_000)}!`;
    expect(pathOf(target)).toBe(viaUrl(target));
  });
});
