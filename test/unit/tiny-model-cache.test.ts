// The cached tiny model (gguf/tiny-model.ts ensureCachedTinyModel): written under the writer's version,
// and the file an older writer left in models/ under the same name goes, nothing else there.
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readGgufHeader } from '../../gguf/gguf';
import { ensureCachedTinyModel } from '../../gguf/tiny-model';

// The llama.cpp source of this machine's cache (setup), lent to a cache of the test's own.
const LLAMA = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'slotwise', 'llama.cpp');
const cache = mkdtempSync(join(tmpdir(), 'slotwise-tiny-cache-'));
afterAll(() => rmSync(cache, { recursive: true, force: true }));

describe.skipIf(!existsSync(LLAMA) || process.env.SLOTWISE_VOCAB_GGUF)('ensureCachedTinyModel', () => {
  it('writes models/v2/NAME and removes the first writer’s models/NAME, leaving other files', async () => {
    symlinkSync(LLAMA, join(cache, 'llama.cpp'));
    const models = join(cache, 'models');
    mkdirSync(models);
    writeFileSync(join(models, 'tiny-d16-l1-s3.gguf'), 'written by the first writer');
    writeFileSync(join(models, 'tiny-mmproj-d32-t64-s1.gguf'), 'a projector, still in use');
    const env = { ...process.env, SLOTWISE_CACHE_DIR: cache };
    const path = await ensureCachedTinyModel({ env, dim: 16, layers: 1, seed: 3 });
    expect(path).toBe(join(models, 'v2', 'tiny-d16-l1-s3.gguf'));
    expect((await readGgufHeader(path)).metadata.get('general.name')).toEqual({ type: 'string', value: 'slotwise-tiny-d16-l1-s3' });
    expect(existsSync(join(models, 'tiny-d16-l1-s3.gguf'))).toBe(false);
    expect(existsSync(join(models, 'tiny-mmproj-d32-t64-s1.gguf'))).toBe(true);
    expect(await ensureCachedTinyModel({ env, dim: 16, layers: 1, seed: 3 })).toBe(path); // cached: found, not written again
  });
});
