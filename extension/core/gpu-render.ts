// GpuViewModel → HTML for the GPU webview. Pure and DOM-free: the webview script sets innerHTML with it,
// the unit tests read it. Every text is escaped; no inline styles or handlers (the CSP allows neither).
import { formatBytes } from '../../shared/format';
import { escapeHtml } from './escape';
import type { Card, Gauge, GpuViewModel, ProcessRow } from './gpu-view-model';
import type { FitEntry, MemoryBar, MemorySegment } from './memory-bar';
import type { SparkPoint } from './sample-history';

export function renderGpuView(vm: GpuViewModel): string {
  const parts: string[] = [];
  if (vm.status !== 'connected') {
    parts.push(`<p class="message">${escapeHtml(vm.message ?? '')}</p>`);
    if (vm.status === 'disconnected') {
      parts.push('<p><button type="button" data-command="startDaemon">Start Daemon</button> <button type="button" class="secondary" data-command="showLog">Show Log</button></p>');
    }
    return parts.join('');
  }
  if (vm.message) parts.push(`<p class="message">${escapeHtml(vm.message)}</p>`);
  parts.push(...vm.cards.map(renderCard));
  if (vm.processes.length) parts.push(renderProcesses(vm.processes, vm.mode));
  for (const w of vm.warnings) parts.push(`<p class="warning">${escapeHtml(w)}</p>`);
  return parts.join('');
}

function renderCard(c: Card): string {
  return [
    `<section class="card" data-card="${escapeHtml(c.id)}">`,
    `<h3>${escapeHtml(c.title)}</h3>`,
    c.subtitle ? `<div class="subtitle">${escapeHtml(c.subtitle)}</div>` : '',
    ...c.gauges.map(renderGauge),
    c.memory ? renderMemoryBar(c.memory) : '',
    '</section>',
  ].join('');
}

function renderGauge(g: Gauge): string {
  const pct = (g.fraction * 100).toFixed(1);
  return [
    `<div class="gauge" role="meter" aria-label="${escapeHtml(g.label)}" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${pct}">`,
    `<div class="gauge-head"><span class="label">${escapeHtml(g.label)}</span><span class="value">${escapeHtml(g.value)}</span></div>`,
    `<svg class="bar" viewBox="0 0 100 6" preserveAspectRatio="none" aria-hidden="true"><rect class="track" x="0" y="0" width="100" height="6"/><rect class="fill level-${g.level}" x="0" y="0" width="${pct}" height="6"/></svg>`,
    sparkline(g.spark),
    '</div>',
  ].join('');
}

/**
 * The stacked bar: one rect per segment (a model's colour class, other processes, free), each with a
 * tooltip; the legend beside it names every segment with its size, so nothing rests on colour alone.
 */
export function renderMemoryBar(b: MemoryBar): string {
  let x = 0;
  const rects = b.segments
    .filter((s) => s.fraction > 0)
    .map((s) => {
      const rect = `<rect class="${segClass(s)}" x="${(x * 100).toFixed(2)}" y="0" width="${(s.fraction * 100).toFixed(2)}" height="10"><title>${escapeHtml(`${s.label} ${s.size}`)}</title></rect>`;
      x += s.fraction;
      return rect;
    })
    .join('');
  const legend = b.segments
    .map(
      (s) =>
        `<li class="${s.kind}"${s.kind === 'model' ? ` data-model="${escapeHtml(s.label)}"` : ''}><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect class="${segClass(s)}" x="0" y="0" width="10" height="10"/></svg><span class="name">${escapeHtml(s.label)}</span> <span class="size">${escapeHtml(s.size)}</span>${s.note ? ` <span class="note">${escapeHtml(`(${s.note})`)}</span>` : ''}</li>`,
    )
    .join('');
  const fit = [
    b.fits.length ? `<span class="fits">would still fit: ${fitList(b.fits)}</span>` : '',
    b.doesNotFit.length ? `<span class="nofit">would not fit: ${fitList(b.doesNotFit)}</span>` : '',
    b.unknown.length ? `<span class="unknown">not planned yet: ${b.unknown.map(escapeHtml).join(', ')}</span>` : '',
  ].filter(Boolean);
  return [
    `<div class="membar" data-device="${escapeHtml(b.device)}">`,
    `<div class="gauge-head"><span class="label">${escapeHtml(b.title)}</span><span class="value">${escapeHtml(freeText(b))}</span></div>`,
    `<svg class="stack" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label="${escapeHtml(b.summary)}">${rects}<rect class="frame" x="0" y="0" width="100" height="10"/></svg>`,
    `<ul class="legend">${legend}</ul>`,
    fit.length ? `<p class="fit">${fit.join(' · ')}</p>` : '',
    b.budgetLine ? `<p class="budget">${escapeHtml(b.budgetLine)}</p>` : '',
    '</div>',
  ].join('');
}

function segClass(s: MemorySegment): string {
  return s.kind === 'model' ? `seg seg-c${s.colour ?? 0}` : `seg seg-${s.kind}`;
}

function fitList(entries: FitEntry[]): string {
  return entries.map((e) => `${escapeHtml(e.name)} (${escapeHtml(e.size)})`).join(', ');
}

/** `70.1 GiB free of 79.6 GiB`. */
function freeText(b: MemoryBar): string {
  const free = b.segments.find((s) => s.kind === 'free');
  return `${free?.size ?? '0 B'} free of ${formatBytes(b.totalBytes)}`;
}

const SPARK_W = 120;
const SPARK_H = 24;

/** An SVG polyline of the last 60 s; empty history draws just the baseline. */
export function sparkline(points: SparkPoint[]): string {
  const coords = points.map((p) => `${(p.x * SPARK_W).toFixed(1)},${((1 - p.y) * (SPARK_H - 2) + 1).toFixed(1)}`).join(' ');
  return [
    `<svg class="spark" viewBox="0 0 ${SPARK_W} ${SPARK_H}" preserveAspectRatio="none" aria-hidden="true">`,
    `<line class="baseline" x1="0" y1="${SPARK_H - 0.5}" x2="${SPARK_W}" y2="${SPARK_H - 0.5}"/>`,
    coords ? `<polyline points="${coords}"/>` : '',
    '</svg>',
  ].join('');
}

function renderProcesses(rows: ProcessRow[], mode: GpuViewModel['mode']): string {
  const head = mode === 'gpu' ? '<tr><th>llama-server</th><th>PID</th><th>VRAM</th><th>CPU</th><th>RSS</th></tr>' : '<tr><th>llama-server</th><th>PID</th><th>CPU</th><th>RSS</th></tr>';
  const body = rows
    .map((r) => {
      const cells = [r.instance, r.pid, ...(mode === 'gpu' ? [r.vram] : []), r.cpu, r.rss];
      return `<tr data-instance="${escapeHtml(r.instance)}" class="state-${escapeHtml(r.state)}">${cells.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`;
    })
    .join('');
  return `<table class="processes"><caption>${mode === 'gpu' ? 'VRAM per llama-server' : 'Per llama-server'}</caption><thead>${head}</thead><tbody>${body}</tbody></table>`;
}
