// Start/Stop/Restart Model…: from the tree's inline buttons (a model node) or the palette (quick pick).
import * as vscode from 'vscode';
import { SlotwiseError } from '../../shared/errors';
import type { ModelStatus } from '../../shared/protocol';
import { modelPhase, type SlotsTreeNode } from '../core/slots-tree-model';
import { registerSafe, type Services } from '../services';

type Action = 'start' | 'stop' | 'restart';

export function registerModelCommands(s: Services): vscode.Disposable[] {
  const run = (action: Action) => async (arg?: SlotsTreeNode | string) => {
    const model = typeof arg === 'string' ? arg : arg?.model ?? (await pickModel(s, action));
    if (!model) return;
    const verb = { start: 'Starting', stop: 'Stopping', restart: 'Restarting' }[action];
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `${verb} ${model}…` }, () => s.conn.call(`models.${action}`, { model }));
    s.log.info(`models.${action} ${model}`);
  };
  return [
    registerSafe(s.log, 'slotwise.startModel', run('start')),
    registerSafe(s.log, 'slotwise.stopModel', run('stop')),
    registerSafe(s.log, 'slotwise.restartModel', run('restart')),
  ];
}

async function pickModel(s: Services, action: Action): Promise<string | undefined> {
  const models = await s.conn.call('models.list');
  if (models.length === 0) throw new SlotwiseError('SW_ERR_CONFIG', 'no models configured — add one under "models" in the Slotwise config');
  // Offer the ones the action makes sense for first; the rest stay pickable.
  const fits = (m: ModelStatus): boolean => (action === 'start' ? modelPhase(m) === 'down' : modelPhase(m) !== 'down');
  const sorted = [...models.filter(fits), ...models.filter((m) => !fits(m))];
  if (sorted.length === 1) return sorted[0]!.name;
  const pick = await vscode.window.showQuickPick(
    sorted.map((m) => ({ label: m.name, description: modelPhase(m), detail: m.path })),
    { title: `Slotwise: ${action[0]!.toUpperCase()}${action.slice(1)} Model`, placeHolder: 'Model' },
  );
  return pick?.label;
}
