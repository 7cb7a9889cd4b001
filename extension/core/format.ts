// Small number formatters shared by the status bar, the trees and the GPU view.

/** `512 B`, `3.2 MiB`, `7.9 GiB`. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 1024) return `${Math.max(0, Math.round(bytes || 0))} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** MiB as GiB with one decimal once it is large: `812 MiB`, `3.2 GiB`. */
export function formatMiB(mib: number): string {
  return formatBytes(mib * 1024 * 1024);
}

/** `850 ms`, `12.3 s`, `4m 05s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
}

/** Percent with no decimals, clamped to 0..100 for gauges (CPU % may exceed 100 on many cores: not clamped). */
export function formatPct(pct: number): string {
  return `${Math.round(pct)}%`;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Escapes text for a Markdown table cell or inline text (no links, no HTML, no pipes). */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_[\]()#|<>~]/g, (c) => `\\${c}`);
}
