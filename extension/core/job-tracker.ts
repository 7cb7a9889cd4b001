// Prompt jobs as this window sees them: the ones it submitted or opened (followed: their text streams in)
// and the ones jobs.list reports. Deltas are applied strictly in seq order; a gap or a reconnect re-attaches
// with fromSeq = the last seq applied, so no token is lost or doubled.
import { contentText } from '../../shared/chat-content';
import { toSlotwiseError } from '../../shared/errors';
import type { ErrorBody, ErrorCode, JobState, JobSummary, JobTimings, JobUsage, PromptParams, RpcMethod, RpcMethods } from '../../shared/protocol';
import type { ConnectionLog, JobEvent } from './connection';
import { Emitter } from './emitter';

export interface TrackedJob {
  jobId: string;
  model: string;
  title: string;
  state: JobState;
  createdAt: number;
  /** Text of the deltas applied so far, in order. */
  text: string;
  /** seq of the last delta applied (0 = none). */
  lastSeq: number;
  /** Deltas the daemon reported having (from a summary); ≥ lastSeq. */
  seq: number;
  /** Submitted or opened here: its deltas stream in and it is re-attached after a reconnect. */
  followed: boolean;
  position?: number;
  /** Estimated wait while queued (job.queued etaMs), ms. */
  etaMs?: number;
  instance?: string;
  finishReason?: string;
  error?: Pick<ErrorBody, 'code' | 'message'>;
  usage?: JobUsage;
  timings?: JobTimings;
}

export interface JobRpc {
  call<M extends RpcMethod>(method: M, params?: RpcMethods[M]['params']): Promise<RpcMethods[M]['result']>;
}

/** True once a job can change no more. */
export function isFinished(state: JobState): boolean {
  return state === 'completed' || state === 'cancelled' || state === 'failed' || state === 'interrupted';
}

