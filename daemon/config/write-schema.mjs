// `npm run schema`: writes schema/config.schema.json (or the file named) from daemon/config/schema.ts.
// Node 20 cannot run TypeScript, so esbuild bundles the generator in memory first.
// `--check`: write nothing, exit 1 when the file differs from what the rules generate.
import { build } from 'esbuild';
import { readFileSync, writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const check = args.includes('--check');
const file = args.find((a) => a !== '--check') ?? fileURLToPath(new URL('../../schema/config.schema.json', import.meta.url));

const bundle = await build({
  entryPoints: [fileURLToPath(new URL('schema.ts', import.meta.url))],
  bundle: true,
  platform: 'node',
  format: 'esm',
  write: false,
  logLevel: 'warning',
});
const code = bundle.outputFiles[0].text;
const { configSchemaText } = await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);
const text = configSchemaText();
const shown = relative(process.cwd(), file);
let current;
try {
  current = readFileSync(file, 'utf8');
} catch {
  current = undefined; // a new file
}
if (current === text) {
  console.log(`${shown} is up to date`);
} else if (check) {
  console.error(`${shown} is out of date with daemon/config/rules.ts — run npm run schema`);
  process.exit(1);
} else {
  writeFileSync(file, text);
  console.log(`wrote ${shown}`);
}
