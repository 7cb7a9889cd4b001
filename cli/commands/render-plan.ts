// The report of `slotwise plan`: plans at several slots × contexts against the free memory, as stable JSON
// and as a table. Pure: facts and readings in, report and text out.
import { basename } from 'node:path';
import type { GpuLayers } from '../../daemon/config/types';
import type { FreeMemoryReading } from '../../daemon/memory/free-memory';
import type { ModelFacts } from '../../daemon/memory/model-facts';
import {
  checkFit,
  formatMemory,
  memoryError,
  mostSlotsThatFit,
  planMemory,
  type DevicePlan,
  type Shortfall,
} from '../../daemon/memory/plan';
import type { ServerMemoryOptions } from '../../daemon/memory/server-args';

export interface PlanTarget {
  /** Configured model name; undefined for a bare path. */
  name?: string;
  path: string;
  slots: number;
  ctxPerSlot: number;
  gpuLayers: GpuLayers;
  /** The model's extra llama-server args. */
  args: string[];
  /** The model's `promptCacheMiB` (its host prompt cache, counted on the host); undefined: none. */
  promptCacheMiB?: number | 'auto';
  /** The model's multimodal projector file; undefined: none. */
  mmproj?: string;
  /** The model's draft model file; undefined: none. */
  draft?: string;
}

/** One plan of the report; bytes throughout. */
export interface PlanRow {
  slots: number;
  ctxPerSlot: number;
  /** Layers on the GPUs as llama.cpp counts them (layers + 1 = all, with the output). */
  gpuLayers: number;
  cellsPerSlot: number;
  kvPerSlot: number;
  total: number;
  fits: boolean;
  devices: DevicePlan[];
  shortfalls: Shortfall[];
  /** One line saying what does not fit and the fix; only when it does not fit. */
  message?: string;
}

export interface PlanReport {
  model: {
    name?: string;
    path: string;
    architecture: string;
    layers: number;
    contextLength: number;
    slidingWindow?: { window: number; layers: number };
    recurrentLayers?: number;
    /** Its multimodal projector: file, type, what it reads, and its weights and compute buffer (bytes). */
    projector?: { path: string; type: string; modalities: string[]; weightBytes: number; computeBytes: number };
  };
  asked: { slots: number; ctxPerSlot: number; gpuLayers: GpuLayers };
  free: { host: number; gpus: { index: number; name?: string; free: number }[] };
  /** The asked slots × ctxPerSlot. */
  plan: PlanRow;
  /** Slots 1, 2, 4, 8, 16 and the asked, at half, the asked and double the context. */
  table: PlanRow[];
  /** The most slots (up to 256) that fit at the asked context; 0 when none does. */
  recommendation: { ctxPerSlot: number; slots: number; message: string };
  notes: string[];
}

/** Most slots a model may have (config `slots`). */
const MAX_SLOTS = 256;
const MIN_CTX = 128;

export function buildPlanReport(input: {
  target: PlanTarget;
  facts: ModelFacts;
  reading: FreeMemoryReading;
  server: ServerMemoryOptions;
  /** Host RAM, bytes: bounds an "auto" prompt cache, as the daemon sizes it (os.totalmem()). */
  hostBytes?: number;
}): PlanReport {
  const { target, facts, reading, server, hostBytes } = input;
  const free = reading.free;
  const who = target.name ? `model "${target.name}"` : basename(target.path);
  const cache = { ...(target.promptCacheMiB !== undefined ? { promptCacheMiB: target.promptCacheMiB } : {}), ...(hostBytes !== undefined ? { hostBytes } : {}) };
  const row = (slots: number, ctxPerSlot: number): PlanRow => {
    const plan = planMemory(facts, { slots, ctxPerSlot, gpuLayers: target.gpuLayers, server, ...cache }, free);
    const fit = checkFit(plan, free);
    return {
      slots,
      ctxPerSlot,
      gpuLayers: plan.gpuLayers,
      cellsPerSlot: plan.cellsPerSlot,
      kvPerSlot: Math.round(plan.kvPerSlot),
      total: plan.total,
      fits: fit.fits,
      devices: plan.devices,
      shortfalls: fit.shortfalls,
      ...(fit.fits ? {} : { message: memoryError(`${who} with ${slots} slots × ${ctxPerSlot} tokens`, fit, free.gpus.length > 0).message }),
    };
  };

  const slotCounts = [...new Set([1, 2, 4, 8, 16, target.slots])].sort((a, b) => a - b);
  const half = Math.floor(target.ctxPerSlot / 2);
  const contexts = [...new Set([half >= MIN_CTX ? half : target.ctxPerSlot, target.ctxPerSlot, target.ctxPerSlot * 2])];
  const table = contexts.flatMap((c) => slotCounts.map((s) => row(s, c)));
  const asked = row(target.slots, target.ctxPerSlot);

  const settings = { ctxPerSlot: target.ctxPerSlot, gpuLayers: target.gpuLayers, server, ...cache };
  const most = mostSlotsThatFit(facts, settings, free, MAX_SLOTS);
  const recommendation = {
    ctxPerSlot: target.ctxPerSlot,
    slots: most,
    message:
      most === 0
        ? `not even 1 slot fits at ctxPerSlot ${target.ctxPerSlot}: ${row(1, target.ctxPerSlot).message ?? ''}`
        : `slots ${most} at ctxPerSlot ${target.ctxPerSlot}${most === MAX_SLOTS ? ` (${MAX_SLOTS} is the most a model may have)` : ' is the most that fits the memory free now'}`,
  };
  const notes = [...reading.warnings, ...planMemory(facts, { ...settings, slots: target.slots }, free).notes];
  return {
    model: {
      name: target.name,
      path: target.path,
      architecture: facts.architecture,
      layers: facts.layers,
      contextLength: facts.contextLength,
      ...(facts.slidingWindow ? { slidingWindow: { window: facts.slidingWindow.window, layers: facts.slidingWindow.swa.filter(Boolean).length } } : {}),
      ...(facts.recurrent ? { recurrentLayers: facts.recurrent.layers.filter(Boolean).length } : {}),
      ...(facts.projector && target.mmproj
        ? { projector: { path: target.mmproj, type: facts.projector.projectorType, modalities: facts.projector.modalities, weightBytes: facts.projector.weightBytes, computeBytes: facts.projector.computeBytes } }
        : {}),
    },
    asked: { slots: target.slots, ctxPerSlot: target.ctxPerSlot, gpuLayers: target.gpuLayers },
    free: { host: free.host, gpus: free.gpus.map((g) => ({ index: g.index, name: reading.gpuNames.get(g.index), free: g.free })) },
    plan: asked,
    table,
    recommendation,
    notes,
  };
}

