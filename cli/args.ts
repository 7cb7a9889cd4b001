// Reading the command line's option values: one usage error (exit 2) per bad value, naming the option.
import { SlotwiseError } from '../shared/errors';

/**
 * A whole number given in plain decimal (`-5` included), from min to max: `0x1EEF`, `1e3`, `1.0` and
 * an empty value are not numbers here, as they are to Number().
 */
export function intValue(option: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new SlotwiseError('SW_ERR_USAGE', `${option} needs ${range('an integer', min, max)}, got ${shown(raw)}`);
  return n;
}

/** A decimal number (`0.7`, `-1`, `.5`), from min to max; no hex, exponent or blank. */
export function numberValue(option: string, raw: string, min: number, max: number): number {
  const n = /^-?(\d+\.?\d*|\.\d+)$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max) throw new SlotwiseError('SW_ERR_USAGE', `${option} needs ${range('a number', min, max)}, got ${shown(raw)}`);
  return n;
}

function range(kind: string, min: number, max: number): string {
  return max === Number.MAX_SAFE_INTEGER ? `${kind} of at least ${min}` : `${kind} from ${min} to ${max}`;
}

/** The value as typed: bare when it is a plain word or number, else quoted (so an empty one shows). */
function shown(raw: string): string {
  return /^[\w.+-]+$/.test(raw) ? raw : JSON.stringify(raw);
}
