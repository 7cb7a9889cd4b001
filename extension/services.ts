// What the command modules share; built once in activate().
import * as vscode from 'vscode';
import { toSlotwiseError } from '../shared/errors';
import type { DaemonConnection } from './core/connection';
import type { CliRuntime } from './core/daemon-cli';
import { resolveStateDir } from '../shared/paths';
import type { JobTracker } from './core/job-tracker';
import type { ConnectionNotifier } from './notifier';
import { showUnreachable } from './notifier';
import type { PromptOutputs } from './prompt-output';
import { readSettings } from './settings';

export interface Services {
  conn: DaemonConnection;
  jobs: JobTracker;
  log: vscode.LogOutputChannel;
  outputs: PromptOutputs;
  notifier: ConnectionNotifier;
  cli: CliRuntime;
}

/** The state dir the settings and environment name now. */
export function currentStateDir(): string {
  return resolveStateDir(readSettings().stateDir || undefined, process.env);
}

/** Registers a command whose failures become one actionable notification (never a throw into the host). */
export function registerSafe(log: vscode.LogOutputChannel, id: string, fn: (...args: never[]) => unknown): vscode.Disposable {
  return vscode.commands.registerCommand(id, async (...args: never[]) => {
    try {
      return await fn(...args);
    } catch (err) {
      const e = toSlotwiseError(err);
      log.error(`${id}: ${e.code}: ${e.message}${e.detail ? `\n${e.detail}` : ''}`);
      if (e.code === 'SW_ERR_DAEMON_UNREACHABLE') void showUnreachable(e.message);
      else void showError(e.message);
      return undefined;
    }
  });
}

async function showError(message: string): Promise<void> {
  if ((await vscode.window.showErrorMessage(`Slotwise: ${message}`, 'Show Log')) === 'Show Log') {
    await vscode.commands.executeCommand('slotwise.showOutput');
  }
}
