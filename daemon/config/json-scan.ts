// The strict JSON scanner for config text. JSON.parse keeps the last of duplicate keys and its messages differ between Node
// versions and often lack a position, so this strict scanner finds syntax errors (with a fix),
// duplicate keys and the file order of `models` before JSON.parse builds the value.

export interface JsonScan {
  /** The first duplicate key; `at` is its offset. */
  duplicate?: { path: string[]; key: string; at: number };
  /** Keys of the top-level `models` object in file order. */
  modelKeys?: string[];
}

export class JsonTextError extends Error {
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(message);
  }
}

/** Throws JsonTextError at the first syntax error; a duplicate key is reported, not thrown. */
export function scanJson(body: string): JsonScan {
  const scan: JsonScan = {};
  let i = 0;
  const fail = (message: string, at = i): never => {
    throw new JsonTextError(message, at);
  };
  const ws = () => {
    while (i < body.length && ' \t\n\r'.includes(body.charAt(i))) i++;
  };
  const found = (): string => {
    const m = /"[^"\n]*"?|[\w.+-]+|[^]/y;
    m.lastIndex = i;
    const tok = m.exec(body)?.[0] ?? '';
    return `\`${tok.length > 30 ? `${tok.slice(0, 30)}…` : tok}\``;
  };
  const expected = (what: string, hint = ''): never => {
    const c = body.charAt(i);
    if (i >= body.length) return fail(`unexpected end of file, expected ${what} — is a closing } or ] missing?`);
    if (c === '/') return fail('comments are not allowed in JSON — remove the comment');
    if (c === "'") return fail(`expected ${what}, got ' — JSON strings and keys need double quotes`);
    return fail(`expected ${what}, got ${found()}${hint}`);
  };
  const string = (): string => {
    const start = i++;
    for (;;) {
      const c = body.charCodeAt(i);
      if (Number.isNaN(c)) return fail('unterminated string — add the closing "', start);
      if (c === 0x22) break;
      if (c === 0x0a) fail('line break inside a string — close the string with " or write \\n');
      if (c < 0x20) fail('control character inside a string — escape it as \\u00XX');
      if (c === 0x5c) {
        const esc = /\\(["\\/bfnrt]|u[0-9a-fA-F]{4})/y;
        esc.lastIndex = i;
        if (!esc.test(body)) fail(`invalid escape \`${body.slice(i, i + 2)}\` in a string — write \\\\ for a backslash`);
        i = esc.lastIndex;
      } else i++;
    }
    i++;
    const value: unknown = JSON.parse(body.slice(start, i));
    return String(value);
  };
  const value = (path: string[]): void => {
    ws();
    const c = body.charAt(i);
    if (path.length > 64) fail('nesting is too deep — a config needs at most a few levels');
    if (c === '{') return object(path);
    if (c === '[') return array(path);
    if (c === '"') return void string();
    const word = /[\w.+-]+/y;
    word.lastIndex = i;
    const w = word.exec(body)?.[0];
    if (w === undefined) return expected('a value');
    if (!/^(true|false|null|-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?)$/.test(w)) {
      fail(`invalid value \`${w}\` — use a number, a "string", true, false or null`);
    }
    i += w.length;
  };
  // After a comma: a closing bracket means a trailing comma, reported at the comma.
  const afterComma = (close: string): void => {
    const comma = i++;
    ws();
    if (body.charAt(i) === close) fail(`trailing comma before ${close} — remove the comma`, comma);
  };
  const object = (path: string[]): void => {
    i++;
    const keys = new Set<string>();
    const order: string[] = [];
    if (path.length === 1 && path[0] === 'models') scan.modelKeys = order;
    ws();
    if (body.charAt(i) === '}') return void i++;
    for (;;) {
      ws();
      if (body.charAt(i) !== '"') expected('a "key" in double quotes');
      const at = i;
      const key = string();
      if (keys.has(key)) scan.duplicate ??= { path, key, at };
      keys.add(key);
      order.push(key);
      ws();
      if (body.charAt(i) !== ':') expected(`":" after "${key}"`);
      i++;
      value([...path, key]);
      ws();
      if (body.charAt(i) === '}') return void i++;
      if (body.charAt(i) !== ',') expected('"," or "}"', ' — is a comma missing?');
      afterComma('}');
    }
  };
  const array = (path: string[]): void => {
    i++;
    ws();
    if (body.charAt(i) === ']') return void i++;
    for (let n = 0; ; n++) {
      value([...path, String(n)]);
      ws();
      if (body.charAt(i) === ']') return void i++;
      if (body.charAt(i) !== ',') expected('"," or "]"', ' — is a comma missing?');
      afterComma(']');
    }
  };
  if (!body.trim()) fail('the file is empty — write {} to use the defaults', 0);
  value([]);
  ws();
  if (i < body.length) fail(`unexpected ${found()} after the end of the config — remove it`);
  return scan;
}

/** `line:column` (both from 1) of offset `at` in `body`. */
export function lineCol(body: string, at: number): string {
  const before = body.slice(0, at);
  return `${before.split('\n').length}:${at - before.lastIndexOf('\n')}`;
}
