// How a failed upstream request is classified: client gone, instance gone (retryable before the
// first byte), or anything else.
import { describe, expect, it } from 'vitest';
import { InstanceGoneError } from '../../daemon/scheduler/dispatch';
import { classifyUpstreamError } from '../../daemon/api/upstream';

const live = new AbortController().signal;

function parserError(message: string): Error {
  return Object.assign(new Error(message), { name: 'HTTPParserError' });
}

describe('classifyUpstreamError', () => {
  it.each([
    ['refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })],
    ['socket closed', Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })],
    ['cause carries the code', Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNRESET' } })],
    // undici's error when a Connection: close stream's process dies mid-body (recorded with kill -9)
    ['EOF inside a chunked body', parserError('Response does not match the HTTP/1.1 protocol (Invalid EOF state)')],
  ])('%s → instance gone', (_name, err) => {
    expect(classifyUpstreamError(err, 'm#1', live)).toBeInstanceOf(InstanceGoneError);
  });

  it('any other error is an upstream error naming the instance', () => {
    const e = classifyUpstreamError(parserError('Response does not match the HTTP/1.1 protocol (Invalid header value char)'), 'm#1', live);
    expect(e).not.toBeInstanceOf(InstanceGoneError);
    expect(e).toMatchObject({ code: 'SW_ERR_UPSTREAM', message: expect.stringContaining('[m#1]') });
  });

  it('an aborted client wins over everything', () => {
    const ctrl = new AbortController();
    ctrl.abort();
    expect(classifyUpstreamError(Object.assign(new Error('x'), { code: 'ECONNRESET' }), 'm#1', ctrl.signal)).toMatchObject({ code: 'SW_ERR_CANCELLED' });
  });
});
