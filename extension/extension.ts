// activate/deactivate: wiring only. Connecting happens after activation, in the background.
import * as vscode from 'vscode';
import type { Snapshot } from '../shared/protocol';
import { registerDaemonCommands } from './commands/daemon-commands';
import { registerModelCommands } from './commands/model-commands';
import { registerPromptCommands } from './commands/prompt-commands';
import { DaemonConnection, type ConnectionState } from './core/connection';
import { startDaemonWithCli, type CliRuntime } from './core/daemon-cli';
import { locateDaemon } from './core/endpoint';
import { expandHome, resolveStateDir } from '../shared/paths';
import { JobTracker } from './core/job-tracker';
import { toDisposable } from './disposables';
import { JOB_SCHEME, JobDocuments } from './job-documents';
import { ConnectionNotifier } from './notifier';
import { PromptOutputs } from './prompt-output';
import { ENDPOINT_KEYS, readSettings } from './settings';
import { StatusBar } from './status-bar';
import { registerInlineCompletions } from './completions/inline-provider';
import { GpuViewProvider } from './views/gpu-view';
import { JobsTreeProvider } from './views/jobs-tree';
import { SlotsTreeProvider } from './views/slots-tree';

let closing: (() => Promise<void>) | undefined;

/** What `activate` returns (`extension.exports`): read-only state, for tests and other extensions. */
export interface SlotwiseApi {
  connectionState(): ConnectionState['kind'];
  snapshot(): Snapshot | undefined;
}

export function activate(context: vscode.ExtensionContext): SlotwiseApi {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage(); // wall time swells on a busy machine; the CPU time is what activation costs
  const log = vscode.window.createOutputChannel('Slotwise', { log: true });
  const cli: CliRuntime = { execPath: process.execPath, cliPath: context.asAbsolutePath('dist/cli.js'), env: process.env };
  const conn = new DaemonConnection({
    locate: () => locateDaemon(readSettings(), process.env),
    startDaemon: async () => {
      const s = readSettings();
      log.info(`daemon started: ${await startDaemonWithCli(cli, { stateDir: resolveStateDir(s.stateDir || undefined, process.env), configPath: s.configPath ? expandHome(s.configPath) : undefined })}`);
    },
    autoStart: () => readSettings().autoStartDaemon,
    clientName: `vscode ${vscode.version}`,
    log,
  });
  const jobs = new JobTracker(conn, log);
  const [slots, jobsTree, gpu, jobDocs] = [new SlotsTreeProvider(conn), new JobsTreeProvider(jobs), new GpuViewProvider(context.extensionUri, conn), new JobDocuments(jobs)];
  const services = { conn, jobs, log, cli, outputs: new PromptOutputs(jobs, log), notifier: new ConnectionNotifier(conn) };
  context.subscriptions.push(
    log,
    services.outputs,
    services.notifier,
    new StatusBar(conn, jobs),
    slots,
    jobsTree,
    gpu,
    jobDocs,
    vscode.window.createTreeView('slotwise.slots', { treeDataProvider: slots, showCollapseAll: true }),
    vscode.window.registerTreeDataProvider('slotwise.jobs', jobsTree),
    vscode.window.registerWebviewViewProvider(GpuViewProvider.viewType, gpu),
    vscode.workspace.registerTextDocumentContentProvider(JOB_SCHEME, jobDocs),
    ...registerDaemonCommands(services),
    ...registerModelCommands(services),
    ...registerPromptCommands(services),
    ...registerInlineCompletions(conn, log),
    toDisposable(conn.onJobEvent.on((ev) => jobs.handle(ev))),
    toDisposable(conn.onConnected.on(() => void jobs.reattachAll().then(() => jobs.refresh()).catch((err: Error) => log.warn(`jobs after reconnect: ${err.message}`)))),
    toDisposable(conn.onState.on(setConnectionContext)),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (ENDPOINT_KEYS.some((k) => e.affectsConfiguration(k))) conn.reconnectNow({ dropCurrent: true, allowAutoStart: true });
    }),
  );
  closing = () => conn.close();
  setConnectionContext(conn.state);
  setImmediate(() => conn.start());
  const cpu = process.cpuUsage(cpu0);
  log.info(`activated in ${(performance.now() - t0).toFixed(1)} ms, ${((cpu.user + cpu.system) / 1000).toFixed(1)} ms CPU (extension host ${process.versions.node}, ${vscode.env.appName} ${vscode.version})`);
  return { connectionState: () => conn.state.kind, snapshot: () => conn.snapshot };
}

let lastContext: string | undefined;
/** `slotwise.connected` and `slotwise.connectionState` drive menus and the views' welcome content. */
function setConnectionContext(state: ConnectionState): void {
  const kind = state.kind === 'closed' ? 'disconnected' : state.kind;
  if (kind === lastContext) return;
  lastContext = kind;
  void vscode.commands.executeCommand('setContext', 'slotwise.connectionState', kind);
  void vscode.commands.executeCommand('setContext', 'slotwise.connected', kind === 'connected');
}

export function deactivate(): Promise<void> | undefined {
  return closing?.();
}
