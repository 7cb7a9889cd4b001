// Renders a status snapshot as the text table of `slotwise status` and the demo. Pure: snapshot in, lines out.
import { formatBytes } from '../../shared/format';
import { busySlotsOf, slotHolder, slotTokens } from '../../shared/slots';
import { loadText } from '../../shared/load-text';
import { placementText } from '../../shared/placement-text';
import { readsText } from '../../shared/chat-content';
import type { InstanceStatus, ModelStatus, SlotStatus, Snapshot } from '../../shared/protocol';

export interface RenderOptions {
  /** Show one line per slot under each instance. */
  slots?: boolean;
  color?: boolean;
  now?: number;
}

export function renderStatus(s: Snapshot, opts: RenderOptions = {}): string {
  const c = colors(opts.color ?? false);
  const now = opts.now ?? Date.now();
  const lines: string[] = [];
  lines.push(`${c.bold('Slotwise')} ${s.version} · ${s.daemon.url} · pid ${s.daemon.pid} · up ${duration(s.daemon.uptimeMs)}`);
  const cap = s.capacity;
  const verdictColor = cap.verdict === 'saturated' || cap.verdict === 'down' ? c.red : cap.verdict === 'busy' ? c.yellow : c.green;
  lines.push(`Capacity: ${verdictColor(cap.verdict)} · ${cap.busySlots}/${cap.totalSlots} slots busy · ${cap.queued} queued — ${cap.reason}`);
  for (const g of s.gpus) {
    lines.push(`GPU ${g.index} ${g.name}: ${g.utilizationPct}% util · ${g.memoryUsedMiB}/${g.memoryTotalMiB} MiB${g.temperatureC !== undefined ? ` · ${g.temperatureC}°C` : ''}`);
  }
  for (const w of s.warnings) lines.push(c.yellow(`warning: ${w}`));
  if (s.models.length === 0) {
    lines.push('', ...noModels(s.daemon.config));
    return lines.join('\n');
  }
  const header = ['MODEL', 'INSTANCE', 'STATE', 'PID', 'PORT', 'SLOTS', 'QUEUE', 'TOK/S', 'RESTARTS'];
  const rows: string[][] = [];
  const notes: (string | undefined)[] = [];
  for (const m of s.models) {
    if (m.instances.length === 0) {
      rows.push([m.name, '-', emptyState(m), '', '', `${m.slotsPerInstance} per instance`, queueText(m), '', '']);
      notes.push(m.load?.error ? `    ↳ ${m.load.error.message}` : undefined);
      continue;
    }
    for (const [i, inst] of m.instances.entries()) {
      rows.push([
        i === 0 ? m.name : '',
        inst.id,
        // The model's load (`loading 42 %`) on its first row while no replica is ready: it is the furthest replica's.
        i === 0 && m.load?.state === 'loading' && (inst.state === 'starting' || inst.state === 'loading') ? loadText(m.load) : stateText(inst, now),
        inst.pid?.toString() ?? '',
        inst.port?.toString() ?? '',
        slotBar(inst, m),
        i === 0 ? queueText(m) : '',
        inst.tokensPerSecond !== undefined ? inst.tokensPerSecond.toFixed(1) : '',
        String(inst.restarts),
      ]);
      notes.push(instanceNote(inst, opts.slots ?? false));
    }
  }
  const widths = header.map((h, col) => Math.max(h.length, ...rows.map((r) => r[col]!.length)));
  const fmt = (r: string[]): string => r.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd();
  lines.push('', c.bold(fmt(header)));
  rows.forEach((r, i) => {
    const colored = fmt(r).replace(/\b(ready|failed|crashed|stalled|backoff|loading|starting)\b/, (st) => stateColor(c, st)(st));
    lines.push(colored);
    const note = notes[i];
    if (note) lines.push(note);
  });
  lines.push('');
  for (const m of s.models) lines.push(c.dim(placementLine(m)));
  return lines.join('\n');
}

