// What a config value may be. Each rule checks a value, says what a valid one looks like (for the
// error message) and describes itself as JSON Schema, so schema/config.schema.json is generated from
// the same tables that validate (daemon/config/schema.ts) and cannot drift from them.

/** A JSON Schema (draft 2020-12) fragment. */
export type JsonSchema = Record<string, unknown>;

export interface Rule<T> {
  ok(value: unknown): value is T;
  /** What a valid value looks like (`an integer >= 1`); may depend on the bad value. */
  expected(value: unknown): string;
  /** The same constraint for editors; it may be stricter than `ok` where validate.ts adds a better message. */
  schema: JsonSchema;
  /** For arrays: checked per element so the message names `key[i]`. */
  item?: Rule<unknown>;
}

/** One key: its rule, default, the fix shown after "—" in errors, and the description editors show. */
export interface Field<T> {
  rule: Rule<T>;
  /**
   * Used when the key is absent; a function computes it from the keys of the same object read before it
   * (the schema then shows no default). No `def`: the key is `required`, or optional and left out.
   */
  def?: T | ((siblings: Record<string, unknown>) => T);
  /** Absent is an error: "`key` is required — hint". */
  required?: true;
  /** The fix, appended after "—". */
  hint: string;
  description: string;
  examples?: unknown[];
}

/** A nested object of keys, e.g. `listen`. */
export interface Group<T> {
  description: string;
  fields: Shape<T>;
}

/** A table of keys for the object type T, in the order the keys are checked and listed. */
export type Shape<T> = { [K in keyof T]-?: Entry<T[K]> };
type Entry<V> = [V] extends [readonly unknown[]] ? Field<V> : [V] extends [object] ? Field<V> | Group<V> : Field<V>;

export function isGroup(entry: Field<unknown> | Group<unknown>): entry is Group<unknown> {
  return 'fields' in entry;
}

// setTimeout treats larger delays as 1 ms, so no duration may exceed it.
const MAX_TIMER_MS = 2_147_483_647;

const isInt = (v: unknown): v is number => Number.isInteger(v);

/** `a, b or c`. */
function list(items: readonly string[]): string {
  return items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

export function int(min: number, max?: number): Rule<number> {
  return {
    ok: (v): v is number => isInt(v) && v >= min && (max === undefined || v <= max),
    // Name the bound that was crossed; for a non-integer, the whole range.
    expected: (v) => {
      if (isInt(v) && v > min) return `an integer <= ${max}`;
      return isInt(v) || max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    },
    schema: { type: 'integer', minimum: min, ...(max === undefined ? {} : { maximum: max }) },
  };
}

/** A duration in milliseconds that setTimeout can honour. */
export const ms = (min: number): Rule<number> => int(min, MAX_TIMER_MS);

/** A string matching `pattern` (a JSON Schema regex, so no flags); any string when there is none. */
export function text(expected: string, pattern?: string): Rule<string> {
  const re = pattern === undefined ? undefined : new RegExp(pattern);
  return {
    ok: (v): v is string => typeof v === 'string' && (re === undefined || re.test(v)),
    expected: () => expected,
    schema: pattern === undefined ? { type: 'string' } : { type: 'string', pattern },
  };
}

/** One of a few string literals, e.g. `"slot-aware" or "round-robin"`. */
export function oneOf<T extends string>(literals: readonly T[]): Rule<T> {
  return {
    ok: (v): v is T => literals.includes(v as T),
    expected: () => list(literals.map((l) => `"${l}"`)),
    schema: { enum: [...literals] },
  };
}

/** String literals or a number, e.g. `"auto", "all" or an integer >= 0`. */
export function literalOr<T extends string>(literals: readonly T[], num: Rule<number>): Rule<T | number> {
  return {
    ok: (v): v is T | number => literals.includes(v as T) || num.ok(v),
    expected: (v) => list([...literals.map((l) => `"${l}"`), num.expected(typeof v === 'number' ? v : NaN)]),
    schema: { anyOf: [literals.length === 1 ? { const: literals[0] } : { enum: [...literals] }, num.schema] },
  };
}

export function arrayOf<T>(item: Rule<T>, expected: string): Rule<T[]> {
  return {
    ok: (v): v is T[] => Array.isArray(v) && v.every((x) => item.ok(x)),
    expected: () => expected,
    schema: { type: 'array', items: item.schema },
    item,
  };
}

export const bool: Rule<boolean> = {
  ok: (v): v is boolean => typeof v === 'boolean',
  expected: () => 'true or false',
  schema: { type: 'boolean' },
};
export const nonEmpty = text('a non-empty string', '\\S');
export const anyString = text('a string');
