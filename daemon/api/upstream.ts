// Requests from the daemon to one llama-server instance, shared by the OpenAI proxy and prompt jobs.
// Failures are classified once: client gone → SW_ERR_CANCELLED, instance gone → InstanceGoneError
// (retryable before the first byte), anything else → SW_ERR_UPSTREAM.
import { Agent, request, type Dispatcher } from 'undici';
import { SlotwiseError } from '../../shared/errors';
import type { LlamaInstance } from '../runtime/instance';
import { InstanceGoneError } from '../scheduler/dispatch';
import { spareConnector } from './spare-connections';

/** Socket errors that mean the llama-server process went away, not that the request was bad. */
const GONE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** On a `Connection: close` socket (every stream, see postJson) a process that dies mid-response shows
 * up as an EOF inside the chunked body: undici's HTTPParserError "Invalid EOF state", with no code. */
function isEofMidResponse(err: unknown): boolean {
  return (err as Error)?.name === 'HTTPParserError' && /Invalid EOF state/i.test((err as Error).message);
}

/** Keep-alive connections to the instances; no per-origin cap so 1,000 streams can be in flight.
 * Each new connection comes from a spare opened ahead of time (see spare-connections.ts). */
const agent: Dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, headersTimeout: 0, bodyTimeout: 0, connect: spareConnector() });

export async function postJson(inst: LlamaInstance, path: string, payload: string, stream: boolean, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  try {
    return await request(`${inst.url}${path}`, {
      method: 'POST',
      body: payload,
      headers: { 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json' },
      signal,
      dispatcher: agent,
      // llama-server closes the connection after every streamed response, though it answers
      // "Keep-Alive": a request sent on that socket before its FIN arrives fails with "other side
      // closed". So a stream gets a connection of its own; plain requests keep theirs alive.
      reset: stream,
    });
  } catch (err) {
    throw classifyUpstreamError(err, inst.id, signal);
  }
}

export function classifyUpstreamError(err: unknown, instance: string, signal: AbortSignal): Error {
  if (signal.aborted) return new SlotwiseError('SW_ERR_CANCELLED', 'client disconnected', { cause: err });
  if (err instanceof SlotwiseError) return err;
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  if ((code && GONE_CODES.has(code)) || isEofMidResponse(err)) return new InstanceGoneError(instance, err);
  return new SlotwiseError('SW_ERR_UPSTREAM', `[${instance}] ${(err as Error).message}`, { cause: err });
}

/** Yields the `data:` payloads of an SSE stream as they arrive (events split across chunks are joined). */
export async function* sseData(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let idx: number;
    while ((idx = buf.search(/\r?\n\r?\n/)) >= 0) {
      const event = buf.slice(0, idx);
      buf = buf.slice(idx).replace(/^\r?\n\r?\n/, '');
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data) yield data;
    }
  }
}
