// Packages the .vsix from a staging dir (.tmp/vsix) holding only the bundles, the schema, the icon and
// the manifest. Staging, because package.json's "files" (for the npm CLI package) and .vscodeignore
// cannot both be seen by vsce; the staged manifest drops "files" and .vscodeignore decides.
//   node extension/package-vsix.mjs [--out PATH]   (after `npm run build`; `npm run package` does both)
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outArg = process.argv.indexOf('--out');
const out = resolve(outArg > 0 ? process.argv[outArg + 1] : join(root, 'slotwise.vsix'));
const stage = join(root, '.tmp', 'vsix');

const files = [
  'LICENSE',
  '.vscodeignore',
  'dist/extension.js',
  'dist/cli.js',
  'schema/config.schema.json',
  'extension/media/slotwise.svg',
  ...readdirSync(join(root, 'dist/webview'))
    .filter((f) => f.endsWith('.js') || f.endsWith('.css'))
    .map((f) => `dist/webview/${f}`),
];
for (const f of ['dist/extension.js', 'dist/cli.js', 'dist/webview/gpu.js']) {
  if (!existsSync(join(root, f))) throw new Error(`${f} is missing: run \`npm run build\` first`);
}

rmSync(stage, { recursive: true, force: true });
for (const f of files) {
  mkdirSync(dirname(join(stage, f)), { recursive: true });
  copyFileSync(join(root, f), join(stage, f));
}
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
delete manifest.files;
delete manifest.scripts; // nothing to run at package time: the bundles are built already
writeFileSync(join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
writeFileSync(
  join(stage, 'README.md'),
  `# ${manifest.displayName}\n\n${manifest.description}\n\nOpen the Slotwise view in the activity bar; the status bar shows busy/total slots. Commands are under "Slotwise:" in the Command Palette.\n`,
);

const vsce = join(root, 'node_modules', '@vscode', 'vsce', 'vsce');
mkdirSync(dirname(out), { recursive: true });
execFileSync(process.execPath, [vsce, 'package', '--no-dependencies', '--allow-missing-repository', '--out', out], { cwd: stage, stdio: 'inherit' });
process.stdout.write(`${out} (${(statSync(out).size / 1024).toFixed(0)} KiB)\n`);
