// `slotwise tiny-model --fim | --embedding | --rerank | --tools | --mmproj` (dist/cli.js): the variant's metadata
// is in the file, and a projector written beside it fits the model's width.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readGgufHeader } from '../../gguf/gguf';
import { fimTokens } from '../../gguf/fim';
import { projectorFacts } from '../../daemon/memory/projector';
import { cli } from '../helpers/cli';
import { CLI, tempDir } from '../helpers/daemon';

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

  it('--tools writes a chat template with tool calls and the Qwen2 vocab its markers need', async () => {
    const out = join(tempDir('tiny-cli'), 'tools.gguf');
    expect((await cli(['tiny-model', out, '--tools'])).code).toBe(0);
    const meta = (await readGgufHeader(out)).metadata;
    const template = meta.get('tokenizer.chat_template')?.value as string;
    // What llama.cpp recognises Qwen3-Coder's XML tool calls by (common/chat.cpp).
    for (const marker of ['<tool_call>', '<function=', '<parameter=']) expect(template).toContain(marker);
    const texts = meta.get('tokenizer.ggml.tokens')!.value as string[];
    expect(texts).toContain('<|im_start|>');
    expect(texts).toContain('<|im_end|>');
  });

  it('--mmproj vision|audio writes a projector for the model beside it, as wide as the model', async () => {
    const dir = tempDir('tiny-cli');
    const res = await cli(['tiny-model', join(dir, 'ears.gguf'), '--dim', '96', '--mmproj', 'audio']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim().split('\n')).toEqual([join(dir, 'ears.gguf'), join(dir, 'ears-mmproj.gguf')]);
    expect(res.stderr).toContain('and its audio projector: give it as the model\'s "mmproj" in the config');
    const audio = await readGgufHeader(join(dir, 'ears-mmproj.gguf'));
    expect(projectorFacts(audio, 'ears-mmproj.gguf').modalities).toEqual(['audio']);
    expect(audio.metadata.get('clip.audio.projection_dim')).toEqual({ type: 'uint32', value: 96 });
    expect((await cli(['tiny-model', join(dir, 'eyes.gguf'), '--mmproj', 'vision'])).code).toBe(0);
    expect(projectorFacts(await readGgufHeader(join(dir, 'eyes-mmproj.gguf')), 'eyes-mmproj.gguf').modalities).toEqual(['vision']);

    const bad = await cli(['tiny-model', join(dir, 'x.gguf'), '--mmproj', 'smell']);
    expect([bad.code, bad.stderr.trim()]).toEqual([2, 'slotwise: --mmproj must be vision or audio, got "smell"']);
    const embed = await cli(['tiny-model', join(dir, 'x.gguf'), '--embedding', '--mmproj', 'vision']);
    expect(embed.code).toBe(2);
    expect(embed.stderr).toContain('--mmproj is for a model that generates text: not with --embedding');
    expect(readdirSync(dir).sort()).toEqual(['ears-mmproj.gguf', 'ears.gguf', 'eyes-mmproj.gguf', 'eyes.gguf']);
  });

  it('refuses two variants at once with a usage error', async () => {
    const res = await cli(['tiny-model', join(tempDir('tiny-cli'), 'x.gguf'), '--fim', '--rerank']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/give one of --fim, --embedding, --rerank, --tools, not --fim and --rerank/);
  });

  it('writes over a GGUF, but not over any other file, a directory, or a path under a file', async () => {
    const dir = tempDir('tiny-cli');
    const model = join(dir, 'm.gguf');
    expect((await cli(['tiny-model', model])).code).toBe(0);
    expect((await cli(['tiny-model', model, '--seed', '2'])).code).toBe(0); // a GGUF: regenerated
    const config = join(dir, 'config.json');
    writeFileSync(config, '{"models":{}}');
    const refused = [
      [config, `${config} exists and is not a GGUF file: not overwriting it`],
      [dir, `${dir} is a directory — give a file path, e.g. ${join(dir, 'tiny.gguf')}`],
      [join(config, 'x.gguf'), `cannot make the directory ${config}: a file is in the way`],
    ];
    for (const [path, message] of refused) {
      const r = await cli(['tiny-model', path!]);
      expect({ path, code: r.code }).toEqual({ path, code: 2 });
      expect(r.stderr).toContain(message);
    }
    expect(readFileSync(config, 'utf8')).toBe('{"models":{}}');
    const big = await cli(['tiny-model', join(dir, 'big.gguf'), '--dim', '100000']);
    expect(big.code).toBe(2);
    expect(big.stderr).toContain('--dim needs an integer from 1 to 4096, got 100000');
  });

  it('Ctrl-C while writing leaves no file and no temp file behind', async () => {
    const dir = tempDir('tiny-cli');
    mkdirSync(join(dir, 'out'));
    // Large enough to still be writing after a second.
    const child = spawn(process.execPath, [CLI, 'tiny-model', join(dir, 'out', 'big.gguf'), '--dim', '2048', '--layers', '24'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Interrupted once its temp file exists.
    for (let i = 0; i < 200 && readdirSync(join(dir, 'out')).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect(readdirSync(join(dir, 'out'))).toHaveLength(1);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(130);
    expect(stderr).toContain('tiny-model cancelled');
    expect(readdirSync(join(dir, 'out'))).toEqual([]);
  });
});
