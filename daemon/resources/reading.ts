// One reading printed by nvidia-smi or rocm-smi: a number, a placeholder for "not available", or garbage.
// Placeholders are legitimate (a GeForce without power sensing, a secondary die) and must not become
// warnings; garbage means we misread the tool and must.

/** A parsed reading: the number, `'missing'` for a known placeholder, `'invalid'` for anything else. */
export type Reading = number | 'missing' | 'invalid';

// Seen in the wild: `[N/A]` (drivers ≥ 440), `N/A`, `[Not Supported]` (older drivers), `[Unknown Error]`,
// `[Insufficient Permissions]`, `[GPU is lost]`; rocm-smi: `N/A`, `N/A (Secondary die)`. See test/fixtures/gpu/SOURCES.md.
const PLACEHOLDER = /^\[?\s*(n\/a|not supported|unknown error|insufficient permissions|gpu is lost|unknown)\b/i;

export function parseReading(raw: unknown): Reading {
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : 'invalid';
  if (raw === undefined || raw === null) return 'missing';
  if (typeof raw !== 'string') return 'invalid';
  const text = raw.trim();
  if (text === '' || PLACEHOLDER.test(text)) return 'missing';
  const n = Number(text);
  return Number.isFinite(n) ? n : 'invalid';
}

/** The number, or undefined for a placeholder or garbage (callers that must tell them apart use parseReading). */
export function readingOrUndefined(raw: unknown): number | undefined {
  const r = parseReading(raw);
  return typeof r === 'number' ? r : undefined;
}
