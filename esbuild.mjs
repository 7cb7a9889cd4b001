// Bundles the three artefacts: the CLI/daemon (node), the extension host (cjs, vscode external)
// and the webview scripts (browser). One config so `npm run build` and the .vsix agree.
import { build, context } from 'esbuild';
import { readdirSync, existsSync, mkdirSync } from 'node:fs';

const watch = process.argv.includes('--watch');
const common = { bundle: true, sourcemap: 'linked', logLevel: 'warning', legalComments: 'none' };
// ws looks for the optional native `bufferutil` to mask frames; ours is plain TypeScript (platform/ws-mask.ts).
const wsMask = { bufferutil: './platform/ws-mask.ts' };

const targets = [
  {
    ...common,
    entryPoints: { cli: 'cli/main.ts' },
    outdir: 'dist',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    alias: wsMask,
    banner: { js: '#!/usr/bin/env node' },
  },
];
if (existsSync('extension/extension.ts')) {
  targets.push({
    ...common,
    entryPoints: { extension: 'extension/extension.ts' },
    outdir: 'dist',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    alias: wsMask,
    external: ['vscode'],
  });
}
const webviewDir = 'extension/webview';
if (existsSync(webviewDir)) {
  const entries = readdirSync(webviewDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
  if (entries.length) {
    targets.push({
      ...common,
      entryPoints: entries.map((f) => `${webviewDir}/${f}`),
      outdir: 'dist/webview',
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
    });
  }
}

mkdirSync('dist', { recursive: true });
if (watch) {
  for (const t of targets) await (await context(t)).watch();
} else {
  await Promise.all(targets.map((t) => build(t)));
}