/** The report as a table, one line per plan and device; the asked plan is marked `*`. */
export function renderPlanTable(r: PlanReport): string {
  const lines: string[] = [];
  const name = r.model.name ? `${r.model.name} (${r.model.path})` : r.model.path;
  const sw = r.model.slidingWindow;
  const kinds = [
    ...(sw ? [`${sw.layers} of them attend over a ${sw.window}-token window and keep a smaller KV cache`] : []),
    ...(r.model.recurrentLayers ? [`${r.model.recurrentLayers} of them recurrent: a fixed state per slot, counted as KV`] : []),
  ];
  const window = kinds.length ? ` (${kinds.join('; ')})` : '';
  lines.push(`model  ${name}: ${r.model.architecture}, ${r.model.layers} layers${window}, training context ${r.model.contextLength}`);
  const pj = r.model.projector;
  if (pj) lines.push(`mmproj ${pj.path}: ${pj.type} (${pj.modalities.join(', ')}), weights ${formatMemory(pj.weightBytes)} + encoder ${formatMemory(pj.computeBytes)} (estimated)`);
  const gpus = r.free.gpus.map((g) => `GPU ${g.index}${g.name ? ` ${g.name}` : ''} ${formatMemory(g.free)}`);
  lines.push(`free   ${['host RAM ' + formatMemory(r.free.host), ...gpus].join(' · ')}`);
  lines.push(`asked  ${r.asked.slots} slots × ${r.asked.ctxPerSlot} tokens, gpuLayers ${r.asked.gpuLayers}`);
  lines.push('');
  // `cache`: llama-server's host prompt cache at its limit (--cache-ram), in the total; `-` where a device has none.
  // `mmproj`: the projector's weights and encoder buffer, a column only for a model that has one;
  // `ckpt`: llama-server's context checkpoints at their limit, only for a model that makes them;
  // `draft`: a draft model's whole share of the device, only with one.
  const ckpt = r.table.some((p) => p.devices.some((d) => d.checkpoints));
  const draft = r.table.some((p) => p.devices.some((d) => d.draft));
  const head = ['', 'slots', 'ctx/slot', 'gpuLayers', 'device', 'weights', 'KV', 'compute', 'output', 'cache', ...(ckpt ? ['ckpt'] : []), ...(pj ? ['mmproj'] : []), ...(draft ? ['draft'] : []), 'total', 'free', 'fits'];
  const rows: string[][] = [head];
  for (const p of r.table) {
    const mark = p.slots === r.asked.slots && p.ctxPerSlot === r.asked.ctxPerSlot ? '*' : '';
    p.devices.forEach((d, i) => {
      if (d.total === 0 && d.device !== 'host') return; // a GPU the plan does not use
      const free = d.device === 'host' ? r.free.host : (r.free.gpus.find((g) => `gpu${g.index}` === d.device)?.free ?? 0);
      const first = i === 0;
      rows.push([
        first ? mark : '',
        first ? String(p.slots) : '',
        first ? String(p.ctxPerSlot) : '',
        first ? String(p.gpuLayers) : '',
        d.label,
        formatMemory(d.weights),
        formatMemory(d.kv),
        formatMemory(d.compute),
        formatMemory(d.output),
        d.promptCache ? formatMemory(d.promptCache) : '-',
        ...(ckpt ? [d.checkpoints ? formatMemory(d.checkpoints) : '-'] : []),
        ...(pj ? [d.projector ? formatMemory(d.projector) : '-'] : []),
        ...(draft ? [d.draft ? formatMemory(d.draft) : '-'] : []),
        formatMemory(d.total),
        formatMemory(free),
        d.total <= free ? 'yes' : 'NO',
      ]);
    });
  }
  const widths = head.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const leftAligned = new Set([0, 4]);
  for (const row of rows) {
    lines.push(row.map((cell, c) => (leftAligned.has(c) ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd());
  }
  lines.push('');
  lines.push(`recommendation: ${r.recommendation.message}`);
  for (const note of r.notes) lines.push(`note: ${note}`);
  return `${lines.join('\n')}\n`;
}
