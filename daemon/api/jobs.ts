// Async prompt jobs over the WebSocket: submit answers {jobId} at once; deltas, end and errors are
// notifications to every attached connection. Jobs outlive their connection so a client that
// reconnects re-attaches from the last seq it saw; finished jobs are kept (last 200, 1 h), also on
// disk (job-archive.ts) so they survive a daemon restart.
import { contentText, mediaOf } from '../../shared/chat-content';
import { SlotwiseError, quote, toSlotwiseError } from '../../shared/errors';
import type { ChatContentPart, ChatMessage, JobSummary, JobTimings, JobUsage, Modality, PromptParams, RpcNotification, RpcNotifications } from '../../shared/protocol';
import { dispatch, InstanceGoneError } from '../scheduler/dispatch';
import type { Lease, Scheduler } from '../scheduler/scheduler';
import type { Supervisor } from '../runtime/supervisor';
import { payloadOf } from './payload';
import { writeWithMedia } from '../server/lifted-strings';
import { classifyUpstreamError, midResponseError, postJson, sseData, upstreamError, withProgress, withSlot } from './upstream';
import { promptText } from '../scheduler/prompt-key';
import { asObject, optNumber, optString, optStringArray } from '../server/validate';
import type { RpcConnection, RpcHandlers } from '../server/ws';
import type { JobArchive } from './job-archive';
import { requireModelKind, requireProjector } from './model-kind';
import type { PromptTimings } from './prompt-timings';
import { parsePriority, parseSession } from './request-class';
import { anySignal } from './any-signal';
import { closest } from '../config/unknown-keys';

/** job.queued notifications per job at most this often: a moving queue must not flood a client. */
export const QUEUED_NOTIFY_MS = 250;

interface Job {
  summary: JobSummary;
  /** Every delta so far, seq = index + 1: the replay source for prompt.attach. */
  deltas: string[];
  abort: AbortController;
  /** The job's abort signal combined with its ticket's (superseded by a newer job of its session). */
  signal?: AbortSignal;
  subscribers: Set<RpcConnection>;
  finishedAt?: number;
  /**
   * Notifications held until prompt.submit's reply is out: its jobId is how a client knows the job,
   * and a free slot starts the job (job.started) before the handler returns.
   */
  held?: Array<() => void>;
}

export interface JobStoreOptions {
  scheduler: Scheduler;
  supervisor: Supervisor;
  keep?: number;
  ttlMs?: number;
  /** Where jobs are kept across restarts; none in tests that do not need it. */
  archive?: JobArchive;
}

export class JobStore {
  #opts: JobStoreOptions;
  #jobs = new Map<string, Job>();
  #keep: number;
  #ttlMs: number;
  /** Settles when the job ends, however; shutdown waits on these. */
  #running = new Set<Promise<void>>();

  constructor(opts: JobStoreOptions) {
    this.#opts = opts;
    this.#keep = opts.keep ?? 200;
    this.#ttlMs = opts.ttlMs ?? 3_600_000;
  }

