// One device's memory as a stacked bar (pure): each loaded model's share (llama-server's buffers, else
// its plan), what other processes hold (used − the models), on the host the room reserved for the
// models' prompt caches (at their limit, out of free), and free; then which of the models that are
// down would still fit beside them (the daemon's `memory.fitsNow`) and which would not.
import type { ModelStatus, Snapshot } from '../../shared/protocol';
import { formatBytes, formatMiB } from '../../shared/format';
import { promptCachesByDevice } from '../../shared/prompt-caches';

/** How many distinct model colours the view has (`--vscode-charts-*`); models beyond reuse them in order. */
export const MODEL_COLOURS = 6;

export interface MemorySegment {
  kind: 'model' | 'other' | 'reserved' | 'free';
  /** The model's name (with `×2` for two replicas), `other processes`, `prompt caches (reserved)` or `free`. */
  label: string;
  bytes: number;
  /** Share of the bar, 0..1; the segments of a bar add up to 1. */
  fraction: number;
  /** `1.2 GiB`. */
  size: string;
  /** Models only: palette slot, the same for a model on every device (its place in the snapshot). */
  colour?: number;
  /** Models only: `loading, plan` while no buffer sizes are reported, `plan` for a ready one without them. */
  note?: string;
}

export interface FitEntry {
  name: string;
  /** Its plan on this device. */
  size: string;
}

export interface MemoryBar {
  /** `host`, `gpu0`, … */
  device: string;
  /** `VRAM by model`, `Host RAM by model`. */
  title: string;
  totalBytes: number;
  segments: MemorySegment[];
  fits: FitEntry[];
  doesNotFit: FitEntry[];
  /** Down models the daemon gave no fit for (not planned yet, e.g. `slots: "auto"` before its first load). */
  unknown: string[];
  /** `would still fit: coder (1.2 GiB) · would not fit: big (9.1 GiB)`; empty when no model is down. */
  fitLine: string;
  /** With memoryBudgetMiB: `budget 512 MiB: models hold 120 MiB, 392 MiB left`. */
  budgetLine?: string;
  /** The whole bar as one sentence (screen readers; the bar itself is a picture). */
  summary: string;
}

const MIB = 1024 * 1024;

interface DeviceReading {
  device: string;
  /** For the summary: `GPU 0`, `Host RAM`. */
  name: string;
  title: string;
  totalBytes: number;
  usedBytes: number;
}

/**
 * A bar per GPU, and one for the host RAM when there is no GPU or when a model plans bytes there (layers
 * kept off the GPU, the token embeddings): those would otherwise be on no bar. Models not planned yet
 * are named on the first bar only.
 */
export function memoryBars(s: Snapshot): MemoryBar[] {
  const gpus: DeviceReading[] = s.gpus.map((g) => ({ device: `gpu${g.index}`, name: `GPU ${g.index}`, title: 'VRAM by model', totalBytes: g.memoryTotalMiB * MIB, usedBytes: g.memoryUsedMiB * MIB }));
  const hostHeld = s.models.some((m) => {
    const h = m.memory?.byDevice.find((x) => x.device === 'host');
    return (h?.planBytes ?? 0) + (h?.promptCacheBytes ?? 0) > 0;
  });
  const host: DeviceReading[] =
    s.host && s.host.memoryTotalBytes > 0 && (gpus.length === 0 || hostHeld)
      ? [{ device: 'host', name: 'Host RAM', title: 'Host RAM by model', totalBytes: s.host.memoryTotalBytes, usedBytes: s.host.memoryTotalBytes - s.host.memoryAvailableBytes }]
      : [];
  return [...gpus, ...host].map((d, i) => memoryBar(s, d, i === 0));
}

