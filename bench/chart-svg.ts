// bench.svg, written by hand (no dependency): tokens/s in the top panel, slots busy and GPU/CPU %
// in the bottom one, both against concurrency — the "GPU % vs slots" picture.
import type { BenchReport, LevelResult } from './types';

export interface ChartSeries {
  label: string;
  /** One per x value; null or NaN = no point. */
  values: (number | null)[];
  color: string;
  dashed?: boolean;
}

export interface ChartPanel {
  yLabel: string;
  series: ChartSeries[];
  /** Fixed top of the y axis (100 for percentages); else from the data. */
  yMax?: number;
  /** Print each point's value above the first series' points. */
  labelFirst?: boolean;
}

export interface ChartInput {
  title: string;
  subtitle: string;
  xLabel: string;
  /** Categories along x, equally spaced (the concurrency levels). */
  x: number[];
  top: ChartPanel;
  bottom: ChartPanel;
  /** Lines under the chart. */
  caption?: string[];
}

const W = 920;
const LEFT = 78;
const RIGHT = 230; // room for the legends
const PLOT_W = W - LEFT - RIGHT;
const PANEL_H = 200;
const TOP1 = 92;
const TOP2 = TOP1 + PANEL_H + 62;
const H = TOP2 + PANEL_H + 110;
const FONT = 'system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif';
const INK = '#1f2328';
const MUTED = '#59636e';
const GRID = '#d8dee4';

export const COLORS = { daemon: '#0969da', direct: '#bc4c00', slots: '#1a7f37', cpu: '#cf222e', gpu: '#8250df', host: '#9a6700' } as const;

/** XML-escapes text content and attribute values. */
export function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round axis ticks from 0 to at least `max`: steps of 1, 2, 2.5 or 5 × 10^k, about 5 of them. */
export function niceTicks(max: number, count = 5): number[] {
  if (!Number.isFinite(max) || max <= 0) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 1e-9; v += step) ticks.push(round(v));
  if (ticks[ticks.length - 1]! < max) ticks.push(round(ticks[ticks.length - 1]! + step));
  return ticks;
}

function round(v: number): number {
  return Math.round(v * 1e6) / 1e6;
}

function tickText(v: number): string {
  if (v >= 10_000) return `${round(v / 1000)}k`;
  return String(v);
}

function finite(v: number | null | undefined): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function text(x: number, y: number, body: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}"${attrs ? ` ${attrs}` : ''}>${esc(body)}</text>`;
}

function panel(p: ChartPanel, xs: number[], top: number, xLabel: string | undefined): string[] {
  const values = p.series.flatMap((s) => s.values.filter(finite));
  const ticks = niceTicks(p.yMax ?? Math.max(1, ...values) * 1.08);
  const yMax = ticks[ticks.length - 1]!;
  const xAt = (i: number): number => LEFT + (xs.length === 1 ? PLOT_W / 2 : (i * PLOT_W) / (xs.length - 1));
  const yAt = (v: number): number => top + PANEL_H - (Math.min(v, yMax) / yMax) * PANEL_H;
  const out: string[] = [`<g class="panel" data-y-label="${esc(p.yLabel)}">`];
  for (const t of ticks) {
    const y = yAt(t);
    out.push(`<line x1="${LEFT}" x2="${LEFT + PLOT_W}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${GRID}" stroke-width="1"/>`);
    out.push(text(LEFT - 8, y + 4, tickText(t), `text-anchor="end" font-size="12" fill="${MUTED}"`));
  }
  out.push(`<line x1="${LEFT}" x2="${LEFT}" y1="${top}" y2="${top + PANEL_H}" stroke="${MUTED}" stroke-width="1"/>`);
  out.push(`<line x1="${LEFT}" x2="${LEFT + PLOT_W}" y1="${top + PANEL_H}" y2="${top + PANEL_H}" stroke="${MUTED}" stroke-width="1"/>`);
  xs.forEach((x, i) => {
    out.push(`<line x1="${xAt(i).toFixed(1)}" x2="${xAt(i).toFixed(1)}" y1="${top + PANEL_H}" y2="${top + PANEL_H + 5}" stroke="${MUTED}"/>`);
    out.push(text(xAt(i), top + PANEL_H + 19, String(x), `text-anchor="middle" font-size="12" fill="${INK}"`));
  });
  const midY = top + PANEL_H / 2;
  out.push(text(22, midY, p.yLabel, `text-anchor="middle" font-size="13" fill="${INK}" transform="rotate(-90 22 ${midY})"`));
  if (xLabel) out.push(text(LEFT + PLOT_W / 2, top + PANEL_H + 40, xLabel, `text-anchor="middle" font-size="13" fill="${INK}"`));

  p.series.forEach((s, k) => {
    const pts = s.values.map((v, i) => (finite(v) ? `${xAt(i).toFixed(1)},${yAt(v).toFixed(1)}` : undefined));
    // A gap (missing value) splits the line into runs.
    const runs: string[][] = [[]];
    for (const pt of pts) {
      if (pt) runs[runs.length - 1]!.push(pt);
      else if (runs[runs.length - 1]!.length) runs.push([]);
    }
    const dash = s.dashed ? ' stroke-dasharray="7 5"' : '';
    out.push(`<g class="series" data-label="${esc(s.label)}">`);
    for (const run of runs.filter((r) => r.length > 1)) {
      out.push(`<polyline points="${run.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2.5" stroke-linejoin="round"${dash}/>`);
    }
    s.values.forEach((v, i) => {
      if (!finite(v)) return;
      out.push(`<circle cx="${xAt(i).toFixed(1)}" cy="${yAt(v).toFixed(1)}" r="${s.dashed ? 3 : 4}" fill="${s.dashed ? '#ffffff' : s.color}" stroke="${s.color}" stroke-width="2"/>`);
      // A white halo keeps the value readable where it crosses another line.
      if (k === 0 && p.labelFirst) {
        // Ends are anchored inward so the first label does not sit on the y axis.
        const [anchor, dx] = xs.length > 1 && i === 0 ? ['start', 6] : xs.length > 1 && i === xs.length - 1 ? ['end', -6] : ['middle', 0];
        const attrs = `text-anchor="${anchor}" font-size="11" font-weight="600" fill="${s.color}" stroke="#ffffff" stroke-width="4" paint-order="stroke"`;
        out.push(text(xAt(i) + dx, yAt(v) - 11, tickText(Math.round(v)), attrs));
      }
    });
    out.push('</g>');
    // Legend, right of the plot.
    const ly = top + 14 + k * 22;
    const lx = LEFT + PLOT_W + 22;
    out.push(`<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2.5"${dash}/>`);
    out.push(text(lx + 34, ly + 4, s.label, `font-size="12" fill="${INK}"`));
  });
  out.push('</g>');
  return out;
}

