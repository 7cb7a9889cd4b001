// The status bar item's text, background and tooltip for a connection state + snapshot. Pure.
import { busySlotsOf } from '../../shared/slots';
import type { ModelStatus, Snapshot } from '../../shared/protocol';
import type { ConnectionState } from './connection';
import { formatBytes } from '../../shared/format';
import { escapeMarkdown } from './escape';
import { modelPhase } from './slots-tree-model';

export interface StatusBarView {
  /** With codicons, e.g. `$(pulse) 3/8`. */
  text: string;
  background: 'none' | 'warning' | 'error';
  /** For screen readers. */
  accessibility: string;
}

/** `$(pulse) busy/total` over all models; `$(loading~spin)` while a model loads; warning while queued; error when down. */
export function statusBarView(state: ConnectionState, snap: Snapshot | undefined): StatusBarView {
  if (state.kind === 'disconnected' || state.kind === 'closed') {
    return { text: '$(debug-disconnect) Slotwise: disconnected', background: 'error', accessibility: 'Slotwise: daemon disconnected' };
  }
  if (state.kind === 'connecting' || !snap) {
    const what = state.kind === 'connecting' && state.starting ? 'starting daemon' : 'connecting';
    return { text: `$(loading~spin) Slotwise: ${what}`, background: 'none', accessibility: `Slotwise: ${what}` };
  }
  const { busySlots, totalSlots, queued } = snap.capacity;
  const loading = snap.models.some((m) => m.instances.some((i) => i.state === 'starting' || i.state === 'loading'));
  const icon = loading ? '$(loading~spin)' : '$(pulse)';
  const queueText = queued > 0 ? ` · ${queued} queued` : '';
  return {
    text: `${icon} ${busySlots}/${totalSlots}${queueText}`,
    background: queued > 0 ? 'warning' : 'none',
    accessibility: `Slotwise: ${busySlots} of ${totalSlots} slots busy${queued ? `, ${queued} queued` : ''}${loading ? ', a model is loading' : ''}`,
  };
}

/** The tooltip as Markdown: a header line, then one table per model (slots, queue, tokens/s, GPU or CPU). */
export function statusTooltip(state: ConnectionState, snap: Snapshot | undefined): string {
  if (state.kind === 'disconnected') {
    return `**Slotwise: disconnected** — ${escapeMarkdown(state.message)}\n\nRetrying in ${(state.retryInMs / 1000).toFixed(1)} s. Run **Slotwise: Start Daemon** to start one.`;
  }
  if (state.kind === 'closed') return '**Slotwise** — closed';
  if (state.kind === 'connecting' || !snap) return `**Slotwise** — ${state.kind === 'connecting' && state.starting ? 'starting the daemon' : 'connecting to the daemon'}…`;
  const cap = snap.capacity;
  const lines = [`**Slotwise** ${escapeMarkdown(snap.version)} — **${cap.verdict}**: ${escapeMarkdown(cap.reason)}`, ''];
  if (snap.models.length === 0) {
    const where = snap.daemon.config ? ` in ${escapeMarkdown(snap.daemon.config.path)}` : '';
    lines.push(`No models configured: add one under "models"${where} (**Slotwise: Open Config**) and restart the daemon.`, '');
  }
  const hasGpu = snap.gpus.length > 0;
  for (const m of snap.models) {
    lines.push(`**${escapeMarkdown(m.name)}** · ${modelPhase(m)}`, '');
    lines.push(`| Slots | Queue | Tokens/s | ${hasGpu ? 'GPU util · VRAM' : 'CPU · RSS'} |`, '|:--|:--|:--|:--|');
    lines.push(`| ${slotsCell(m)} | ${queueCell(m)} | ${tpsCell(m)} | ${hasGpu ? gpuCell(m, snap) : cpuCell(m)} |`, '');
  }
  lines.push('_Click to open the Slotwise view_');
  return lines.join('\n');
}

function slotsCell(m: ModelStatus): string {
  const ready = m.instances.filter((i) => i.state === 'ready');
  const total = ready.reduce((n, i) => n + i.slots.length, 0);
  if (total === 0) return '—';
  return `${ready.reduce((n, i) => n + busySlotsOf(i, m.slotsPerInstance), 0)}/${total} busy`;
}

function queueCell(m: ModelStatus): string {
  if (m.queue.waiting === 0) return '0';
  const by = m.queue.byClass;
  const classes = by && by.background > 0 ? ` · ${by.interactive} interactive, ${by.background} background` : '';
  return `${m.queue.waiting} (oldest ${(m.queue.oldestWaitMs / 1000).toFixed(1)} s${classes})`;
}

function tpsCell(m: ModelStatus): string {
  const known = m.instances.filter((i) => i.tokensPerSecond !== undefined);
  return known.length ? known.reduce((s, i) => s + (i.tokensPerSecond ?? 0), 0).toFixed(1) : '—';
}

function gpuCell(m: ModelStatus, snap: Snapshot): string {
  const util = Math.max(...snap.gpus.map((g) => g.utilizationPct));
  const vram = m.instances.reduce((s, i) => s + (i.usage?.vramBytes ?? 0), 0);
  return `${util}%${vram ? ` · ${formatBytes(vram)}` : ''}`;
}

function cpuCell(m: ModelStatus): string {
  const used = m.instances.filter((i) => i.usage);
  if (!used.length) return '—';
  const cpu = used.reduce((s, i) => s + (i.usage?.cpuPct ?? 0), 0);
  const rss = used.reduce((s, i) => s + (i.usage?.rssBytes ?? 0), 0);
  return `${cpu.toFixed(0)}% · ${formatBytes(rss)}`;
}

/** The second status bar item while this window has prompts in flight. */
export function jobsBarText(active: number, queued: number): string | undefined {
  if (active === 0) return undefined;
  return `$(sync~spin) ${active} prompt${active === 1 ? '' : 's'}${queued ? ` (${queued} queued)` : ''}`;
}
