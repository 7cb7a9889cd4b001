// The GPU view's browser script: renders what the extension host sends; talks to nothing else.
import { renderGpuView } from '../core/gpu-render';
import type { FromWebview, ToWebview } from '../core/gpu-view-model';

interface VsCodeApi {
  postMessage(msg: FromWebview): void;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const root = document.getElementById('root');

window.addEventListener('message', (event: MessageEvent<ToWebview>) => {
  if (root && event.data?.type === 'update') root.innerHTML = renderGpuView(event.data.model);
});

root?.addEventListener('click', (event) => {
  const button = (event.target as Element | null)?.closest('[data-command]');
  const command = button?.getAttribute('data-command');
  if (command === 'startDaemon' || command === 'showLog') vscode.postMessage({ type: 'command', command });
});

vscode.postMessage({ type: 'ready' });
