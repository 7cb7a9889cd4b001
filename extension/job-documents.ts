// Read-only documents `slotwise-job:/<jobId>.md` showing a job's prompt title and reply; they update live.
import * as vscode from 'vscode';
import type { JobTracker, TrackedJob } from './core/job-tracker';
import { jobStatusText } from './core/jobs-tree-model';
import { throttle, toDisposable } from './disposables';

export const JOB_SCHEME = 'slotwise-job';

/** `slotwise-job:/<jobId>/<title>.md`: the tab shows the prompt's title, the first segment finds the job. */
export function jobUri(jobId: string, title = 'job'): vscode.Uri {
  const name = title.replace(/[\\/:*?"<>|#%\u0000-\u001f]+/g, ' ').trim().slice(0, 60) || 'job';
  return vscode.Uri.from({ scheme: JOB_SCHEME, path: `/${jobId}/${name}.md` });
}

function jobIdOf(uri: vscode.Uri): string {
  return uri.path.split('/')[1] ?? '';
}

/** The document text of a job: a header line, then the reply. */
export function jobDocumentText(job: TrackedJob, now = Date.now()): string {
  return `<!-- ${job.title.replace(/-->/g, '—>')} · ${job.model || 'default model'} · ${jobStatusText(job, now)} -->\n\n${job.text}`;
}

export class JobDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  #changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.#changed.event;
  #jobs: JobTracker;
  #dirty = new Set<string>();
  #sub: vscode.Disposable;
  #flush = throttle(() => {
    for (const doc of vscode.workspace.textDocuments) {
      if (doc.uri.scheme === JOB_SCHEME && this.#dirty.has(jobIdOf(doc.uri))) this.#changed.fire(doc.uri);
    }
    this.#dirty.clear();
  }, 200);

  constructor(jobs: JobTracker) {
    this.#jobs = jobs;
    this.#sub = toDisposable(
      jobs.onDidChange.on((job) => {
        this.#dirty.add(job.jobId);
        this.#flush();
      }),
    );
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    const jobId = jobIdOf(uri);
    const job = this.#jobs.get(jobId);
    return job ? jobDocumentText(job) : `Job ${jobId} is not known to this window (it may have been pruned by the daemon).`;
  }

  dispose(): void {
    this.#flush.cancel();
    this.#sub.dispose();
    this.#changed.dispose();
  }
}
