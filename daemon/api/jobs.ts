// Async prompt jobs over the WebSocket: submit answers {jobId} at once; deltas, end and errors are
// notifications to every attached connection. Jobs outlive their connection so a client that
// reconnects re-attaches from the last seq it saw; finished jobs are kept (last 200, 1 h).
import { randomUUID } from 'node:crypto';
import { SlotwiseError, toSlotwiseError } from '../../shared/errors';
import type { ChatMessage, JobSummary, JobTimings, JobUsage, PromptParams, RpcNotification, RpcNotifications } from '../../shared/protocol';
import { dispatch, InstanceGoneError } from '../scheduler/dispatch';
import type { Lease, Scheduler } from '../scheduler/scheduler';
import type { Supervisor } from '../runtime/supervisor';
import { classifyUpstreamError, midResponseError, postJson, sseData, withProgress } from './upstream';
import { asObject, optNumber, optString, optStringArray } from '../server/validate';
import type { RpcConnection, RpcHandlers } from '../server/ws';

interface Job {
  summary: JobSummary;
  /** Every delta so far, seq = index + 1: the replay source for prompt.attach. */
  deltas: string[];
  abort: AbortController;
  subscribers: Set<RpcConnection>;
  finishedAt?: number;
}

export interface JobStoreOptions {
  scheduler: Scheduler;
  supervisor: Supervisor;
  keep?: number;
  ttlMs?: number;
}

export class JobStore {
  #opts: JobStoreOptions;
  #jobs = new Map<string, Job>();
  #keep: number;
  #ttlMs: number;

  constructor(opts: JobStoreOptions) {
    this.#opts = opts;
    this.#keep = opts.keep ?? 200;
    this.#ttlMs = opts.ttlMs ?? 3_600_000;
  }

