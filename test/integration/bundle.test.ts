// What esbuild.mjs puts into the bundles beyond the sources: ws's optional `bufferutil` is our
// word-at-a-time mask (platform/ws-mask.ts), not the byte loop ws falls back to without it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const DIST = join(__dirname, '..', '..', 'dist');

describe('bundles', () => {
  it.each(['cli.js', 'extension.js'])('%s gives ws platform/ws-mask.ts as its bufferutil', (file) => {
    const text = readFileSync(join(DIST, file), 'utf8');
    expect(text).toMatch(/const bufferUtil = \(init_ws_mask\(\), __toCommonJS\(ws_mask_exports\)\);/);
    expect(text).toContain('// platform/ws-mask.ts');
  });
});
