// Number formatters shared by the daemon's messages, the CLI and the extension's views.

export interface ByteStyle {
  /** Powers of 1000 with kB/MB/GB (sizes as a download page states them); default powers of 1024 with KiB/MiB/GiB. */
  decimal?: boolean;
  /** Decimals, always shown (`1.0 MiB`); default one below 100 and none from 100 (`3.2 GiB`, `812 MiB`). */
  digits?: number;
  /** Drop trailing zeros of the decimals: `1 MiB`, `1.5 MiB`. */
  trim?: boolean;
}

const BINARY = ['KiB', 'MiB', 'GiB', 'TiB'];
const DECIMAL = ['kB', 'MB', 'GB', 'TB'];

/** `512 B`, `3.2 MiB`, `812 MiB`, `7.9 GiB`; see ByteStyle for decimal units and fixed decimals. */
export function formatBytes(bytes: number, style: ByteStyle = {}): string {
  const base = style.decimal ? 1000 : 1024;
  if (!Number.isFinite(bytes) || bytes < base) return `${Math.max(0, Math.round(bytes || 0))} B`;
  const units = style.decimal ? DECIMAL : BINARY;
  let v = bytes / base;
  let i = 0;
  while (v >= base && i < units.length - 1) {
    v /= base;
    i++;
  }
  const text = v.toFixed(style.digits ?? (v >= 100 ? 0 : 1));
  return `${style.trim ? Number(text) : text} ${units[i]}`;
}

/** A MiB figure (GPU tools report those) in the same style: `812 MiB`, `3.2 GiB`. */
export function formatMiB(mib: number, style?: ByteStyle): string {
  return formatBytes(mib * 1024 * 1024, style);
}

/** `850 ms`, `12.3 s`, `4m 05s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
}
