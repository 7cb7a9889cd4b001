// Runs inside a real VS Code extension host (@vscode/test-electron loads this module and calls run()).
// Bundled by test/vscode/extension.vscode.test.ts; the daemon it talks to is started by that test.
import * as assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import * as vscode from 'vscode';
import type { SlotwiseApi } from '../../../extension/extension';

const COMMANDS = [
  'slotwise.startDaemon', 'slotwise.stopDaemon', 'slotwise.startModel', 'slotwise.stopModel', 'slotwise.restartModel', 'slotwise.loadModel', 'slotwise.unloadModel',
  'slotwise.sendPrompt', 'slotwise.cancelPrompt', 'slotwise.showJobs', 'slotwise.showLog', 'slotwise.showStatus', 'slotwise.runBenchmark',
];

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v) return v;
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export async function run(): Promise<void> {
  const ext = vscode.extensions.getExtension<SlotwiseApi>('slotwise.slotwise');
  assert.ok(ext, 'the extension is installed under slotwise.slotwise');
  const t0 = performance.now();
  const api = await ext.activate();
  process.stderr.write(`[vscode-suite] activate() resolved in ${(performance.now() - t0).toFixed(1)} ms\n`);

  const all = await vscode.commands.getCommands(true);
  for (const id of COMMANDS) assert.ok(all.includes(id), `command ${id} is registered`);

  const snap = await until('connected with 4 slots', () => {
    const s = api.snapshot();
    return api.connectionState() === 'connected' && s?.capacity.totalSlots === 4 ? s : undefined;
  });
  assert.equal(snap.models[0]?.name, 'tiny');

  const jobId = await vscode.commands.executeCommand<string | undefined>('slotwise.sendPrompt', 'Once upon a time');
  assert.equal(typeof jobId, 'string', 'Send Prompt returns the job id at once');
  const doc = await until('an untitled editor with the reply', () =>
    vscode.workspace.textDocuments.find((d) => d.isUntitled && d.languageId === 'markdown' && d.getText().length > 10),
  );
  assert.ok(doc.getText().length > 10);

  await vscode.commands.executeCommand('slotwise.stopModel', 'tiny');
  await until('model down', () => api.snapshot()?.models[0]?.instances.every((i) => i.state === 'stopped' || i.state === 'stopping') || undefined);
}
