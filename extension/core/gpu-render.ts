// GpuViewModel → HTML for the GPU webview. Pure and DOM-free: the webview script sets innerHTML with it,
// the unit tests read it. Every text is escaped; no inline styles or handlers (the CSP allows neither).
import { escapeHtml } from './escape';
import type { Card, Gauge, GpuViewModel, ProcessRow } from './gpu-view-model';
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