/** What the model is and where it sits: GGUF facts before launch, llama-server's placement after. */
export function placementLine(m: ModelStatus): string {
  const parts = [m.name];
  if (m.info) {
    parts.push(`${m.info.architecture ?? '?'}, ${m.info.layers ?? '?'} layers, ${(m.info.fileBytes / 1e6).toFixed(1)} MB${m.info.modalities?.length ? `, reads ${readsText(m.info.modalities)}` : ''}`);
  }
  parts.push(`${m.slotsPerInstance} slots × ${m.ctxPerSlot} ctx`);
  const offload = m.instances.find((i) => i.offload)?.offload;
  let gpu = `gpu layers ${m.gpuLayers}`;
  if (offload) gpu += ` → ${placementText(offload)}`;
  parts.push(gpu);
  if (m.memory) {
    parts.push(`plan ${formatBytes(m.memory.planBytes)}`);
    if (m.memory.actualBytes !== undefined) parts.push(`actual ${formatBytes(m.memory.actualBytes)}`);
    if (m.memory.promptCacheBytes) parts.push(`prompt cache up to ${formatBytes(m.memory.promptCacheBytes)}`);
  }
  if (m.draftAcceptance !== undefined) parts.push(`draft ${Math.round(m.draftAcceptance * 100)} % accepted`);
  return parts.join(' · ');
}

/** The state of a model with no instance: unloaded (and why) or loading, from daemons that report it; else down/pending. */
function emptyState(m: ModelStatus): string {
  if (m.load && m.load.state !== 'ready') return loadText(m.load);
  return m.replicas === 0 ? 'down' : 'pending';
}

function slotBar(inst: InstanceStatus, m: ModelStatus): string {
  if (inst.state !== 'ready' || inst.slots.length === 0) return `${'·'.repeat(Math.min(m.slotsPerInstance, 16))} -/${m.slotsPerInstance}`;
  const busy = busySlotsOf(inst, m.slotsPerInstance);
  const bar = inst.slots.slice(0, 16).map((s) => (s.foreign ? '▒' : s.busy ? '█' : '░')).join('');
  return `${bar} ${busy}/${inst.slots.length}`;
}

function queueText(m: ModelStatus): string {
  if (m.queue.waiting === 0) return '0';
  const bg = m.queue.byClass?.background ?? 0; // waiting behind interactive work (X-Slotwise-Priority: background)
  return `${m.queue.waiting} (${(m.queue.oldestWaitMs / 1000).toFixed(1)} s${bg > 0 ? `, ${bg} bg` : ''})`;
}

function stateText(inst: InstanceStatus, now: number): string {
  if (inst.state === 'backoff' && inst.nextRestartAt) return `backoff ${Math.max(0, Math.ceil((inst.nextRestartAt - now) / 1000))}s`;
  return inst.state;
}

function instanceNote(inst: InstanceStatus, withSlots: boolean): string | undefined {
  const parts: string[] = [];
  if ((inst.state === 'failed' || inst.state === 'crashed' || inst.state === 'stalled' || inst.state === 'backoff') && inst.lastError) parts.push(`    ↳ ${inst.lastError}`);
  if (withSlots && inst.state === 'ready') {
    for (const s of inst.slots) {
      parts.push(`    slot ${s.id}: ${slotLine(s)}`);
    }
  }
  return parts.length ? parts.join('\n') : undefined;
}

function slotLine(s: SlotStatus): string {
  if (!s.busy) return 'idle';
  if (s.foreign) return 'busy · foreign client (talking to llama-server directly, not through Slotwise)';
  const holder = slotHolder(s);
  // A queued request already handed this slot (queue.handoffTokens): it starts when the slot frees.
  const next = s.next ? [`next ${s.next.slice(0, 8)}`] : [];
  return ['busy', ...(holder ? [holder] : []), `task ${s.taskId ?? '?'}`, `${slotTokens(s)} tok`, `prompt ${s.nPromptTokens ?? 0}`, ...next].join(' · ');
}

export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

type Paint = (s: string) => string;
function colors(on: boolean): { bold: Paint; red: Paint; green: Paint; yellow: Paint; dim: Paint } {
  const wrap = (code: number): Paint => (s) => (on ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { bold: wrap(1), red: wrap(31), green: wrap(32), yellow: wrap(33), dim: wrap(2) };
}

function stateColor(c: ReturnType<typeof colors>, state: string): Paint {
  if (state === 'ready') return c.green;
  if (state === 'failed' || state === 'crashed' || state === 'stalled') return c.red;
  return c.yellow;
}

/** What to do when the daemon has no model: the file to add one to, with the shortest entry that works. */
function noModels(config: Snapshot['daemon']['config']): string[] {
  const where = config ? `${config.path}${config.exists ? '' : ' (no such file yet: create it)'}` : 'the config file';
  return [
    `No models configured. Add one under "models" in ${where}, e.g.`,
    '  { "models": { "mymodel": { "path": "~/models/model.gguf", "slots": 4 } } }',
    'then restart the daemon: slotwise stop && slotwise start',
  ];
}