/** The whole SVG document. */
export function renderChart(c: ChartInput): string {
  const body = [
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    text(LEFT, 34, c.title, `font-size="19" font-weight="600" fill="${INK}"`),
    text(LEFT, 58, c.subtitle, `font-size="13" fill="${MUTED}"`),
    ...panel(c.top, c.x, TOP1, undefined),
    ...panel(c.bottom, c.x, TOP2, c.xLabel),
  ];
  (c.caption ?? []).forEach((line, i, all) => body.push(text(LEFT, H - 16 - (all.length - 1 - i) * 17, line, `font-size="12" fill="${MUTED}"`)));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="${FONT}" role="img" aria-label="${esc(c.title)}">`,
    `<title>${esc(c.title)}</title>`,
    ...body.map((l) => `  ${l}`),
    '</svg>',
    '',
  ].join('\n');
}

/** The chart of a report: its sweep's daemon (and direct) levels by concurrency. */
export function chartFromReport(r: BenchReport): ChartInput {
  const xs = [...new Set(r.sweep.levels.map((l) => l.concurrency))].sort((a, b) => a - b);
  const at = (target: LevelResult['target']): (LevelResult | undefined)[] => xs.map((c) => r.sweep.levels.find((l) => l.target === target && l.concurrency === c));
  const daemon = at('daemon');
  const direct = at('direct');
  const top: ChartSeries[] = [{ label: 'through daemon', values: daemon.map((l) => l?.tokensPerSecond ?? null), color: COLORS.daemon }];
  if (direct.some(Boolean)) top.push({ label: 'direct llama-server', values: direct.map((l) => l?.tokensPerSecond ?? null), color: COLORS.direct, dashed: true });

  const util = daemon.map((l) => l?.utilization);
  const bottom: ChartSeries[] = [
    { label: 'slots in use (timings)', values: util.map((u) => u?.inFlightPct ?? null), color: COLORS.slots },
    { label: 'slots busy (/api/status)', values: util.map((u) => u?.slotPct ?? null), color: COLORS.slots, dashed: true },
  ];
  const hasGpu = util.some((u) => u?.gpuPct !== undefined && u.gpuPct !== null);
  if (hasGpu) bottom.push({ label: 'GPU utilization', values: util.map((u) => u?.gpuPct ?? null), color: COLORS.gpu });
  bottom.push({ label: 'llama-server CPU', values: util.map((u) => u?.cpuPct ?? null), color: COLORS.cpu });
  if (!hasGpu) bottom.push({ label: 'host CPU', values: util.map((u) => u?.hostCpuPct ?? null), color: COLORS.host, dashed: true });

  const e = r.environment;
  const s = r.sweep;
  const tokens = s.options.mix.map((m) => m.maxTokens).join('/');
  return {
    title: 'Tokens/s, slots busy and GPU/CPU % by concurrency',
    subtitle: `${r.run.model} · ${s.layout.instances} × ${s.layout.slotsPerInstance} slots · max_tokens ${tokens} · ${e.cpuModel}, ${e.cores} cores${e.gpus.length ? ` · ${e.gpus.join(', ')}` : ' · no GPU'}`,
    xLabel: 'concurrent requests',
    x: xs,
    top: { yLabel: 'generated tokens / s', series: top, labelFirst: true },
    bottom: { yLabel: '% (slots, CPU of all cores)', series: bottom, yMax: 100 },
    caption: [
      'Bottom panel, daemon runs: "slots in use" from each request\'s start and end time (exact); the others are means',
      'of /api/status polls every 250 ms, i.e. what the daemon shows. CPU % is of all host cores (100 % = every core busy).',
    ],
  };
}
