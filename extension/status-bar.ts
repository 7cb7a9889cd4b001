// The status bar: `$(pulse) busy/total` (plus `$(sparkle)` while inline completions are on) with a per-model tooltip table, and a second item while this
// window has prompts in flight (click: cancel one). Updated synchronously on every snapshot.
import * as vscode from 'vscode';
import type { DaemonConnection } from './core/connection';
import type { JobTracker } from './core/job-tracker';
import { jobsBarText, statusBarView, statusTooltip, type StatusBarView } from './core/status-text';
import { toDisposable } from './disposables';
import { completionsBadge, pickCompletionModel } from './core/inline-completions';
import { COMPLETIONS_SECTION, readCompletionSettings } from './settings';

export class StatusBar implements vscode.Disposable {
  #item: vscode.StatusBarItem;
  #jobsItem: vscode.StatusBarItem;
  /** One MarkdownString for the item's lifetime; its `.value` is updated in place. */
  #tooltip = new vscode.MarkdownString('', true);
  #disposables: vscode.Disposable[] = [];
  #conn: DaemonConnection;
  #jobs: JobTracker;
  #lastJobsText: string | undefined;
  #background: StatusBarView['background'] = 'none';

  constructor(conn: DaemonConnection, jobs: JobTracker) {
    this.#conn = conn;
    this.#jobs = jobs;
    this.#item = vscode.window.createStatusBarItem('slotwise.status', vscode.StatusBarAlignment.Left, 50);
    this.#item.name = 'Slotwise';
    this.#item.command = 'workbench.view.extension.slotwise';
    this.#item.tooltip = this.#tooltip;
    this.#jobsItem = vscode.window.createStatusBarItem('slotwise.jobs', vscode.StatusBarAlignment.Left, 49);
    this.#jobsItem.name = 'Slotwise Prompts';
    this.#jobsItem.command = 'slotwise.cancelPrompt';
    this.#jobsItem.tooltip = 'Slotwise prompts in flight — click to cancel one';
    this.#disposables.push(
      toDisposable(conn.onState.on(() => this.update())),
      toDisposable(conn.onSnapshot.on(() => this.update())),
      toDisposable(jobs.onDidChange.on(() => this.#updateJobs())),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(COMPLETIONS_SECTION)) this.update();
      }),
    );
    this.update();
    this.#item.show();
  }

  update(): void {
    const state = this.#conn.state;
    const snap = this.#conn.snapshot;
    const view = statusBarView(state, snap);
    const completions = readCompletionSettings();
    const badge = completionsBadge(completions, pickCompletionModel(snap, completions.model));
    const text = badge ? `${view.text} ${badge.text}` : view.text;
    if (this.#item.text !== text) this.#item.text = text;
    if (this.#background !== view.background) {
      this.#background = view.background;
      this.#item.backgroundColor = view.background === 'none' ? undefined : new vscode.ThemeColor(`statusBarItem.${view.background}Background`);
    }
    this.#item.accessibilityInformation = { label: view.accessibility };
    const md = badge ? `${statusTooltip(state, snap)}\n\n${badge.tooltip}` : statusTooltip(state, snap);
    if (this.#tooltip.value !== md) {
      this.#tooltip.value = md;
      // Same object again: tells the host the content changed without a new hover (an open hover stays open).
      this.#item.tooltip = this.#tooltip;
    }
  }

  #updateJobs(): void {
    const active = this.#jobs.active();
    const text = jobsBarText(active.length, active.filter((j) => j.state === 'queued').length);
    if (text === this.#lastJobsText) return;
    this.#lastJobsText = text;
    if (text) {
      this.#jobsItem.text = text;
      this.#jobsItem.show();
    } else this.#jobsItem.hide();
  }

  dispose(): void {
    for (const d of this.#disposables) d.dispose();
    this.#item.dispose();
    this.#jobsItem.dispose();
  }
}
