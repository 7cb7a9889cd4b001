// Small checks for request params (JSON-RPC and HTTP bodies). Messages name where, which key,
// what was expected and what came: `prompt.submit: "maxTokens" must be an integer >= 1, got the string "x"`.
import { SlotwiseError, describeValue } from '../../shared/errors';

export type Obj = Record<string, unknown>;

export function asObject(value: unknown, where: string): Obj {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: expected a JSON object, got ${describeValue(value)}`);
  }
  return value as Obj;
}

function bad(where: string, key: string, expected: string, got: unknown): SlotwiseError {
  return new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "${key}" must be ${expected}, got ${describeValue(got)}`);
}

export function optString(o: Obj, key: string, where: string): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(where, key, 'a string', v);
  return v;
}

export function reqString(o: Obj, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') throw bad(where, key, 'a non-empty string', v);
  return v;
}

export interface NumberRange {
  min?: number;
  max?: number;
  integer?: boolean;
  /** Where the bound comes from, appended in parentheses: `the model's context per slot, …`. */
  why?: string;
}

export function optNumber(o: Obj, key: string, where: string, range: NumberRange = {}): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (!range.integer || Number.isInteger(v)) &&
    (range.min === undefined || v >= range.min) &&
    (range.max === undefined || v <= range.max);
  if (!ok) throw bad(where, key, expectedNumber(range), v);
  return v;
}

/** "an integer from 1 to 512 (why)": built only for the error (optNumber runs on every field of every request). */
function expectedNumber(range: NumberRange): string {
  const kind = range.integer ? 'an integer' : 'a number';
  const bounds =
    range.min !== undefined && range.max !== undefined
      ? `from ${range.min} to ${range.max}`
      : [range.min !== undefined ? `>= ${range.min}` : '', range.max !== undefined ? `<= ${range.max}` : ''].filter(Boolean).join('');
  return (bounds ? `${kind} ${bounds}` : kind) + (range.why ? ` (${range.why})` : '');
}

export function optBoolean(o: Obj, key: string, where: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(where, key, 'true or false', v);
  return v;
}

export function optStringArray(o: Obj, key: string, where: string): string[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(where, key, 'a string or an array of strings', v);
  return v as string[];
}

/** Deepest nesting accepted in a request; real requests nest a handful of levels. */
export const MAX_DEPTH = 64;

/**
 * Refuses values nested deeper than MAX_DEPTH before anything walks them recursively (JSON.stringify,
 * llama-server's parser): 10,000 nested arrays fit in 20 KB. Iterative, so it cannot overflow itself.
 */
export function checkDepth(value: unknown, where: string): void {
  const stack: { v: unknown; path: string; depth: number }[] = [{ v: value, path: '', depth: 0 }];
  while (stack.length > 0) {
    const { v, path, depth } = stack.pop()!;
    if (!v || typeof v !== 'object') continue;
    if (depth >= MAX_DEPTH) {
      const shown = path.length > 60 ? `${path.slice(0, 60)}…` : path;
      throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: ${JSON.stringify(shown)} nests deeper than ${MAX_DEPTH} levels — flatten that field`);
    }
    if (Array.isArray(v)) v.forEach((x, i) => stack.push({ v: x, path: `${path}[${i}]`, depth: depth + 1 }));
    else for (const [k, x] of Object.entries(v)) stack.push({ v: x, path: path ? `${path}.${k}` : k, depth: depth + 1 });
  }
}
