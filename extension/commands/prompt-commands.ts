// Send Prompt (returns once submitted; the reply streams into an editor), Ask About Image (a picture to
// a model with a projector, from the palette or an image's context menu), Cancel Prompt…, Jobs.
import * as vscode from 'vscode';
import { SlotwiseError } from '../../shared/errors';
import type { PromptParams } from '../../shared/protocol';
import { modelSlots } from '../../shared/slots';
import { isFinished } from '../core/job-tracker';
import type { JobRow } from '../core/jobs-tree-model';
import { modelPhase } from '../core/slots-tree-model';
import { imagePromptParams, noVisionModel, visionModels } from '../core/vision';
import { IMAGE_EXTENSIONS } from '../../shared/media-data';
import { jobUri } from '../job-documents';
import { registerSafe, type Services } from '../services';
import { readSettings } from '../settings';

export function registerPromptCommands(s: Services): vscode.Disposable[] {
  return [
    registerSafe(s.log, 'slotwise.sendPrompt', async (arg?: string) => {
      const text = typeof arg === 'string' ? arg : await promptText();
      if (!text) return;
      const model = await pickPromptModel(s);
      if (model === null) return;
      const settings = readSettings();
      const params: PromptParams = { maxTokens: settings.maxTokens, temperature: settings.temperature };
      if (model) params.model = model;
      if (settings.promptFormat === 'chat') params.messages = [{ role: 'user', content: text }];
      else params.prompt = text;
      const job = await s.jobs.submit(params);
      s.log.info(`submitted job ${job.jobId} to ${model || 'the default model'}`);
      await s.outputs.open(job, settings.promptOutput);
      return job.jobId;
    }),
    registerSafe(s.log, 'slotwise.askAboutImage', async (arg?: vscode.Uri) => {
      const uri = arg instanceof vscode.Uri ? arg : (await vscode.window.showOpenDialog({ title: 'Slotwise: Ask About Image', canSelectMany: false, filters: { Images: IMAGE_EXTENSIONS } }))?.[0];
      if (!uri) return;
      const snap = s.conn.snapshot ?? (await s.conn.call('status.get'));
      const models = visionModels(snap.models);
      if (models.length === 0) throw noVisionModel();
      const model = models.length === 1 ? models[0] : (await vscode.window.showQuickPick(models, { title: 'Slotwise: Ask About Image', placeHolder: 'Model' }));
      if (!model) return;
      const question = await vscode.window.showInputBox({ title: 'Slotwise: Ask About Image', prompt: `About ${vscode.workspace.asRelativePath(uri)}`, value: 'Describe this image.', ignoreFocusOut: true });
      if (!question?.trim()) return;
      const settings = readSettings();
      const params = imagePromptParams(await vscode.workspace.fs.readFile(uri), vscode.workspace.asRelativePath(uri), question, { model, maxTokens: settings.maxTokens, temperature: settings.temperature });
      const job = await s.jobs.submit(params);
      s.log.info(`submitted job ${job.jobId} about ${uri.fsPath} to ${model}`);
      await s.outputs.open(job, settings.promptOutput);
      return job.jobId;
    }),
    registerSafe(s.log, 'slotwise.cancelPrompt', async (arg?: JobRow | string) => {
      const jobId = typeof arg === 'string' ? arg : arg?.jobId ?? (await pickActiveJob(s));
      if (!jobId) return;
      await s.jobs.cancel(jobId);
      s.log.info(`cancelled job ${jobId}`);
    }),
    registerSafe(s.log, 'slotwise.showJobs', async () => {
      await vscode.commands.executeCommand('slotwise.jobs.focus');
      if (s.conn.state.kind === 'connected') await s.jobs.refresh();
    }),
    registerSafe(s.log, 'slotwise.refreshJobs', () => s.jobs.refresh()),
    registerSafe(s.log, 'slotwise.openJob', async (arg?: JobRow | string) => {
      const jobId = typeof arg === 'string' ? arg : arg?.jobId;
      if (!jobId) return;
      const job = s.jobs.get(jobId);
      // A job this window does not follow yet (another window's, the CLI's): attach to replay its text.
      if (job && !job.followed && s.conn.state.kind === 'connected') await s.jobs.follow(jobId);
      await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(jobUri(jobId, s.jobs.get(jobId)?.title)), { preview: true });
    }),
  ];
}

/** The selection of the active editor, else an input box. */
async function promptText(): Promise<string | undefined> {
  const editor = vscode.window.activeTextEditor;
  const selected = editor && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : '';
  if (selected.trim()) return selected;
  const typed = await vscode.window.showInputBox({ title: 'Slotwise: Send Prompt', prompt: 'Prompt to send (the reply opens in a new editor)', ignoreFocusOut: true });
  return typed?.trim() ? typed : undefined;
}

/** '' = the daemon's default (one model), a name, or null when the user dismissed the pick. */
async function pickPromptModel(s: Services): Promise<string | null> {
  const snap = s.conn.snapshot ?? (await s.conn.call('status.get'));
  const models = snap.models;
  if (models.length === 0) throw new SlotwiseError('SW_ERR_CONFIG', 'no models configured — add one under "models" in the Slotwise config');
  if (models.length === 1) return models[0]!.name;
  const rank = (p: string): number => (p === 'ready' ? 0 : p === 'down' ? 2 : 1);
  const items = [...models]
    .sort((a, b) => rank(modelPhase(a)) - rank(modelPhase(b)))
    .map((m) => {
      const slots = modelSlots(m); // the one busy count (shared/slots.ts), as the status bar shows it
      return { label: m.name, description: `${modelPhase(m)}${slots.total ? ` · ${slots.busy}/${slots.total} busy` : ''}${m.queue.waiting ? ` · ${m.queue.waiting} queued` : ''}` };
    });
  const pick = await vscode.window.showQuickPick(items, { title: 'Slotwise: Send Prompt', placeHolder: 'Model' });
  return pick ? pick.label : null;
}

async function pickActiveJob(s: Services): Promise<string | undefined> {
  if (s.conn.state.kind === 'connected') await s.jobs.refresh();
  const active = s.jobs.list().filter((j) => !isFinished(j.state));
  if (active.length === 0) {
    void vscode.window.showInformationMessage('Slotwise: no prompt is running.');
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(
    active.map((j) => ({ label: j.title, description: `${j.model} · ${j.state}${j.lastSeq ? ` · ${j.lastSeq} deltas` : ''}`, jobId: j.jobId })),
    { title: 'Slotwise: Cancel Prompt', placeHolder: 'Prompt to cancel' },
  );
  return pick?.jobId;
}
