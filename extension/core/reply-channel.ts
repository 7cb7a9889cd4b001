// Replies in one output channel, one after another: the head streams live, later ones buffer until
// their turn, and each ends with its status line. No `vscode` import, so it is unit-tested as is.
import { isFinished, type TrackedJob } from './job-tracker';
import { jobStatusText } from './jobs-tree-model';

/** What the queue needs of a VS Code OutputChannel. */
export interface ChannelLike {
  append(text: string): void;
  show(preserveFocus: boolean): void;
}

/** One reply's end of the queue: its text as it streams, and its end. */
export interface ReplySink {
  append(text: string): void;
  finish(job: TrackedJob): void;
}

interface Entry {
  job: TrackedJob;
  buffered: string;
  done: boolean;
}

export class ReplyChannel {
  #channel: ChannelLike;
  #onDone: (job: TrackedJob) => void;
  #now: () => number;
  #queue: Entry[] = [];

  /** `onDone` runs as each reply's status line is written (in queue order, not finish order). */
  constructor(channel: ChannelLike, onDone: (job: TrackedJob) => void, now: () => number = Date.now) {
    this.#channel = channel;
    this.#onDone = onDone;
    this.#now = now;
  }

  /** Queues a job's reply; text it already has is written when its turn comes. */
  add(job: TrackedJob): ReplySink {
    const entry: Entry = { job, buffered: job.text, done: isFinished(job.state) };
    this.#queue.push(entry);
    this.#channel.show(true);
    if (this.#queue[0] === entry) this.#startHead();
    return {
      append: (text) => {
        if (entry.done) return;
        if (this.#queue[0] === entry) this.#channel.append(text);
        else entry.buffered += text;
      },
      finish: (j) => {
        if (!this.#queue.includes(entry)) return; // already written out
        entry.job = j;
        entry.done = true;
        if (this.#queue[0] === entry) this.#advance();
      },
    };
  }

  #startHead(): void {
    const head = this.#queue[0];
    if (!head) return;
    this.#channel.append(`\n## ${head.job.title} (${head.job.model || 'default model'} · ${head.job.jobId})\n\n${head.buffered}`);
    head.buffered = '';
    if (head.done) this.#advance();
  }

  #advance(): void {
    const head = this.#queue.shift();
    if (!head) return;
    const failure = head.job.state === 'failed' ? ` — ${head.job.error?.message ?? 'failed'}` : '';
    this.#channel.append(`\n\n_${jobStatusText(head.job, this.#now())}${failure}_\n`);
    this.#onDone(head.job);
    this.#startHead();
  }
}
