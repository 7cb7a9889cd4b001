// Replies in one output channel, one after another: the head streams live, later ones buffer until
// their turn, and each ends with its status line. No `vscode` import, so it is unit-tested as is.
import { isFinished, type TrackedJob } from './job-tracker';
import { jobStatusText } from './jobs-tree-model';
import { pacer } from './pacer';

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

/**
 * The output view wraps long lines, so a write to a channel whose last line is long (a small random
 * model writes 50,000 characters without a newline) reflows that whole line. The wait between writes
 * grows with the line, one millisecond per LINE_CHARS_PER_MS characters, so that the reflowing per
 * second stays about level however long the line gets.
 */
export const LINE_CHARS_PER_MS = 50;

/**
 * A channel whose appends are joined and written at most every `intervalMs` (longer while the last
 * line is long, above), through the same pacer as a reply's editor (pacer.ts).
 */
export function pacedChannel(channel: ChannelLike, intervalMs: number): ChannelLike & { dispose(): void } {
  let lastLine = 0; // characters written since the last newline
  const paced = pacer(
    (text) => channel.append(text),
    (text) => {
      const nl = text.lastIndexOf('\n');
      lastLine = nl === -1 ? lastLine + text.length : text.length - nl - 1;
      return Math.max(intervalMs, lastLine / LINE_CHARS_PER_MS);
    },
  );
  return {
    append: (text) => paced.append(text),
    show: (preserveFocus) => channel.show(preserveFocus),
    dispose: () => paced.dispose(),
  };
}