function memoryBar(s: Snapshot, d: DeviceReading, withUnknown: boolean): MemoryBar {
  const models: MemorySegment[] = [];
  s.models.forEach((m, index) => {
    const seg = modelSegment(m, index, d.device);
    if (seg) models.push(seg);
  });
  const held = models.reduce((a, x) => a + x.bytes, 0);
  const used = Math.max(0, d.usedBytes);
  // Plans can exceed what the OS counts as used (mmap'd weights sit in the page cache): never below 0.
  const other = Math.max(0, used - held);
  const unused = Math.max(0, d.totalBytes - held - other);
  // The loaded models' host prompt caches at their limit: room the loader keeps for them as prompts are
  // saved (what they filled so far is inside "used"), so it is shown out of free, not as used.
  const caches = promptCachesByDevice(s.models).get(d.device) ?? 0;
  const reserved = Math.min(unused, caches);
  const free = unused - reserved;
  const scale = Math.max(d.totalBytes, held + other + reserved + free) || 1;
  const rest: MemorySegment[] = [
    ...(other > 0 ? [{ kind: 'other' as const, label: 'other processes', bytes: other, fraction: 0, size: formatBytes(other) }] : []),
    ...(reserved > 0 ? [{ kind: 'reserved' as const, label: 'prompt caches (reserved)', bytes: reserved, fraction: 0, size: formatBytes(reserved) }] : []),
    { kind: 'free', label: 'free', bytes: free, fraction: 0, size: formatBytes(free) },
  ];
  const segments = [...models, ...rest].map((x) => ({ ...x, fraction: x.bytes / scale }));

  const fits: FitEntry[] = [];
  const doesNotFit: FitEntry[] = [];
  const unknown: string[] = [];
  for (const m of s.models) {
    // A load being prepared (room made, replicas not raised yet) is neither loaded nor a question of fitting.
    if (m.replicas !== 0 || m.load?.state === 'loading') continue;
    const dev = m.memory?.byDevice.find((x) => x.device === d.device);
    const here = dev ? dev.planBytes + (dev.promptCacheBytes ?? 0) : 0;
    if (m.memory?.fitsNow === undefined) {
      if (withUnknown) unknown.push(m.name);
    } else if (here > 0) (m.memory.fitsNow ? fits : doesNotFit).push({ name: m.name, size: formatBytes(here) });
  }
  const fitLine = [
    fits.length ? `would still fit: ${fits.map(entryText).join(', ')}` : '',
    doesNotFit.length ? `would not fit: ${doesNotFit.map(entryText).join(', ')}` : '',
    unknown.length ? `not planned yet: ${unknown.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join(' · ');
  const budget = s.memoryBudgetMiB;
  const budgetLine =
    budget !== undefined
      ? `budget ${formatMiB(budget)}: models hold ${formatBytes(held)}${caches > 0 ? ` and reserve ${formatBytes(caches)} of prompt cache` : ''}, ${formatBytes(Math.max(0, budget * MIB - held - caches))} left`
      : undefined;
  const summary = `${d.name} memory, ${formatBytes(d.totalBytes)}: ${segments.map((x) => `${x.label} ${x.size}${x.note ? ` (${x.note})` : ''}`).join(', ')}.`;
  return { device: d.device, title: d.title, totalBytes: d.totalBytes, segments, fits, doesNotFit, unknown, fitLine, ...(budgetLine ? { budgetLine } : {}), summary };
}

/** A loaded (or loading) model's bytes on the device: per live replica, reported buffers, else the plan. */
function modelSegment(m: ModelStatus, index: number, device: string): MemorySegment | undefined {
  if (m.replicas === 0 || !m.memory) return undefined;
  const dev = m.memory.byDevice.find((x) => x.device === device);
  if (!dev) return undefined;
  const live = m.instances.filter((i) => i.state !== 'stopped');
  const replicas = Math.max(1, live.length);
  const ready = live.some((i) => i.state === 'ready');
  const per = dev.actualBytes ?? dev.planBytes;
  const bytes = per * replicas;
  if (bytes <= 0) return undefined;
  const note = dev.actualBytes !== undefined ? undefined : ready ? 'plan' : 'loading, plan';
  return {
    kind: 'model',
    label: replicas > 1 ? `${m.name} ×${replicas}` : m.name,
    bytes,
    fraction: 0,
    size: formatBytes(bytes),
    colour: index % MODEL_COLOURS,
    ...(note ? { note } : {}),
  };
}

function entryText(e: FitEntry): string {
  return `${e.name} (${e.size})`;
}
