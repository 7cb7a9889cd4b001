// `slotwise tiny-model --fim | --embedding | --rerank` (dist/cli.js): the variant's metadata is in the file.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readGgufHeader } from '../../gguf/gguf';
import { fimTokens } from '../../gguf/fim';
import { cli } from '../helpers/cli';
import { tempDir } from '../helpers/daemon';

describe('slotwise tiny-model variants', () => {
  it('--fim writes FIM token ids; --embedding and --rerank write the pooling type', async () => {
    const dir = tempDir('tiny-cli');
    const fim = await cli(['tiny-model', join(dir, 'fim.gguf'), '--fim']);
    expect(fim.code).toBe(0);
    expect(fim.stdout.trim()).toBe(join(dir, 'fim.gguf'));
    expect(fimTokens((await readGgufHeader(join(dir, 'fim.gguf'))).metadata)).toBeDefined();

    for (const [flag, pooling] of [['--embedding', 1], ['--rerank', 4]] as const) {
      const out = join(dir, `${flag.slice(2)}.gguf`);
      expect((await cli(['tiny-model', out, flag])).code).toBe(0);
      const h = await readGgufHeader(out);
      expect(h.metadata.get('llama.pooling_type')).toEqual({ type: 'uint32', value: pooling });
      expect(fimTokens(h.metadata)).toBeUndefined();
    }
  });

  it('refuses two variants at once with a usage error', async () => {
    const res = await cli(['tiny-model', join(tempDir('tiny-cli'), 'x.gguf'), '--fim', '--rerank']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/give one of --fim, --embedding, --rerank, not --fim and --rerank/);
  });
});