  handlers(): RpcHandlers {
    return {
      'prompt.submit': (params, conn) => this.submit(parsePromptParams(params, this.#opts.supervisor), conn),
      'prompt.cancel': (params) => this.cancel(jobIdParam(params, 'prompt.cancel')),
      'prompt.attach': (params, conn) => {
        const p = asObject(params, 'prompt.attach');
        return this.attach(jobIdParam(p, 'prompt.attach'), optNumber(p, 'fromSeq', 'prompt.attach', { integer: true, min: 0 }) ?? 0, conn);
      },
      'jobs.list': () => this.list(),
    };
  }

  /** Accepts or refuses at once (unknown model, model down, queue full); the work runs in the background. */
  submit(params: PromptParams & { model: string }, conn: RpcConnection): { jobId: string } {
    const ticket = this.#opts.scheduler.open(params.model, 'ws');
    const text = params.prompt ?? params.messages?.map((m) => m.content).join('\n') ?? '';
    const job: Job = {
      summary: { jobId: ticket.id, model: params.model, state: 'queued', createdAt: Date.now(), title: text.replace(/\s+/g, ' ').trim().slice(0, 80), seq: 0 },
      deltas: [],
      abort: new AbortController(),
      subscribers: new Set(),
    };
    this.#jobs.set(job.summary.jobId, job);
    this.#subscribe(job, conn);
    const started = Date.now();
    let leaseAt = started;
    void dispatch(
      this.#opts.scheduler,
      ticket,
      {
        signal: job.abort.signal,
        onQueued: (position) => this.#notify(job, 'job.queued', { jobId: job.summary.jobId, position }),
        onStart: (lease) => {
          leaseAt = Date.now();
          job.summary.state = 'running';
          job.summary.instance = lease.instance.id;
          this.#notify(job, 'job.started', { jobId: job.summary.jobId, instance: lease.instance.id });
        },
      },
      (lease) => this.#run(job, params, lease),
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
        job.summary.state = e.code === 'SW_ERR_CANCELLED' ? 'cancelled' : 'failed';
        job.summary.error = { code: e.code, type: 'error', message: e.message };
        this.#notify(job, 'job.error', { jobId: job.summary.jobId, code: e.code, message: e.message });
        this.#finish(job);
      },
    );
    return { jobId: job.summary.jobId };
  }

  cancel(jobId: string): JobSummary {
    const job = this.#get(jobId);
    job.abort.abort(new SlotwiseError('SW_ERR_CANCELLED', `job ${jobId.slice(0, 8)} was cancelled`));
    return { ...job.summary };
  }

  /** Replays deltas after fromSeq to this connection, then streams the rest live (or the end, if finished). */
  attach(jobId: string, fromSeq: number, conn: RpcConnection): JobSummary {
    const job = this.#get(jobId);
    job.deltas.slice(fromSeq).forEach((text, i) => conn.notify('job.delta', { jobId, seq: fromSeq + i + 1, text }));
    const s = job.summary;
    if (s.state === 'completed') conn.notify('job.end', { jobId, finishReason: s.finishReason ?? 'stop', usage: s.usage!, timings: s.timings! });
    else if (s.state === 'failed' || s.state === 'cancelled') conn.notify('job.error', { jobId, code: s.error!.code, message: s.error!.message });
    else this.#subscribe(job, conn);
    return { ...s };
  }

  list(): JobSummary[] {
    this.#prune();
    return [...this.#jobs.values()].map((j) => ({ ...j.summary })).sort((a, b) => b.createdAt - a.createdAt);
  }

  close(): void {
    for (const job of this.#jobs.values()) if (!job.finishedAt) job.abort.abort(new SlotwiseError('SW_ERR_CANCELLED', 'daemon is shutting down'));
  }

  // ------------------------------------------------------------------------------------------

  async #run(job: Job, params: PromptParams, lease: Lease): Promise<{ finishReason: string; usage: JobUsage; tokensPerSecond?: number; firstDeltaAt?: number }> {
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
    const signal = job.abort.signal;
    const res = await postJson(lease.instance, chat ? '/v1/chat/completions' : '/v1/completions', JSON.stringify(body), true, signal);
    if (res.statusCode >= 400) {
      const text = await res.body.text();
      throw new SlotwiseError('SW_ERR_UPSTREAM', `[${lease.instance.id}] answered ${res.statusCode}: ${text.slice(0, 200)}`);
    }
    let finishReason = 'stop';
    let usage: JobUsage = { promptTokens: 0, completionTokens: 0 };
    let tokensPerSecond: number | undefined;
    let firstDeltaAt: number | undefined;
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
        }
        if (choice?.finish_reason) finishReason = choice.finish_reason;
        if (chunk.usage) usage = { promptTokens: chunk.usage.prompt_tokens ?? 0, completionTokens: chunk.usage.completion_tokens ?? 0 };
        if (chunk.timings?.predicted_per_second !== undefined) tokensPerSecond = chunk.timings.predicted_per_second;
      }
    } catch (err) {
      const e = classifyUpstreamError(err, lease.instance, signal);
      // After the first delta reached a client, a dead instance ends the job with an error; before, it is retried.
      if (e instanceof InstanceGoneError && job.deltas.length > 0) throw midResponseError(e, lease.instance.id, err);
      throw e;
    }
    return { finishReason, usage, tokensPerSecond, firstDeltaAt };
  }

  #notify<N extends RpcNotification>(job: Job, method: N, params: RpcNotifications[N]): void {
    for (const conn of job.subscribers) conn.notify(method, params);
  }

  #subscribe(job: Job, conn: RpcConnection): void {
    if (job.subscribers.has(conn)) return;
    job.subscribers.add(conn);
    conn.onClose(() => job.subscribers.delete(conn)); // the job keeps running: its client may re-attach
  }

  #finish(job: Job): void {
    job.finishedAt = Date.now();
    job.subscribers.clear();
    this.#prune();
  }

  #prune(): void {
    const now = Date.now();
    const finished = [...this.#jobs.values()].filter((j) => j.finishedAt !== undefined);
    const excess = finished.length - this.#keep;
    finished.forEach((j, i) => {
      if (i < excess || now - j.finishedAt! > this.#ttlMs) this.#jobs.delete(j.summary.jobId);
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
  timings?: { predicted_per_second?: number };
}

function jobIdParam(params: unknown, where: string): string {
  const id = optString(asObject(params, where), 'jobId', where);
  if (!id) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "jobId" is required`);
  return id;
}

/** Validates prompt.submit params; `model` may be omitted when exactly one model is configured. */
export function parsePromptParams(raw: unknown, supervisor: Supervisor): PromptParams & { model: string } {
  const where = 'prompt.submit';
  const p = asObject(raw, where);
  const model = supervisor.resolveModel(optString(p, 'model', where), where);
  const prompt = optString(p, 'prompt', where);
  let messages: ChatMessage[] | undefined;
  if (p.messages !== undefined) {
    if (!Array.isArray(p.messages) || p.messages.length === 0) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "messages" must be a non-empty array of {role, content}`);
    messages = p.messages.map((m, i) => {
      const o = asObject(m, `${where}: messages[${i}]`);
      if (o.role !== 'system' && o.role !== 'user' && o.role !== 'assistant') {
        throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: messages[${i}].role must be "system", "user" or "assistant"`);
      }
      if (typeof o.content !== 'string') throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: messages[${i}].content must be a string`);
      return { role: o.role, content: o.content };
    });
  }
  if ((prompt === undefined) === (messages === undefined)) {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: give exactly one of "prompt" (text) or "messages" (chat)`);
  }
  return {
    model,
    prompt,
    messages,
    maxTokens: optNumber(p, 'maxTokens', where, { integer: true, min: 1 }),
    temperature: optNumber(p, 'temperature', where, { min: 0, max: 100 }),
    topP: optNumber(p, 'topP', where, { min: 0, max: 1 }),
    seed: optNumber(p, 'seed', where, { integer: true }),
    stop: optStringArray(p, 'stop', where),
  };
}
