// The InlineCompletionItemProvider: VS Code asks at the cursor, InlineCompleter (core/inline-completions.ts)
// debounces, asks the daemon's /infill and returns the ghost text; plus the toggle command.
import * as vscode from 'vscode';
import type { DaemonConnection } from '../core/connection';
import { InlineCompleter, infillWindow, pickCompletionModel } from '../core/inline-completions';
import { COMPLETIONS_SECTION, readCompletionSettings } from '../settings';

export function registerInlineCompletions(conn: DaemonConnection, log: vscode.LogOutputChannel): vscode.Disposable[] {
  let lastError = '';
  const completer = new InlineCompleter({
    fetch: (url, init) => fetch(url, init),
    endpoint: () => conn.endpoint,
    settings: readCompletionSettings,
    model: () => pickCompletionModel(conn.snapshot, readCompletionSettings().model),
    onError: (message) => {
      // Every keystroke would repeat it: log a failure once until it changes.
      if (message !== lastError) log.warn(`inline completion: ${message}`);
      lastError = message;
    },
  });
  const provider: vscode.InlineCompletionItemProvider = {
    async provideInlineCompletionItems(document, position, _context, token) {
      const abort = new AbortController();
      const sub = token.onCancellationRequested(() => abort.abort());
      try {
        const text = await completer.complete({
          session: document.uri.toString(),
          window: infillWindow(document, position),
          signal: abort.signal,
        });
        if (text === undefined || token.isCancellationRequested) return undefined;
        lastError = '';
        return [new vscode.InlineCompletionItem(text, new vscode.Range(position, position))];
      } finally {
        sub.dispose();
      }
    },
  };
  return [
    vscode.languages.registerInlineCompletionItemProvider({ pattern: '**' }, provider),
    vscode.commands.registerCommand('slotwise.toggleInlineCompletions', () => toggleCompletions()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration(COMPLETIONS_SECTION) && !readCompletionSettings().enabled) completer.cancelAll();
    }),
    { dispose: () => completer.cancelAll() },
  ];
}

/** Flips `slotwise.completions.enabled` where it is set (workspace folder, workspace, else user settings). */
async function toggleCompletions(): Promise<void> {
  const c = vscode.workspace.getConfiguration(COMPLETIONS_SECTION);
  const info = c.inspect<boolean>('enabled');
  const target =
    info?.workspaceFolderValue !== undefined
      ? vscode.ConfigurationTarget.WorkspaceFolder
      : info?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
  const next = !c.get<boolean>('enabled', false);
  await c.update('enabled', next, target);
  void vscode.window.setStatusBarMessage(`Slotwise: inline completions ${next ? 'on' : 'off'}`, 3000);
}
