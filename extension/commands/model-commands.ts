// Start/Stop/Restart and Load/Unload Model…: from the tree's inline buttons (a model node) or the palette
// (quick pick). Load and Unload are the same daemon calls as Start and Stop (`models.start` runs the
// loader's memory check and eviction, `models.stop`), named as the tree names a model's state on
// daemons that report it (`unloaded` / `ready`).
import * as vscode from 'vscode';
import { SlotwiseError } from '../../shared/errors';
import type { ModelStatus } from '../../shared/protocol';
import { modelPhase, type SlotsTreeNode } from '../core/slots-tree-model';
import { registerSafe, type Services } from '../services';

type Action = 'start' | 'stop' | 'restart' | 'load' | 'unload';

const RPC = { start: 'models.start', stop: 'models.stop', restart: 'models.restart', load: 'models.start', unload: 'models.stop' } as const;
const VERB = { start: 'Starting', stop: 'Stopping', restart: 'Restarting', load: 'Loading', unload: 'Unloading' } as const;

export function registerModelCommands(s: Services): vscode.Disposable[] {
  const run = (action: Action) => async (arg?: SlotsTreeNode | string) => {
    const model = typeof arg === 'string' ? arg : arg?.model ?? (await pickModel(s, action));
    if (!model) return;
    await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `${VERB[action]} ${model}…` }, () => s.conn.call(RPC[action], { model }));
    s.log.info(`${RPC[action]} ${model}`);
  };
  return [
    registerSafe(s.log, 'slotwise.startModel', run('start')),
    registerSafe(s.log, 'slotwise.stopModel', run('stop')),
    registerSafe(s.log, 'slotwise.restartModel', run('restart')),
    registerSafe(s.log, 'slotwise.loadModel', run('load')),
    registerSafe(s.log, 'slotwise.unloadModel', run('unload')),
  ];
}

async function pickModel(s: Services, action: Action): Promise<string | undefined> {
  const models = await s.conn.call('models.list');
  if (models.length === 0) throw new SlotwiseError('SW_ERR_CONFIG', 'no models configured — add one under "models" in the Slotwise config');
  // Offer the ones the action makes sense for first; the rest stay pickable.
  const up = action === 'start' || action === 'load';
  const fits = (m: ModelStatus): boolean => (up ? modelPhase(m) === 'down' : modelPhase(m) !== 'down');
  const sorted = [...models.filter(fits), ...models.filter((m) => !fits(m))];
  if (sorted.length === 1) return sorted[0]!.name;
  const pick = await vscode.window.showQuickPick(
    sorted.map((m) => ({ label: m.name, description: modelPhase(m), detail: m.path })),
    { title: `Slotwise: ${action[0]!.toUpperCase()}${action.slice(1)} Model`, placeHolder: 'Model' },
  );
  return pick?.label;
}