/** The first line of a prompt, shortened for lists and titles. */
export function titleOf(params: PromptParams, max = 60): string {
  const content = params.prompt ?? params.messages?.filter((m) => m.role === 'user').at(-1)?.content ?? '';
  const text = contentText(content);
  const line = text.trim().split('\n', 1)[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 1)}…` : line || '(empty prompt)';
}

export class JobTracker {
  /** A job's state or text changed. */
  readonly onDidChange: Emitter<TrackedJob>;
  /** Text appended to a job, in order, exactly once per delta. */
  readonly onText: Emitter<{ job: TrackedJob; text: string }>;
  #rpc: JobRpc;
  #log: ConnectionLog;
  #jobs = new Map<string, TrackedJob>();
  #attaching = new Map<string, Promise<void>>();
  #maxJobs: number;

  constructor(rpc: JobRpc, log: ConnectionLog, opts: { maxJobs?: number } = {}) {
    this.#rpc = rpc;
    this.#log = log;
    this.#maxJobs = opts.maxJobs ?? 100;
    const onError = (err: unknown): void => log.warn(`job listener failed: ${toSlotwiseError(err).message}`);
    this.onDidChange = new Emitter(onError);
    this.onText = new Emitter(onError);
  }

  get(jobId: string): TrackedJob | undefined {
    return this.#jobs.get(jobId);
  }

  /** Newest first. */
  list(): TrackedJob[] {
    return [...this.#jobs.values()].sort((a, b) => b.createdAt - a.createdAt);
  }

  active(): TrackedJob[] {
    return this.list().filter((j) => j.followed && !isFinished(j.state));
  }

  handle(ev: JobEvent): void {
    const job = this.#ensure(ev.params.jobId);
    switch (ev.method) {
      case 'job.queued':
        if (!isFinished(job.state)) job.state = 'queued';
        job.position = ev.params.position;
        job.etaMs = ev.params.etaMs;
        break;
      case 'job.started':
        if (!isFinished(job.state)) job.state = 'running';
        job.position = undefined;
        job.etaMs = undefined;
        job.instance = ev.params.instance;
        break;
      case 'job.delta': {
        const { seq, text } = ev.params;
        if (seq <= job.lastSeq) return; // replayed after a re-attach: already applied
        if (seq !== job.lastSeq + 1) {
          this.#log.debug(`job ${job.jobId}: delta ${seq} after ${job.lastSeq}; re-attaching to fill the gap`);
          void this.#attach(job);
          return;
        }
        job.text += text;
        job.lastSeq = seq;
        job.seq = Math.max(job.seq, seq);
        if (job.state === 'queued') job.state = 'running';
        job.position = undefined;
        job.etaMs = undefined;
        this.onText.fire({ job, text });
        break;
      }
      case 'job.end':
        job.state = ev.params.finishReason === 'cancelled' ? 'cancelled' : 'completed';
        job.finishReason = ev.params.finishReason;
        job.usage = ev.params.usage;
        job.timings = ev.params.timings;
        job.position = undefined;
        job.etaMs = undefined;
        break;
      case 'job.error':
        job.state = ev.params.code === 'SW_ERR_CANCELLED' ? 'cancelled' : 'failed';
        job.error = { code: ev.params.code, message: ev.params.message };
        job.position = undefined;
        job.etaMs = undefined;
        break;
    }
    this.onDidChange.fire(job);
  }

  /** Submits and returns at once with the job (its text streams in through onText). */
  async submit(params: PromptParams): Promise<TrackedJob> {
    const { jobId } = await this.#rpc.call('prompt.submit', params);
    const job = this.#ensure(jobId); // early notifications may have created it already
    job.followed = true;
    if (!job.model) job.model = params.model ?? '';
    if (job.title === jobId) job.title = titleOf(params);
    this.onDidChange.fire(job);
    return job;
  }

  async cancel(jobId: string): Promise<void> {
    const summary = await this.#rpc.call('prompt.cancel', { jobId });
    this.#apply(summary);
  }

  /** Starts following a job (e.g. one listed from another window): replays its text, then streams. */
  async follow(jobId: string): Promise<TrackedJob> {
    const job = this.#ensure(jobId);
    job.followed = true;
    await this.#attach(job);
    return job;
  }

  /** After a reconnect: every followed unfinished job is attached again from its last seq. */
  async reattachAll(): Promise<void> {
    await Promise.all(this.list().filter((j) => j.followed && !isFinished(j.state)).map((j) => this.#attach(j)));
  }

  /** Merges the daemon's job list (titles, states, usage of jobs this window does not follow). */
  async refresh(): Promise<void> {
    const summaries = await this.#rpc.call('jobs.list');
    const known = new Set(summaries.map((s) => s.jobId));
    for (const job of this.#jobs.values()) {
      if (!job.followed && !known.has(job.jobId)) this.#jobs.delete(job.jobId);
    }
    for (const s of summaries) this.#apply(s);
  }

  #attach(job: TrackedJob): Promise<void> {
    const running = this.#attaching.get(job.jobId);
    if (running) return running;
    const p = (async () => {
      try {
        const summary = await this.#rpc.call('prompt.attach', { jobId: job.jobId, fromSeq: job.lastSeq });
        this.#apply(summary);
      } catch (err) {
        const e = toSlotwiseError(err);
        if (e.code === 'SW_ERR_DAEMON_UNREACHABLE') return; // the next reconnect attaches again
        this.#log.warn(`job ${job.jobId}: re-attach failed: ${e.message}`);
        if (e.code === 'SW_ERR_JOB_NOT_FOUND') this.#lose(job, e.code, 'job lost: the daemon no longer knows it (restarted?)');
      } finally {
        this.#attaching.delete(job.jobId);
      }
    })();
    this.#attaching.set(job.jobId, p);
    return p;
  }

  #lose(job: TrackedJob, code: ErrorCode, message: string): void {
    job.state = 'failed';
    job.error = { code, message };
    this.onDidChange.fire(job);
  }

  #apply(s: JobSummary): void {
    const job = this.#ensure(s.jobId);
    job.model = s.model;
    job.title = s.title || job.title;
    job.createdAt = s.createdAt;
    job.seq = Math.max(job.seq, s.seq);
    // A job we saw end stays ended; otherwise the daemon's word is the state.
    if (!isFinished(job.state) || isFinished(s.state)) job.state = s.state;
    if (s.finishReason !== undefined) job.finishReason = s.finishReason;
    if (s.error) job.error = { code: s.error.code, message: s.error.message };
    if (s.usage) job.usage = s.usage;
    if (s.timings) job.timings = s.timings;
    if (s.instance) job.instance = s.instance;
    this.onDidChange.fire(job);
  }

  #ensure(jobId: string): TrackedJob {
    let job = this.#jobs.get(jobId);
    if (!job) {
      job = { jobId, model: '', title: jobId, state: 'queued', createdAt: Date.now(), text: '', lastSeq: 0, seq: 0, followed: false };
      this.#jobs.set(jobId, job);
      this.#prune();
    }
    return job;
  }

  /** Keeps memory bounded: drops the oldest finished jobs past maxJobs. */
  #prune(): void {
    if (this.#jobs.size <= this.#maxJobs) return;
    const finished = this.list().filter((j) => isFinished(j.state)).reverse();
    for (const j of finished) {
      if (this.#jobs.size <= this.#maxJobs) break;
      this.#jobs.delete(j.jobId);
    }
  }
}

