// Start/Stop Daemon, logs, status JSON, benchmark, config.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as vscode from 'vscode';
import { cliEnv, startDaemonWithCli, stopDaemonWithCli } from '../core/daemon-cli';
import { expandHome, resolveConfigPath } from '../../shared/paths';
import { currentStateDir, registerSafe, type Services } from '../services';
import { readSettings } from '../settings';

export function registerDaemonCommands(s: Services): vscode.Disposable[] {
  const { log } = s;
  return [
    registerSafe(log, 'slotwise.startDaemon', async () => {
      if (s.conn.state.kind === 'connected') {
        void vscode.window.showInformationMessage(`Slotwise daemon already running at ${s.conn.state.url}`);
        return;
      }
      const settings = readSettings();
      const stateDir = currentStateDir();
      const url = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Starting the Slotwise daemon…' }, () =>
        startDaemonWithCli(s.cli, { stateDir, configPath: settings.configPath ? expandHome(settings.configPath) : undefined }),
      );
      log.info(`daemon started: ${url}`);
      s.conn.reconnectNow({ allowAutoStart: true });
    }),
    registerSafe(log, 'slotwise.stopDaemon', async () => {
      s.conn.suppressAutoStart();
      s.notifier.expectStop();
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Stopping the Slotwise daemon…' }, async () => {
        if (s.conn.state.kind === 'connected') await s.conn.call('daemon.stop');
        else await stopDaemonWithCli(s.cli, { stateDir: currentStateDir() });
      });
      log.info('daemon stop requested');
    }),
    registerSafe(log, 'slotwise.showOutput', () => log.show(true)),
    registerSafe(log, 'slotwise.showLog', async () => {
      const file = join(currentStateDir(), 'logs', 'daemon.log');
      if (!existsSync(file)) {
        log.show(true);
        void vscode.window.showInformationMessage(`No daemon log at ${file} yet; showing the extension's log.`);
        return;
      }
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
      const editor = await vscode.window.showTextDocument(doc, { preview: true });
      const end = doc.lineAt(doc.lineCount - 1).range.end;
      editor.revealRange(new vscode.Range(end, end));
    }),
    registerSafe(log, 'slotwise.showStatus', async () => {
      const snapshot = await s.conn.call('status.get');
      const doc = await vscode.workspace.openTextDocument({ language: 'json', content: `${JSON.stringify(snapshot, null, 2)}\n` });
      await vscode.window.showTextDocument(doc, { preview: true });
    }),
    registerSafe(log, 'slotwise.runBenchmark', () => {
      const stateDir = currentStateDir();
      const terminal = vscode.window.createTerminal({
        name: 'Slotwise Benchmark',
        shellPath: s.cli.execPath,
        shellArgs: [s.cli.cliPath, 'bench', '--state-dir', stateDir],
        env: { ELECTRON_RUN_AS_NODE: cliEnv(s.cli, stateDir).ELECTRON_RUN_AS_NODE, SLOTWISE_STATE_DIR: stateDir },
      });
      terminal.show();
    }),
    registerSafe(log, 'slotwise.openConfig', async () => {
      // The file the running daemon read (or would have), which a daemon started elsewhere may not share with these settings.
      const file = s.conn.snapshot?.daemon.config?.path ?? configFile(readSettings().configPath);
      if (!existsSync(file)) {
        const choice = await vscode.window.showInformationMessage(`No Slotwise config at ${file}.`, 'Create It');
        if (choice !== 'Create It') return;
        // Validated against the shipped schema by file name (contributes.jsonValidation).
        const example = { models: { coder: { path: '~/models/model.gguf', slots: 4, ctxPerSlot: 4096 } } };
        await vscode.workspace.fs.writeFile(vscode.Uri.file(file), Buffer.from(`${JSON.stringify(example, null, 2)}\n`));
      }
      await vscode.window.showTextDocument(vscode.Uri.file(file));
    }),
  ];
}

/** `slotwise.configPath`, else `$SLOTWISE_CONFIG`, else the XDG default: the daemon's own lookup. */
function configFile(setting: string): string {
  return resolveConfigPath(setting || undefined, process.env);
}
