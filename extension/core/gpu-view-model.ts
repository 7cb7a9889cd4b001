// What the GPU view shows, computed in the extension host from snapshots + history; the webview only renders it.
// On hosts without a GPU (snapshot.gpus empty) it shows CPU % and RSS per llama-server instead.
import type { Snapshot } from '../../shared/protocol';
import { formatBytes, formatMiB } from '../../shared/format';
import { memoryBars, type MemoryBar } from './memory-bar';
import { SampleHistory, sparkPoints, type SparkPoint } from './sample-history';

export interface Gauge {
  label: string;
  value: string;
  /** 0..1 of the bar. */
  fraction: number;
  level: 'ok' | 'warn' | 'high';
  spark: SparkPoint[];
}

export interface Card {
  id: string;
  title: string;
  subtitle: string;
  gauges: Gauge[];
  /** The device's memory split by model, and what would still fit (each GPU; the host when there is none). */
  memory?: MemoryBar;
}

export interface ProcessRow {
  instance: string;
  state: string;
  pid: string;
  vram: string;
  cpu: string;
  rss: string;
}

export interface GpuViewModel {
  status: 'connected' | 'connecting' | 'disconnected';
  /** One line above the cards (why it is empty, which mode). */
  message?: string;
  mode: 'gpu' | 'cpu';
  cards: Card[];
  processes: ProcessRow[];
  warnings: string[];
}

/** Host → webview. */
export type ToWebview = { type: 'update'; model: GpuViewModel };
/** Webview → host: it loaded (send the current model), or a button asked for a command. */
export type FromWebview = { type: 'ready' } | { type: 'command'; command: 'startDaemon' | 'showLog' };

/** Records one snapshot's values into the history (call on every snapshot). */
export function recordSnapshot(h: SampleHistory, s: Snapshot, now: number): void {
  const keep = new Set<string>();
  const put = (key: string, v: number): void => {
    keep.add(key);
    h.push(key, now, v);
  };
  for (const g of s.gpus) {
    put(`gpu:${g.index}:util`, g.utilizationPct);
    put(`gpu:${g.index}:mem`, g.memoryUsedMiB);
  }
  for (const m of s.models) {
    for (const i of m.instances) {
      if (!i.usage) continue;
      put(`proc:${i.id}:cpu`, i.usage.cpuPct);
      put(`proc:${i.id}:rss`, i.usage.rssBytes);
    }
  }
  if (s.host) put('host:mem', s.host.memoryTotalBytes - s.host.memoryAvailableBytes);
  h.retain(keep);
}

export function buildGpuViewModel(state: GpuViewModel['status'], s: Snapshot | undefined, h: SampleHistory, now: number): GpuViewModel {
  if (state !== 'connected' || !s) {
    return {
      status: state,
      message: state === 'connecting' ? 'Connecting to the Slotwise daemon…' : 'The Slotwise daemon is not running.',
      mode: 'cpu',
      cards: [],
      processes: [],
      warnings: [],
    };
  }
  const w = h.windowMs;
  const spark = (key: string, max: number): SparkPoint[] => sparkPoints(h.get(key), now, w, max);
  const instances = s.models.flatMap((m) => m.instances.filter((i) => i.state !== 'stopped'));
  const processes: ProcessRow[] = instances.map((i) => ({
    instance: i.id,
    state: i.state,
    pid: i.pid ? String(i.pid) : '—',
    vram: i.usage?.vramBytes !== undefined ? formatBytes(i.usage.vramBytes) : '—',
    cpu: i.usage ? `${i.usage.cpuPct.toFixed(0)}%` : '—',
    rss: i.usage ? formatBytes(i.usage.rssBytes) : '—',
  }));
  const bars = new Map(memoryBars(s).map((b) => [b.device, b]));
  if (s.gpus.length > 0) {
    const cards = s.gpus.map((g): Card => ({
      id: `gpu-${g.index}`,
      title: `GPU ${g.index} · ${g.name}`,
      subtitle: [g.temperatureC !== undefined ? `${g.temperatureC} °C` : '', g.powerW !== undefined ? `${g.powerW.toFixed(0)} W` : ''].filter(Boolean).join(' · '),
      gauges: [
        gauge('Utilization', `${g.utilizationPct.toFixed(0)}%`, g.utilizationPct / 100, spark(`gpu:${g.index}:util`, 100)),
        gauge('VRAM', `${formatMiB(g.memoryUsedMiB)} / ${formatMiB(g.memoryTotalMiB)}`, g.memoryUsedMiB / Math.max(1, g.memoryTotalMiB), spark(`gpu:${g.index}:mem`, g.memoryTotalMiB)),
      ],
      ...withBar(bars.get(`gpu${g.index}`)),
    }));
    const hostBar = bars.get('host');
    if (hostBar && s.host) {
      // What the models keep in RAM beside the GPUs (layers off the GPU, token embeddings).
      const used = s.host.memoryTotalBytes - s.host.memoryAvailableBytes;
      cards.push({
        id: 'host',
        title: 'Host RAM',
        subtitle: `${s.host.cpuCount} CPU core${s.host.cpuCount === 1 ? '' : 's'}`,
        gauges: [gauge('Memory', `${formatBytes(used)} / ${formatBytes(s.host.memoryTotalBytes)}`, used / s.host.memoryTotalBytes, spark('host:mem', s.host.memoryTotalBytes))],
        ...withBar(hostBar),
      });
    }
    return { status: 'connected', mode: 'gpu', cards, processes, warnings: s.warnings };
  }
  const cores = s.host?.cpuCount ?? 1;
  const memTotal = s.host?.memoryTotalBytes ?? 0;
  const cards: Card[] = instances
    .filter((i) => i.usage)
    .map((i) => ({
      id: `proc-${i.id}`,
      title: i.id,
      subtitle: `${i.state}${i.pid ? ` · pid ${i.pid}` : ''}`,
      gauges: [
        gauge('CPU', `${i.usage!.cpuPct.toFixed(0)}% of ${cores * 100}%`, i.usage!.cpuPct / (cores * 100), spark(`proc:${i.id}:cpu`, cores * 100)),
        gauge('RSS', formatBytes(i.usage!.rssBytes), memTotal ? i.usage!.rssBytes / memTotal : 0, spark(`proc:${i.id}:rss`, memTotal || i.usage!.rssBytes * 2)),
      ],
    }));
  if (s.host && memTotal) {
    const used = memTotal - s.host.memoryAvailableBytes;
    cards.push({
      id: 'host',
      title: 'Host',
      subtitle: `${cores} CPU core${cores === 1 ? '' : 's'}${s.host.loadPct !== undefined ? ` · load ${s.host.loadPct.toFixed(0)}%` : ''}`,
      gauges: [gauge('Memory', `${formatBytes(used)} / ${formatBytes(memTotal)}`, used / memTotal, spark('host:mem', memTotal))],
      ...withBar(bars.get('host')),
    });
  }
  return {
    status: 'connected',
    mode: 'cpu',
    message: instances.length ? 'No GPU found — showing CPU and memory per llama-server.' : 'No GPU found and no llama-server running.',
    cards,
    processes,
    warnings: s.warnings,
  };
}

function withBar(bar: MemoryBar | undefined): Pick<Card, 'memory'> {
  return bar ? { memory: bar } : {};
}

function gauge(label: string, value: string, fraction: number, spark: SparkPoint[]): Gauge {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  return { label, value, fraction: f, level: f >= 0.9 ? 'high' : f >= 0.7 ? 'warn' : 'ok', spark };
}
