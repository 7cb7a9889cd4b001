// Unknown keys: each gets the key it was renamed to, the nearest known key, or the list of known keys.
import { fail, joinKey, type Ctx } from './report';
import { RENAMED } from './rules';

export function rejectUnknown(ctx: Ctx, prefix: string, obj: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (allowed.includes(key)) continue;
    // Own keys only: JSON.parse makes "__proto__" an own key, and RENAMED["__proto__"] is Object.prototype.
    const renamed = Object.hasOwn(RENAMED, key) ? RENAMED[key] : undefined;
    const near = closest(key, allowed);
    const fix =
      renamed !== undefined && allowed.includes(renamed.split('.')[0] ?? '')
        ? `use "${joinKey(prefix, renamed)}" instead`
        : near !== undefined
          ? `did you mean "${joinKey(prefix, near)}"?`
          : `remove it (known keys: ${allowed.join(', ')})`;
    fail(ctx, `unknown key "${joinKey(prefix, key)}" — ${fix}`);
  }
}

/** The allowed key nearest to a typo by edit distance, ignoring case, `-` and `_`; undefined when none is close. */
export function closest(key: string, allowed: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const a = norm(key);
    const b = norm(candidate);
    const d = editDistance(a, b);
    if (d < bestDistance && d <= Math.max(2, Math.floor(Math.max(a.length, b.length) / 3))) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
