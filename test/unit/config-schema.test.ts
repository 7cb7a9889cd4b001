// schema/config.schema.json is generated from daemon/config/rules.ts: the committed file must be what
// the rules generate, `npm run schema` must refresh a stale copy, and every key in the tables (including
// keys added later) must be checked the same way by the parser and by the schema.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Ajv2020 from 'ajv/dist/2020';
import { afterAll, describe, expect, it } from 'vitest';
import { describeValue } from '../../shared/errors';
import { MODEL, TOP } from '../../daemon/config/rules';
import { configSchema, configSchemaText } from '../../daemon/config/schema';
import { parseConfig } from '../../daemon/config/validate';
import { isGroup, type Field, type Group } from '../../daemon/config/value-rules';

const root = fileURLToPath(new URL('../../', import.meta.url));
const schemaFile = join(root, 'schema/config.schema.json');
const script = join(root, 'daemon/config/write-schema.mjs');
const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'slotwise-schema-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const validate = new Ajv2020({ strict: true, allErrors: true }).compile(configSchema());
const parse = (raw: unknown) => parseConfig(raw, { baseDir: '/cfg', source: '/cfg/config.json', checkFiles: false });

/** [key path, field, config holding `value` at that key] for every plain key of a table, nested ones included. */
function leaves(group: Group<unknown>, path: string[]): [string[], Field<unknown>][] {
  return (Object.entries(group.fields) as [string, Field<unknown> | Group<unknown>][]).flatMap(([name, entry]) =>
    isGroup(entry) ? leaves(entry, [...path, name]) : [[[...path, name], entry] as [string[], Field<unknown>]],
  );
}
const KEYS = [
  ...leaves({ description: '', fields: TOP }, []),
  ...leaves(MODEL, ['models', 'coder']).filter(([path]) => path.at(-1) !== 'path'),
];
/** `{ models: { coder: { path } } }` with `value` set at `path`. */
function withValue(path: string[], value: unknown): Record<string, unknown> {
  const raw: Record<string, unknown> = { models: { coder: { path: 'm.gguf' } } };
  let obj = raw;
  for (const key of path.slice(0, -1)) obj = (obj[key] ??= {}) as Record<string, unknown>;
  obj[path.at(-1) ?? ''] = value;
  return raw;
}

describe('generated schema', () => {
  it('the committed schema is the one the rules generate (run npm run schema after changing rules.ts)', () => {
    expect(readFileSync(schemaFile, 'utf8')).toBe(configSchemaText());
  });

  it('npm run schema reports a stale file with --check and rewrites it without', async () => {
    const stale = join(tmp, 'config.schema.json');
    writeFileSync(stale, '{}\n');
    const checked = await run(process.execPath, [script, '--check', stale]).catch((err: { code: number; stderr: string }) => err);
    expect(checked).toMatchObject({ code: 1, stderr: expect.stringContaining('is out of date with daemon/config/rules.ts — run npm run schema') });
    expect(readFileSync(stale, 'utf8')).toBe('{}\n');
    await run(process.execPath, [script, stale]);
    expect(readFileSync(stale, 'utf8')).toBe(configSchemaText());
    await expect(run(process.execPath, [script, '--check', stale])).resolves.toMatchObject({ stdout: expect.stringContaining('is up to date') });
  }, 30_000);

  it('covers every key of the tables', () => {
    expect(KEYS.length).toBeGreaterThan(20);
  });

  it.each(KEYS.map(([path, field]) => [path.join('.'), path, field] as const))(
    '%s: its default passes, a wrong type fails in parser and schema alike',
    (key, path, field) => {
      if (field.def !== undefined && typeof field.def !== 'function') {
        expect(field.rule.ok(field.def)).toBe(true);
        expect(validate(withValue(path, field.def)), JSON.stringify(validate.errors)).toBe(true);
      }
      // An object is the wrong type for every key but those whose value is an object (listen.tls): give those a string.
      const wrong = field.rule.schema.type === 'object' ? 'wrong' : { wrong: true };
      const raw = withValue(path, wrong);
      expect(validate(raw)).toBe(false);
      expect(() => parse(raw)).toThrow(`config.json: ${key} must be ${field.rule.expected(wrong)}, got ${describeValue(wrong)} — ${field.hint}`);
    },
  );
});