  /** Loads the jobs an earlier daemon kept (running ones come back `interrupted`). */
  async restore(): Promise<void> {
    for (const stored of (await this.#opts.archive?.load()) ?? []) {
      const s = stored.summary;
      const finishedAt = s.state === 'interrupted' ? Date.now() : s.createdAt + (s.timings?.totalMs ?? 0);
      this.#jobs.set(s.jobId, { summary: s, deltas: stored.deltas, abort: new AbortController(), subscribers: new Set(), finishedAt });
    }
    this.#prune();
  }

  handlers(): RpcHandlers {
    return {
      'prompt.submit': (params, conn, extras) => this.submit(parsePromptParams(params, this.#opts.supervisor), conn, extras.media),
      'prompt.cancel': (params) => this.cancel(jobIdParam(params, 'prompt.cancel')),
      'prompt.attach': (params, conn) => {
        const p = asObject(params, 'prompt.attach');
        return this.attach(jobIdParam(p, 'prompt.attach'), optNumber(p, 'fromSeq', 'prompt.attach', { integer: true, min: 0 }) ?? 0, conn);
      },
      'jobs.list': () => this.list(),
    };
  }

  /** Accepts or refuses at once (unknown model, model down, queue full); the work runs in the background. */
  /** `media`: the photos lifted out of the message, by the stand-in the params hold for each (server/ws.ts). */
  submit(params: PromptParams & { model: string }, conn: RpcConnection, media: ReadonlyMap<string, Buffer> = new Map()): { jobId: string } {
    const ticket = this.#opts.scheduler.open(params.model, 'ws', promptText(params), {
      ...(params.priority ? { priority: params.priority } : {}),
      ...(params.session !== undefined ? { session: params.session } : {}),
    });
    const text = params.prompt ?? params.messages?.map((m) => contentText(m.content)).join('\n') ?? '';
    const job: Job = {
      summary: { jobId: ticket.id, model: params.model, state: 'queued', createdAt: Date.now(), title: text.replace(/\s+/g, ' ').trim().slice(0, 80), seq: 0 },
      deltas: [],
      abort: new AbortController(),
      subscribers: new Set(),
    };
    this.#jobs.set(job.summary.jobId, job);
    this.#subscribe(job, conn);
    // ws.ts sends the reply a few microtasks after this returns; an immediate runs after those and
    // before the next I/O, so before any token of the job can arrive.
    job.held = [];
    setImmediate(() => {
      const held = job.held ?? [];
      job.held = undefined;
      for (const send of held) send();
    });
    this.#opts.archive?.save({ summary: job.summary, deltas: job.deltas }, { sync: true });
    const started = Date.now();
    let leaseAt = started;
    job.signal = anySignal([job.abort.signal, ticket.signal]);
    const queued = coalesce(QUEUED_NOTIFY_MS, (p: RpcNotifications['job.queued']) => {
      if (job.summary.state === 'queued') this.#notify(job, 'job.queued', p);
    });
    const done = dispatch(
      this.#opts.scheduler,
      ticket,
      {
        signal: job.signal,
        onQueued: (position, etaMs) => queued({ jobId: job.summary.jobId, position, ...(etaMs !== undefined ? { etaMs } : {}) }),
        onStart: (lease) => {
          queued.cancel();
          leaseAt = Date.now();
          job.summary.state = 'running';
          job.summary.instance = lease.instance.id;
          this.#notify(job, 'job.started', { jobId: job.summary.jobId, instance: lease.instance.id });
        },
      },
      (lease) => this.#run(job, params, lease, media),
    ).then(
      ({ finishReason, usage, tokensPerSecond, firstDeltaAt }) => {
        const now = Date.now();
        const timings: JobTimings = { queuedMs: leaseAt - started, totalMs: now - started };
        if (firstDeltaAt) timings.ttftMs = firstDeltaAt - leaseAt;
        if (tokensPerSecond !== undefined) timings.tokensPerSecond = Math.round(tokensPerSecond * 10) / 10;
        Object.assign(job.summary, { state: 'completed', finishReason, usage, timings });
        this.#notify(job, 'job.end', { jobId: job.summary.jobId, finishReason, usage, timings });
        this.#finish(job);
      },
      (err: unknown) => {
        const e = toSlotwiseError(err);
        queued.cancel();
        job.summary.state = e.code === 'SW_ERR_CANCELLED' || e.code === 'SW_ERR_SUPERSEDED' ? 'cancelled' : 'failed';
        job.summary.error = { code: e.code, type: 'error', message: e.message };
        this.#notify(job, 'job.error', { jobId: job.summary.jobId, code: e.code, message: e.message });
        this.#finish(job);
      },
    );
    this.#running.add(done);
    void done.finally(() => this.#running.delete(done));
    return { jobId: job.summary.jobId };
  }

  /** Cancels a queued or running job; the reply shows it cancelled (its job.error follows as it stops). A finished job is left as it ended. */
  cancel(jobId: string): JobSummary {
    const job = this.#get(jobId);
    if (job.summary.state !== 'queued' && job.summary.state !== 'running') return { ...job.summary };
    job.abort.abort(new SlotwiseError('SW_ERR_CANCELLED', `job ${jobId.slice(0, 8)} was cancelled (prompt.cancel)`));
    return { ...job.summary, state: 'cancelled' };
  }

  /** Replays deltas after fromSeq to this connection, then streams the rest live (or the end, if finished). */
  attach(jobId: string, fromSeq: number, conn: RpcConnection): JobSummary {
    const job = this.#get(jobId);
    job.deltas.slice(fromSeq).forEach((text, i) => conn.notify('job.delta', { jobId, seq: fromSeq + i + 1, text }));
    const s = job.summary;
    if (s.state === 'completed') conn.notify('job.end', { jobId, finishReason: s.finishReason ?? 'stop', usage: s.usage!, timings: s.timings! });
    else if (s.state === 'failed' || s.state === 'cancelled' || s.state === 'interrupted') conn.notify('job.error', { jobId, code: s.error!.code, message: s.error!.message });
    else this.#subscribe(job, conn);
    return { ...s };
  }

  list(): JobSummary[] {
    this.#prune();
    return [...this.#jobs.values()].map((j) => ({ ...j.summary })).sort((a, b) => b.createdAt - a.createdAt);
  }

  /** Ends every unfinished job with `reason` (shutdown, after the grace); they end with job.error. */
  close(reason: SlotwiseError = new SlotwiseError('SW_ERR_SHUTTING_DOWN', 'daemon is shutting down')): void {
    for (const job of this.#jobs.values()) if (!job.finishedAt) job.abort.abort(reason);
  }

  /** Resolves once no job is queued or running. */
  async settled(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  /** Resolves once every job's latest state is on disk. */
  flush(): Promise<void> {
    return this.#opts.archive?.flush() ?? Promise.resolve();
  }

  // ------------------------------------------------------------------------------------------

  async #run(job: Job, params: PromptParams, lease: Lease, media: ReadonlyMap<string, Buffer>): Promise<{ finishReason: string; usage: JobUsage; tokensPerSecond?: number; firstDeltaAt?: number }> {
    const chat = params.messages !== undefined;
    const body: Record<string, unknown> = {
      stream: true,
      stream_options: { include_usage: true },
      ...(chat ? { messages: params.messages } : { prompt: params.prompt }),
      ...(params.maxTokens !== undefined ? { max_tokens: params.maxTokens } : {}),
      ...(params.temperature !== undefined ? { temperature: params.temperature } : {}),
      ...(params.topP !== undefined ? { top_p: params.topP } : {}),
      ...(params.seed !== undefined ? { seed: params.seed } : {}),
      ...(params.stop !== undefined ? { stop: params.stop } : {}),
    };
    const signal = job.signal ?? job.abort.signal;
    const res = await postJson(lease.instance, chat ? '/v1/chat/completions' : '/v1/completions', withSlot(payloadOf(writeWithMedia(body, media)), lease.slot), true, signal);
    if (res.statusCode >= 400) throw upstreamError(lease.instance.id, res.statusCode, await res.body.text());
    let finishReason = 'stop';
    let usage: JobUsage = { promptTokens: 0, completionTokens: 0 };
    let tokensPerSecond: number | undefined;
    let firstDeltaAt: number | undefined;
    let promptTokens: PromptTimings | undefined;
    try {
      for await (const data of sseData(withProgress(lease.instance, res.body))) {
        if (data === '[DONE]') break;
        const chunk = JSON.parse(data) as StreamChunk;
        const choice = chunk.choices?.[0];
        const text = chat ? choice?.delta?.content : choice?.text;
        if (text) {
          firstDeltaAt ??= Date.now();
          job.deltas.push(text);
          job.summary.seq = job.deltas.length;
          this.#notify(job, 'job.delta', { jobId: job.summary.jobId, seq: job.summary.seq, text });
          lease.progress(job.summary.seq);
        }
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.usage) usage = { promptTokens: chunk.usage.prompt_tokens ?? 0, completionTokens: chunk.usage.completion_tokens ?? 0 };
        if (chunk.timings?.predicted_per_second !== undefined) tokensPerSecond = chunk.timings.predicted_per_second;
        const t = chunk.timings;
        if (t?.cache_n !== undefined && t.prompt_n !== undefined) {
          promptTokens = { cached: t.cache_n, processed: t.prompt_n, promptMs: t.prompt_ms, ...(t.draft_n !== undefined && t.draft_n_accepted !== undefined ? { draft: { drafted: t.draft_n, accepted: t.draft_n_accepted } } : {}) };
        }
      }
      if (promptTokens) lease.promptTokens(promptTokens.cached, promptTokens.processed, promptTokens.promptMs, promptTokens.draft);
    } catch (err) {
      const e = classifyUpstreamError(err, lease.instance, signal);
      // After the first delta reached a client, a dead instance ends the job with an error; before, it is retried.
      if (e instanceof InstanceGoneError && job.deltas.length > 0) throw midResponseError(e, lease.instance.id, err);
      throw e;
    }
    return { finishReason, usage, tokensPerSecond, firstDeltaAt };
  }

  #notify<N extends RpcNotification>(job: Job, method: N, params: RpcNotifications[N]): void {
    if (job.held) job.held.push(() => this.#notify(job, method, params));
    else for (const conn of job.subscribers) conn.notify(method, params);
  }

  #subscribe(job: Job, conn: RpcConnection): void {
    if (job.subscribers.has(conn)) return;
    job.subscribers.add(conn);
    conn.onClose(() => job.subscribers.delete(conn)); // the job keeps running: its client may re-attach
  }

  #finish(job: Job): void {
    job.finishedAt = Date.now();
    job.subscribers.clear();
    this.#save(job);
    this.#prune();
  }

  #save(job: Job): void {
    this.#opts.archive?.save({ summary: job.summary, deltas: job.deltas });
  }

