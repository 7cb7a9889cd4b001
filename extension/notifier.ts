// Actionable notifications about the connection, at most one per disconnect episode (an episode ends when
// a connection succeeds). Never modal, never repeated while the daemon stays away.
import * as vscode from 'vscode';
import type { ConnectionState, DaemonConnection } from './core/connection';
import { toDisposable } from './disposables';

export class ConnectionNotifier implements vscode.Disposable {
  #shownThisEpisode = false;
  #wasConnected = false;
  #expectingStop = false;
  #sub: vscode.Disposable;

  constructor(conn: DaemonConnection) {
    this.#sub = toDisposable(conn.onState.on((s) => this.#onState(s)));
  }

  /** The user stopped the daemon: its going away is no news. */
  expectStop(): void {
    this.#expectingStop = true;
  }

  #onState(s: ConnectionState): void {
    if (s.kind === 'connected') {
      this.#wasConnected = true;
      this.#shownThisEpisode = false;
      this.#expectingStop = false;
      return;
    }
    if (s.kind !== 'disconnected' || this.#shownThisEpisode || this.#expectingStop) return;
    // Quiet at startup when no daemon runs and none was meant to start (the view's welcome says it);
    // speak when a daemon we had went away, an auto-start failed, or the daemon refused us.
    const refused = s.code === 'SW_ERR_PROTOCOL_MISMATCH' || s.code === 'SW_ERR_UNAUTHORIZED' || s.code === 'SW_ERR_FORBIDDEN';
    if (!this.#wasConnected && !s.startFailed && !refused) return;
    this.#shownThisEpisode = true;
    void showUnreachable(s.message);
  }

  dispose(): void {
    this.#sub.dispose();
  }
}

/** "Slotwise daemon not reachable — <why>" with Start Daemon / Show Log. */
export async function showUnreachable(message: string): Promise<void> {
  const choice = await vscode.window.showWarningMessage(`Slotwise daemon not reachable — ${message}`, 'Start Daemon', 'Show Log');
  if (choice === 'Start Daemon') await vscode.commands.executeCommand('slotwise.startDaemon');
  else if (choice === 'Show Log') await vscode.commands.executeCommand('slotwise.showOutput');
}
