// Streams a job's reply where `slotwise.promptOutput` says: a new untitled editor per prompt (default), or
// one "Slotwise Prompts" output channel where replies follow each other (one streams live, the rest wait).
import * as vscode from 'vscode';
import { isFinished, type JobTracker, type TrackedJob } from './core/job-tracker';
import { jobStatusText } from './core/jobs-tree-model';
import { pacer, type Pacer } from './core/pacer';
import { pacedChannel, ReplyChannel, type ReplySink } from './core/reply-channel';
import { toDisposable } from './disposables';

export class PromptOutputs implements vscode.Disposable {
  #sinks = new Map<string, ReplySink>();
  #channel: vscode.OutputChannel | undefined;
  #paced: ReturnType<typeof pacedChannel> | undefined;
  #replies: ReplyChannel | undefined;
  #log: vscode.LogOutputChannel;
  #subs: vscode.Disposable[];

  constructor(jobs: JobTracker, log: vscode.LogOutputChannel) {
    this.#log = log;
    this.#subs = [
      toDisposable(jobs.onText.on(({ job, text }) => this.#sinks.get(job.jobId)?.append(text))),
      toDisposable(
        jobs.onDidChange.on((job) => {
          const sink = this.#sinks.get(job.jobId);
          if (sink && isFinished(job.state)) {
            this.#sinks.delete(job.jobId);
            sink.finish(job);
          }
        }),
      ),
    ];
  }

  /** Opens the output for a job just submitted; text that already arrived is written first. */
  async open(job: TrackedJob, where: 'editor' | 'output'): Promise<void> {
    const sink = where === 'editor' ? await this.#editorSink(job) : this.#channelSink(job);
    if (isFinished(job.state)) sink.finish(job);
    else this.#sinks.set(job.jobId, sink);
  }

  async #editorSink(job: TrackedJob): Promise<ReplySink> {
    // Plain text while it streams, Markdown once it is done: the Markdown grammar tokenizes the last
    // line again on every edit, and on a long one (a small model's 13,000 characters without a newline)
    // that kept the window seconds behind everything else.
    const doc = await vscode.workspace.openTextDocument({ language: STREAMING_LANGUAGE, content: job.text });
    await vscode.window.showTextDocument(doc, { preview: false });
    // Tokens that arrive while the document opens are already in job.text beyond what we wrote.
    const writer = documentAppender(doc, this.#log);
    const written = doc.getText().length;
    if (job.text.length > written) writer.append(job.text.slice(written));
    return {
      append: (text) => writer.append(text),
      finish: (j) => {
        if (j.state === 'failed') writer.append(`\n\n> Slotwise: ${j.error?.message ?? 'failed'}\n`);
        announce(j);
        // After the last edit: a language change closes and reopens the document, and the appender
        // would take the closed one for the user's doing. A language the user picked meanwhile stays.
        void writer.idle().then(() => {
          if (!doc.isClosed && doc.languageId === STREAMING_LANGUAGE) return vscode.languages.setTextDocumentLanguage(doc, 'markdown');
        }).then(undefined, (err: Error) => this.#log.warn(`could not show the reply as Markdown: ${err.message}`));
      },
    };
  }

  #channelSink(job: TrackedJob): ReplySink {
    // Plain text: an output channel's language is fixed at creation, and with Markdown the view
    // fell as far behind a streaming reply as a Markdown editor did (see #editorSink).
    this.#channel ??= vscode.window.createOutputChannel('Slotwise Prompts');
    this.#paced ??= pacedChannel(this.#channel, APPEND_INTERVAL_MS);
    this.#replies ??= new ReplyChannel(this.#paced, announce);
    return this.#replies.add(job);
  }

  dispose(): void {
    for (const s of this.#subs) s.dispose();
    this.#sinks.clear();
    this.#paced?.dispose();
    this.#channel?.dispose();
  }
}

/**
 * The least time between two edits of a streaming reply. Each edit is a round trip to the window, which
 * then re-renders the document; back to back, a fast model (hundreds of tokens a second) kept the
 * window busy with them, and the Slots view froze for seconds behind them. Ten a second still reads as live.
 */
export const APPEND_INTERVAL_MS = 100;

/** The language of a reply's editor while it streams (see #editorSink). */
export const STREAMING_LANGUAGE = 'plaintext';

/** Appends text to the end of a document, one WorkspaceEdit in flight at a time, joining what arrives meanwhile (pacer.ts). */
function documentAppender(doc: vscode.TextDocument, log: vscode.LogOutputChannel): Pacer {
  return pacer(
    async (text) => {
      if (doc.isClosed) return; // the user closed the editor: the text stays in the Jobs view
      const edit = new vscode.WorkspaceEdit();
      edit.insert(doc.uri, doc.lineAt(doc.lineCount - 1).range.end, text);
      if (!(await vscode.workspace.applyEdit(edit))) log.warn(`could not append to ${doc.uri.toString()}`);
    },
    () => APPEND_INTERVAL_MS,
    (err) => log.warn(`appending to ${doc.uri.toString()} failed: ${(err as Error).message}`),
  );
}

function announce(j: TrackedJob): void {
  const icon = j.state === 'completed' ? '$(check)' : j.state === 'cancelled' ? '$(circle-slash)' : '$(error)';
  vscode.window.setStatusBarMessage(`${icon} Slotwise: ${j.title} — ${jobStatusText(j, Date.now())}`, 5000);
}