  #prune(): void {
    const now = Date.now();
    const finished = [...this.#jobs.values()].filter((j) => j.finishedAt !== undefined);
    const excess = finished.length - this.#keep;
    finished.forEach((j, i) => {
      if (i < excess || now - j.finishedAt! > this.#ttlMs) {
        this.#jobs.delete(j.summary.jobId);
        this.#opts.archive?.remove(j.summary.jobId);
      }
    });
  }

  #get(jobId: string): Job {
    const job = this.#jobs.get(jobId);
    if (!job) throw new SlotwiseError('SW_ERR_JOB_NOT_FOUND', `no job "${jobId}" — finished jobs are kept for 1 h (last ${this.#keep}); \`slotwise jobs\` lists them`);
    return job;
  }
}

interface StreamChunk {
  choices?: { text?: string; delta?: { content?: string | null }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
  timings?: { predicted_per_second?: number; cache_n?: number; prompt_n?: number; prompt_ms?: number; draft_n?: number; draft_n_accepted?: number };
}

function jobIdParam(params: unknown, where: string): string {
  const id = optString(asObject(params, where), 'jobId', where);
  if (!id) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "jobId" is required`);
  return id;
}

/** prompt.submit's fields (shared/protocol.ts PromptParams). */
const PROMPT_FIELDS: readonly string[] = ['model', 'prompt', 'messages', 'maxTokens', 'temperature', 'topP', 'seed', 'stop', 'priority', 'session'] satisfies (keyof PromptParams)[];

/**
 * A message's content: a string, or text, image and audio parts; media only for a model whose projector
 * (`mmproj`) reads it, and only inline: an image as a `data:` URL, audio as base64 (llama-server would
 * fetch a URL itself).
 */
function messageContent(content: unknown, where: string, model: { name: string; mmproj?: string }, modalities: readonly Modality[] | undefined): string | ChatContentPart[] {
  if (typeof content === 'string') return content;
  const shape = `${where}.content must be a string or an array of {"type": "text", "text"}, {"type": "image_url", "image_url": {"url": "data:…"}} and {"type": "input_audio", "input_audio": {"data": BASE64, "format"}} parts`;
  if (!Array.isArray(content) || content.length === 0) throw new SlotwiseError('SW_ERR_BAD_REQUEST', shape);
  return content.map((raw, j): ChatContentPart => {
    const part = (raw ?? {}) as { type?: unknown; text?: unknown; image_url?: { url?: unknown }; input_audio?: { data?: unknown; format?: unknown } };
    if (part.type === 'text' && typeof part.text === 'string') return { type: 'text', text: part.text };
    const media = mediaOf(part);
    if (part.type === 'image_url' && typeof part.image_url?.url === 'string') {
      requireProjector(model, `${where}.content[${j}]`, media!, modalities);
      if (!part.image_url.url.startsWith('data:image/')) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}.content[${j}].image_url.url must be a data:image/… URL (base64 of the image)`);
      return { type: 'image_url', image_url: { url: part.image_url.url } };
    }
    const audio = part.input_audio;
    if (part.type === 'input_audio' && typeof audio?.data === 'string' && typeof audio.format === 'string') {
      requireProjector(model, `${where}.content[${j}]`, media!, modalities);
      // Base64 has no colon; a scheme (http:, file:) is a URL llama-server would read itself.
      if (/^[a-z][a-z0-9+.-]*:/i.test(audio.data) && !audio.data.startsWith('data:audio/')) {
        throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}.content[${j}].input_audio.data must be the audio's base64 (or a data:audio/… URL), not a URL`);
      }
      return { type: 'input_audio', input_audio: { data: audio.data, format: audio.format } };
    }
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${shape}; part ${j} is not one`);
  });
}

/** With the u flag a pair is one code point, so only a half left alone is in the surrogate category. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Validates prompt.submit params; `model` may be omitted when exactly one model is configured. */
export function parsePromptParams(raw: unknown, supervisor: Supervisor): PromptParams & { model: string } {
  const where = 'prompt.submit';
  const p = asObject(raw, where);
  // A field it does not know would be dropped silently: `max_tokens` for `maxTokens` ran to the context's end.
  for (const key of Object.keys(p)) {
    if (PROMPT_FIELDS.includes(key)) continue;
    const camel = key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    const near = PROMPT_FIELDS.includes(camel) ? camel : closest(key, PROMPT_FIELDS);
    const fix = near !== undefined ? `use "${near}"` : `the fields are ${PROMPT_FIELDS.join(', ')}`;
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: ${quote(key)} is not a prompt.submit field — ${fix}`);
  }
  const model = supervisor.resolveModel(optString(p, 'model', where), where);
  requireModelKind(supervisor, model, 'completion', where);
  const { ctxPerSlot } = supervisor.modelConfig(model);
  const prompt = optString(p, 'prompt', where);
  let messages: ChatMessage[] | undefined;
  if (p.messages !== undefined) {
    if (!Array.isArray(p.messages) || p.messages.length === 0) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "messages" must be a non-empty array of {role, content}`);
    messages = p.messages.map((m, i) => {
      const o = asObject(m, `${where}: messages[${i}]`);
      if (o.role !== 'system' && o.role !== 'user' && o.role !== 'assistant') {
        throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: messages[${i}].role must be "system", "user" or "assistant"`);
      }
      return { role: o.role, content: messageContent(o.content, `${where}: messages[${i}]`, supervisor.modelConfig(model), supervisor.modalities(model)) };
    });
  }
  if ((prompt === undefined) === (messages === undefined)) {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: give exactly one of "prompt" (text) or "messages" (chat)`);
  }
  // llama-server refuses a lone surrogate only once the job runs (its JSON parser): say so at submit.
  const texts: Array<[string, string]> = prompt !== undefined ? [['"prompt"', prompt]] : messages!.map((m, i) => [`messages[${i}].content`, contentText(m.content)]);
  for (const [field, text] of texts) {
    if (LONE_SURROGATE.test(text)) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: ${field} holds a lone UTF-16 surrogate (half of a character) — send whole characters`);
  }
  return {
    model,
    prompt,
    messages,
    // Bounded like the OpenAI routes (see checkNumbers in openai.ts): llama-server wraps larger values at 32 bits.
    maxTokens: optNumber(p, 'maxTokens', where, { integer: true, min: 1, max: ctxPerSlot, why: `the model's context per slot, models.${model}.ctxPerSlot` }),
    temperature: optNumber(p, 'temperature', where, { min: 0, max: 100 }),
    topP: optNumber(p, 'topP', where, { min: 0, max: 1 }),
    seed: optNumber(p, 'seed', where, { integer: true, min: -1, max: 4_294_967_295, why: '-1 = random' }),
    stop: optStringArray(p, 'stop', where),
    priority: parsePriority(p.priority, `${where}: "priority"`),
    session: parseSession(p.session, `${where}: "session"`),
  };
}

/**
 * Calls `send` with the latest value at most every `ms`: the first at once, later ones when the
 * interval has passed (a trailing call carries the newest value); `cancel` drops a pending one.
 */
export function coalesce<T>(ms: number, send: (value: T) => void): ((value: T) => void) & { cancel(): void } {
  let last = Number.NEGATIVE_INFINITY;
  let pending: { value: T } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    if (!pending) return;
    const { value } = pending;
    pending = undefined;
    last = Date.now();
    send(value);
  };
  const call = (value: T): void => {
    pending = { value };
    if (timer) return;
    const wait = last + ms - Date.now();
    if (wait <= 0) flush();
    else timer = setTimeout(flush, wait);
  };
  return Object.assign(call, {
    cancel: () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
      pending = undefined;
    },
  });
}
