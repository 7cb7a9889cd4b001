// Typed client for the llama-server endpoints the daemon scrapes: /health, /slots, /metrics, /props.
// The daemon is the only scraper of each instance: /metrics resets its averaging window per scrape.
//
// Each GET goes on a connection of its own, closed after the answer. A kept-alive connection is
// never idle long with a poll every 250 ms, and llama-server's HTTP library watches an idle
// connection by waking its thread every 10 ms (cpp-httplib's keep-alive check interval): an idle
// llama-server woke ~220 times a second for Slotwise's polls, ~40 without the open connection.
import { get as httpGet, type RequestOptions as HttpOptions } from 'node:http';
import type { SlotStatus } from '../../shared/protocol';
import { endpointOf, type LlamaTarget } from './endpoint';

export type Health = { kind: 'ok' } | { kind: 'loading' } | { kind: 'error'; status: number; message: string } | { kind: 'down'; message: string };

export interface RequestOptions {
  signal?: AbortSignal;
  /** Per-call limit on the connection going quiet (no headers, no body bytes), ms. Default 5000. */
  timeoutMs?: number;
  /** The instance's API key (see instance.ts): every endpoint but /health answers 401 without it. */
  apiKey?: string;
}

/** Raw shape of one entry of llama-server's `GET /slots` (fields this version emits). */
interface RawSlot {
  id: number;
  n_ctx?: number;
  is_processing?: boolean;
  id_task?: number;
  n_prompt_tokens?: number;
  next_token?: { n_decoded?: number; n_remain?: number; has_next_token?: boolean }[];
}

/** One GET on a fresh connection that llama-server closes after answering; the whole body as text. */
function get(target: LlamaTarget, path: string, opts: RequestOptions): Promise<{ status: number; body: string }> {
  const timeout = opts.timeoutMs ?? 5000;
  // Over the instance's socket when it has one (endpoint.ts); Host is still its origin's.
  const { origin, socketPath } = endpointOf(target);
  const options: HttpOptions = { agent: false, headers: { ...authHeaders(opts.apiKey), connection: 'close' }, signal: opts.signal, timeout, ...(socketPath ? { socketPath } : {}) };
  return new Promise((resolve, reject) => {
    const req = httpGet(`${origin}${path}`, options, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    // A frozen llama-server accepts (the kernel does) and then says nothing: the socket's idle timeout ends the wait.
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within ${timeout} ms`)));
    req.on('error', reject);
  });
}

export function authHeaders(apiKey: string | undefined): Record<string, string> {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

/** `/health`: 200 ok, 503 while the model loads (every endpoint answers 503 then), refused before listen. */
export async function getHealth(target: LlamaTarget, opts: RequestOptions = {}): Promise<Health> {
  try {
    const { status, body } = await get(target, '/health', opts);
    if (status === 200) return { kind: 'ok' };
    if (status === 503) return { kind: 'loading' };
    return { kind: 'error', status, message: body.slice(0, 200) };
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    return { kind: 'down', message: (err as Error).message };
  }
}

/** Maps llama-server's slot JSON to the wire shape; a slot is busy while `is_processing`. */
export function parseSlots(json: unknown): SlotStatus[] {
  if (!Array.isArray(json)) throw new Error(`/slots: expected an array, got ${typeof json}`);
  return (json as RawSlot[]).map((s) => {
    const busy = s.is_processing === true;
    const slot: SlotStatus = { id: s.id, busy };
    if (typeof s.n_ctx === 'number') slot.nCtx = s.n_ctx;
    if (busy) {
      if (typeof s.id_task === 'number') slot.taskId = s.id_task;
      const next = s.next_token?.[0];
      if (typeof next?.n_decoded === 'number') slot.nDecoded = next.n_decoded;
      if (typeof s.n_prompt_tokens === 'number') slot.nPromptTokens = s.n_prompt_tokens;
    }
    return slot;
  });
}

export async function getSlots(target: LlamaTarget, opts: RequestOptions = {}): Promise<SlotStatus[]> {
  const { status, body } = await get(target, '/slots', opts);
  if (status !== 200) throw new Error(`/slots answered ${status}: ${body.slice(0, 200)}`);
  return parseSlots(JSON.parse(body));
}

/** Prometheus text → `name → value` for the unlabelled `llamacpp:*` series. */
export function parseLlamaMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('llamacpp:')) continue;
    const space = line.lastIndexOf(' ');
    if (space < 0 || line.includes('{')) continue;
    const value = Number(line.slice(space + 1));
    if (Number.isFinite(value)) out.set(line.slice('llamacpp:'.length, space), value);
  }
  return out;
}

export async function getMetrics(target: LlamaTarget, opts: RequestOptions = {}): Promise<Map<string, number>> {
  const { status, body } = await get(target, '/metrics', opts);
  if (status !== 200) throw new Error(`/metrics answered ${status}: ${body.slice(0, 200)}`);
  return parseLlamaMetrics(body);
}

export interface Props {
  totalSlots?: number;
  modelPath?: string;
  buildInfo?: string;
}

export async function getProps(target: LlamaTarget, opts: RequestOptions = {}): Promise<Props> {
  const { status, body } = await get(target, '/props', opts);
  if (status !== 200) throw new Error(`/props answered ${status}: ${body.slice(0, 200)}`);
  const raw = JSON.parse(body) as { total_slots?: number; model_path?: string; build_info?: string };
  return { totalSlots: raw.total_slots, modelPath: raw.model_path, buildInfo: raw.build_info };
}
