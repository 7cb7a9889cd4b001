// Snapshot → the Models & Slots tree (model → instance → slot) as plain data; the TreeDataProvider only
// maps it to TreeItems. Icons are codicon ids with theme color ids so this stays vscode-free.
import { busySlotsOf, slotHolder, slotTokens } from '../../shared/slots';
import type { InstanceState, InstanceStatus, ModelStatus, SlotStatus, Snapshot } from '../../shared/protocol';
import { formatBytes } from '../../shared/format';
import { loadText } from '../../shared/load-text';
import { placementText } from '../../shared/placement-text';
import { readsText } from '../../shared/chat-content';

export interface IconSpec {
  /** Codicon id, e.g. `circle-filled`, `loading~spin`. */
  id: string;
  /** Theme color id, e.g. `charts.green`. */
  color?: string;
}

interface NodeBase {
  /** Stable across snapshots so expansion and selection survive refreshes. */
  id: string;
  label: string;
  description: string;
  tooltip: string;
  icon: IconSpec;
  /** Drives the inline Start/Stop/Restart and Load/Unload actions (package.json `view/item/context`). */
  contextValue: string;
  expanded: boolean;
}

export interface ModelNode extends NodeBase {
  kind: 'model';
  model: string;
  children: InstanceNode[];
}

export interface InstanceNode extends NodeBase {
  kind: 'instance';
  model: string;
  instance: string;
  children: SlotNode[];
}

export interface SlotNode extends NodeBase {
  kind: 'slot';
  model: string;
  instance: string;
  slot: number;
}

export type SlotsTreeNode = ModelNode | InstanceNode | SlotNode;

/** How a model looks as a whole; `down` when it has no wanted or live instance. */
export type ModelPhase = 'down' | 'loading' | 'ready' | 'degraded' | 'failed' | 'stopping';

export function modelPhase(m: ModelStatus): ModelPhase {
  const live = m.instances.filter((i) => i.state !== 'stopped');
  if (live.length === 0) return m.replicas === 0 ? 'down' : 'loading';
  if (live.every((i) => i.state === 'stopping')) return 'stopping';
  if (live.every((i) => i.state === 'ready')) return 'ready';
  if (live.every((i) => i.state === 'failed')) return 'failed';
  if (live.some((i) => i.state === 'starting' || i.state === 'loading')) return 'loading';
  return 'degraded';
}

export function buildSlotsTree(s: Snapshot, now = Date.now()): ModelNode[] {
  return s.models.map((m) => modelNode(m, now));
}

function modelNode(m: ModelStatus, now: number): ModelNode {
  const phase = modelPhase(m);
  const ready = m.instances.filter((i) => i.state === 'ready');
  const slots = ready.flatMap((i) => i.slots);
  // /slots lags what the daemon just sent; the count agrees with the status bar (capacity.busySlots).
  const busy = ready.reduce((n, i) => n + busySlotsOf(i, m.slotsPerInstance), 0);
  // An on-demand model reads `unloaded (idle)` etc. rather than `down` (daemons that report `load`).
  // A loading model shows llama-server's progress (`loading 42 %`, `loading · warmup`).
  const phaseText = (phase === 'down' && m.load?.state === 'unloaded') || (phase === 'loading' && m.load?.state === 'loading') ? loadText(m.load) : phase;
  const parts: string[] = [phaseText];
  if (phase !== 'down' && slots.length > 0) parts.push(`${busy}/${slots.length} busy`);
  if (m.queue.waiting > 0) parts.push(`${m.queue.waiting} queued (${(m.queue.oldestWaitMs / 1000).toFixed(1)} s)`);
  const tps = m.instances.reduce((sum, i) => sum + (i.tokensPerSecond ?? 0), 0);
  if (tps > 0) parts.push(`${tps.toFixed(0)} tok/s`);
  // What a replica may hold: its buffers (else the plan) and its host prompt cache at its limit.
  if (m.memory) parts.push(formatBytes((m.memory.actualBytes ?? m.memory.planBytes) + (m.memory.promptCacheBytes ?? 0)));
  const offload = ready.find((i) => i.offload)?.offload;
  const tooltip = [
    `${m.name} — ${phaseText}`,
    m.load?.error?.message ?? '',
    m.path,
    `${m.slotsPerInstance} slots × ${m.ctxPerSlot} ctx · gpuLayers ${m.gpuLayers} · replicas ${m.replicas}`,
    m.info?.fileBytes ? `${m.info.architecture ?? 'model'} · ${formatBytes(m.info.fileBytes)}${m.info.modalities?.length ? ` · reads ${readsText(m.info.modalities)}` : ''}` : '',
    offload ? `placement: ${placementText(offload)}` : '',
    m.draftTokens && m.draftAcceptance !== undefined ? `speculative decoding: ${Math.round(m.draftAcceptance * 100)} % of ${m.draftTokens.drafted} drafted tokens accepted` : '',
    m.memory ? `memory: plan ${formatBytes(m.memory.planBytes)}${m.memory.actualBytes !== undefined ? ` · actual ${formatBytes(m.memory.actualBytes)}` : ''}${m.memory.promptCacheBytes ? ` · prompt cache up to ${formatBytes(m.memory.promptCacheBytes)}` : ''}` : '',
  ].filter(Boolean);
  return {
    kind: 'model',
    id: `model:${m.name}`,
    model: m.name,
    label: m.name,
    description: parts.join(' · '),
    tooltip: tooltip.join('\n'),
    icon: phaseIcon(phase),
    contextValue: modelContext(m, phase),
    expanded: true,
    // A stopped instance has nothing to show (no process, no slots); its failures show as `failed`.
    children: m.instances.filter((i) => i.state !== 'stopped').map((i) => instanceNode(m, i, now)),
  };
}

