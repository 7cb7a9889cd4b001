// Requests from the daemon to one llama-server instance, shared by the OpenAI proxy and prompt jobs.
// Failures are classified once: client gone → SW_ERR_CANCELLED, instance gone → InstanceGoneError
// (retryable before the first byte; a stalled instance too), anything else → SW_ERR_UPSTREAM.
import { Agent, request, type Dispatcher } from 'undici';
import { SlotwiseError } from '../../shared/errors';
import type { LlamaInstance } from '../runtime/instance';
import { InstanceGoneError } from '../scheduler/dispatch';
import { authHeaders } from '../runtime/llama-client';

/** Socket errors that mean the llama-server process went away, not that the request was bad. */
const GONE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** On a `Connection: close` socket (every stream, see postJson) a process that dies mid-response shows
 * up as an EOF inside the chunked body: undici's HTTPParserError "Invalid EOF state", with no code. */
function isEofMidResponse(err: unknown): boolean {
  return (err as Error)?.name === 'HTTPParserError' && /Invalid EOF state/i.test((err as Error).message);
}

/** Keep-alive connections to the instances; no per-origin cap so 1,000 streams can be in flight. */
const agent: Dispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, headersTimeout: 0, bodyTimeout: 0 });

export async function postJson(inst: LlamaInstance, path: string, payload: string, stream: boolean, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  try {
    return await request(`${inst.url}${path}`, {
      method: 'POST',
      body: payload,
      headers: { 'content-type': 'application/json', accept: stream ? 'text/event-stream' : 'application/json', ...authHeaders(inst.apiKey) },
      // The instance's signal ends the request (and its body) when the process stalls.
      signal: AbortSignal.any([signal, inst.requestSignal]),
      dispatcher: agent,
      // llama-server closes the connection after every streamed response, though it answers
      // "Keep-Alive": a request sent on that socket before its FIN arrives fails with "other side
      // closed". So a stream gets a connection of its own; plain requests keep theirs alive.
      reset: stream,
    });
  } catch (err) {
    throw classifyUpstreamError(err, inst, signal);
  }
}

export function classifyUpstreamError(err: unknown, inst: Pick<LlamaInstance, 'id' | 'requestSignal'>, signal: AbortSignal): Error {
  const instance = inst.id;
  if (signal.aborted) return new SlotwiseError('SW_ERR_CANCELLED', 'client disconnected', { cause: err });
  const stalled = inst.requestSignal.aborted ? inst.requestSignal.reason : undefined;
  if (stalled instanceof SlotwiseError) return new InstanceGoneError(instance, err, stalled);
  if (err instanceof SlotwiseError) return err;
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  if ((code && GONE_CODES.has(code)) || isEofMidResponse(err)) return new InstanceGoneError(instance, err);
  return new SlotwiseError('SW_ERR_UPSTREAM', `[${instance}] ${(err as Error).message}`, { cause: err });
}

/** The error that ends a response the client already got part of, when its instance went away or stalled. */
export function midResponseError(e: InstanceGoneError, instance: string, cause: unknown): SlotwiseError {
  if (e.code === 'SW_ERR_INSTANCE_STALLED') return new SlotwiseError(e.code, e.message, { cause });
  return new SlotwiseError('SW_ERR_UPSTREAM', `[${instance}] llama-server stopped mid-response: ${(cause as Error).message}`, { cause });
}

/** Passes a response body through, telling the instance's stall watchdog about every chunk. */
export async function* withProgress<T>(inst: LlamaInstance, body: AsyncIterable<T>): AsyncGenerator<T> {
  for await (const chunk of body) {
    inst.noteProgress();
    yield chunk;
  }
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
