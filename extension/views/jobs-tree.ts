// Jobs: prompts running and finished (this window's and the daemon's list); click opens the text.
import * as vscode from 'vscode';
import type { JobTracker } from '../core/job-tracker';
import { buildJobRows, type JobRow } from '../core/jobs-tree-model';
import { throttle, toDisposable } from '../disposables';
import { themeIcon } from '../icons';
import { TREE_REFRESH_MS } from './tree-refresh';

export class JobsTreeProvider implements vscode.TreeDataProvider<JobRow>, vscode.Disposable {
  #changed = new vscode.EventEmitter<JobRow | undefined>();
  readonly onDidChangeTreeData = this.#changed.event;
  #jobs: JobTracker;
  #sub: vscode.Disposable;
  #refresh = throttle(() => this.#changed.fire(undefined), TREE_REFRESH_MS); // tree-refresh.ts

  constructor(jobs: JobTracker) {
    this.#jobs = jobs;
    this.#sub = toDisposable(jobs.onDidChange.on(() => this.#refresh()));
  }

  getChildren(row?: JobRow): JobRow[] {
    return row ? [] : buildJobRows(this.#jobs.list());
  }

  getTreeItem(row: JobRow): vscode.TreeItem {
    const item = new vscode.TreeItem(row.label, vscode.TreeItemCollapsibleState.None);
    item.id = row.id;
    item.description = row.description;
    item.tooltip = row.tooltip;
    item.iconPath = themeIcon(row.icon);
    item.contextValue = row.contextValue;
    item.command = { command: 'slotwise.openJob', title: 'Open Job', arguments: [row.jobId] };
    return item;
  }

  dispose(): void {
    this.#refresh.cancel();
    this.#sub.dispose();
    this.#changed.dispose();
  }
}
