// The GPU webview view. The host keeps 60 s of samples and sends a ready-made view model; the webview
// renders it and can only ask for two commands. While visible it re-sends once a second so the
// sparklines move even when the daemon pushes nothing (it pushes only on change).
import { getRandomValues } from 'node:crypto';
import * as vscode from 'vscode';
import type { ConnectionState, DaemonConnection } from '../core/connection';
import { buildGpuViewModel, recordSnapshot, type FromWebview, type ToWebview } from '../core/gpu-view-model';
import { SampleHistory } from '../core/sample-history';
import { gpuShellHtml, makeNonce } from '../core/webview-shell';
import { toDisposable } from '../disposables';

export class GpuViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewType = 'slotwise.gpu';
  #extensionUri: vscode.Uri;
  #conn: DaemonConnection;
  #history = new SampleHistory();
  #view: vscode.WebviewView | undefined;
  #viewSubs: vscode.Disposable[] = [];
  #subs: vscode.Disposable[];
  #ticker: ReturnType<typeof setInterval> | undefined;

  constructor(extensionUri: vscode.Uri, conn: DaemonConnection) {
    this.#extensionUri = extensionUri;
    this.#conn = conn;
    this.#subs = [
      toDisposable(
        conn.onSnapshot.on((s) => {
          recordSnapshot(this.#history, s, Date.now());
          this.#post();
        }),
      ),
      toDisposable(conn.onState.on(() => this.#post())),
    ];
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.#disposeView();
    this.#view = view;
    const scripts = vscode.Uri.joinPath(this.#extensionUri, 'dist', 'webview');
    view.webview.options = { enableScripts: true, localResourceRoots: [scripts] };
    view.webview.html = gpuShellHtml({
      cspSource: view.webview.cspSource,
      nonce: makeNonce((n) => getRandomValues(new Uint8Array(n))),
      scriptUri: view.webview.asWebviewUri(vscode.Uri.joinPath(scripts, 'gpu.js')).toString(),
    });
    this.#viewSubs.push(
      view.webview.onDidReceiveMessage((msg: FromWebview) => this.#onMessage(msg)),
      view.onDidChangeVisibility(() => this.#syncTicker()),
      view.onDidDispose(() => this.#disposeView()),
    );
    this.#syncTicker();
  }

  #onMessage(msg: FromWebview): void {
    if (msg?.type === 'ready') this.#post();
    else if (msg?.type === 'command' && (msg.command === 'startDaemon' || msg.command === 'showLog')) {
      void vscode.commands.executeCommand(msg.command === 'startDaemon' ? 'slotwise.startDaemon' : 'slotwise.showOutput');
    }
  }

  #syncTicker(): void {
    const want = this.#view?.visible ?? false;
    if (want && !this.#ticker) this.#ticker = setInterval(() => this.#post(), 1000);
    if (!want && this.#ticker) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
    }
    if (want) this.#post();
  }

  #post(): void {
    const view = this.#view;
    if (!view?.visible) return;
    const msg: ToWebview = { type: 'update', model: buildGpuViewModel(viewStatus(this.#conn.state), this.#conn.snapshot, this.#history, Date.now()) };
    void view.webview.postMessage(msg);
  }

  #disposeView(): void {
    for (const d of this.#viewSubs) d.dispose();
    this.#viewSubs = [];
    this.#view = undefined;
    this.#syncTicker();
  }

  dispose(): void {
    this.#disposeView();
    for (const s of this.#subs) s.dispose();
  }
}

function viewStatus(state: ConnectionState): 'connected' | 'connecting' | 'disconnected' {
  return state.kind === 'connected' ? 'connected' : state.kind === 'connecting' ? 'connecting' : 'disconnected';
}