/**
 * Which actions a model row offers: on daemons that report the load state, `unloaded` (Load) and
 * `ready` (Unload, Restart); else, and while loading, failing or stopping, `down` (Start) and `up`
 * (Stop, Restart).
 */
function modelContext(m: ModelStatus, phase: ModelPhase): string {
  if (phase === 'down') return m.load?.state === 'unloaded' ? 'slotwise.model.unloaded' : 'slotwise.model.down';
  return phase === 'ready' && m.load?.state === 'ready' ? 'slotwise.model.ready' : 'slotwise.model.up';
}

function instanceNode(m: ModelStatus, i: InstanceStatus, now: number): InstanceNode {
  const parts: string[] = [stateText(i, now)];
  if (i.port) parts.push(`:${i.port}`);
  if (i.tokensPerSecond) parts.push(`${i.tokensPerSecond.toFixed(0)} tok/s`);
  if (i.restarts) parts.push(`${i.restarts} restart${i.restarts === 1 ? '' : 's'}`);
  const tooltip = [`${i.id} — ${i.state}${i.pid ? ` · pid ${i.pid}` : ''}`];
  if (i.lastError) tooltip.push(i.lastError);
  if (i.usage) tooltip.push(`CPU ${i.usage.cpuPct.toFixed(0)}% · RSS ${formatBytes(i.usage.rssBytes)}${i.usage.vramBytes ? ` · VRAM ${formatBytes(i.usage.vramBytes)}` : ''}`);
  if (i.lastLogLines?.length) tooltip.push('', ...i.lastLogLines.slice(-5));
  return {
    kind: 'instance',
    id: `instance:${i.id}`,
    model: m.name,
    instance: i.id,
    label: i.id,
    description: parts.join(' · '),
    tooltip: tooltip.join('\n'),
    icon: instanceIcon(i.state),
    contextValue: `slotwise.instance.${i.state}`,
    expanded: true,
    children: i.state === 'ready' ? i.slots.map((sl) => slotNode(m, i, sl)) : [],
  };
}

function slotNode(m: ModelStatus, i: InstanceStatus, sl: SlotStatus): SlotNode {
  const holder = slotHolder(sl);
  const tooltip = sl.foreign
    ? `slot ${sl.id} busy: a client is talking to llama-server directly, not through Slotwise${sl.nCtx ? ` · ctx ${sl.nCtx}` : ''}`
    : sl.busy
      ? `slot ${sl.id} busy${sl.requestId ? ` · ${sl.source === 'ws' ? 'job' : 'request'} ${sl.requestId}` : ''} · task ${sl.taskId ?? '?'} · prompt ${sl.nPromptTokens ?? 0} tok · ${slotTokens(sl)} generated${sl.nCtx ? ` · ctx ${sl.nCtx}` : ''}` +
        (sl.next ? `\nnext: request ${sl.next}, already sent to llama-server, starts when this one ends (still counted as queued)` : '')
      : `slot ${sl.id} idle${sl.nCtx ? ` · ctx ${sl.nCtx}` : ''}`;
  return {
    kind: 'slot',
    id: `slot:${i.id}:${sl.id}`,
    model: m.name,
    instance: i.id,
    slot: sl.id,
    label: `slot ${sl.id}`,
    description: sl.foreign ? 'busy · foreign client' : sl.busy ? ['busy', ...(holder ? [holder] : []), `${slotTokens(sl)} tok`, ...(sl.next ? [`next ${sl.next.slice(0, 8)}`] : [])].join(' · ') : 'idle',
    tooltip,
    icon: sl.busy ? { id: 'circle-filled', color: 'charts.yellow' } : { id: 'circle-outline' },
    contextValue: sl.busy ? 'slotwise.slot.busy' : 'slotwise.slot.idle',
    expanded: false,
  };
}

function stateText(i: InstanceStatus, now: number): string {
  if (i.state === 'backoff' && i.nextRestartAt) return `backoff · retry in ${Math.max(0, Math.ceil((i.nextRestartAt - now) / 1000))} s`;
  if ((i.state === 'failed' || i.state === 'crashed' || i.state === 'stalled') && i.lastError) return `${i.state}: ${i.lastError}`;
  return i.state;
}

function phaseIcon(phase: ModelPhase): IconSpec {
  switch (phase) {
    case 'ready':
      return { id: 'pass-filled', color: 'charts.green' };
    case 'loading':
    case 'stopping':
      return { id: 'loading~spin' };
    case 'degraded':
      return { id: 'warning', color: 'charts.yellow' };
    case 'failed':
      return { id: 'error', color: 'errorForeground' };
    case 'down':
      return { id: 'circle-slash', color: 'disabledForeground' };
  }
}

export function instanceIcon(state: InstanceState): IconSpec {
  switch (state) {
    case 'ready':
      return { id: 'vm-running', color: 'charts.green' };
    case 'starting':
    case 'loading':
    case 'stopping':
      return { id: 'loading~spin' };
    case 'backoff':
      return { id: 'history', color: 'charts.yellow' };
    case 'stalled':
      return { id: 'debug-pause', color: 'errorForeground' };
    case 'crashed':
    case 'failed':
      return { id: 'error', color: 'errorForeground' };
    case 'stopped':
      return { id: 'vm-outline', color: 'disabledForeground' };
  }
}
