// The tiny model's variants (fim, embedding, rerank) and the FIM token lookup the daemon decides /infill by.
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGgufHeader, type GgufValue } from '../../gguf/gguf';
import { fimTokens } from '../../gguf/fim';
import { endOfGenerationIds, TINY_KIND_SPEC, tinyVocabPath, writeTinyModel } from '../../gguf/tiny-model';
import { vocabPath } from '../helpers/vocab';

const VOCAB = vocabPath();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slotwise-tiny-kinds-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const tokens = (...texts: string[]): [string, GgufValue] => ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: texts }];
const u32 = (value: number): GgufValue => ({ type: 'uint32', value });

describe('fimTokens', () => {
  it('reads the fim_*_token_id keys', () => {
    const meta = new Map<string, GgufValue>([
      tokens('a', 'b'),
      ['tokenizer.ggml.fim_pre_token_id', u32(7)],
      ['tokenizer.ggml.fim_suf_token_id', u32(8)],
      ['tokenizer.ggml.fim_mid_token_id', u32(9)],
    ]);
    expect(fimTokens(meta)).toEqual({ pre: 7, suf: 8, mid: 9 });
  });

  it('reads the older prefix/suffix/middle keys', () => {
    const meta = new Map<string, GgufValue>([
      ['tokenizer.ggml.prefix_token_id', u32(1)],
      ['tokenizer.ggml.suffix_token_id', u32(2)],
      ['tokenizer.ggml.middle_token_id', u32(3)],
    ]);
    expect(fimTokens(meta)).toEqual({ pre: 1, suf: 2, mid: 3 });
  });

  it('finds the tokens by their text as llama.cpp does (Qwen, StarCoder spellings)', () => {
    expect(fimTokens(new Map([tokens('x', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>')]))).toEqual({ pre: 1, suf: 3, mid: 2 });
    expect(fimTokens(new Map([tokens('<fim_suffix>', '<fim_prefix>', '<fim_middle>')]))).toEqual({ pre: 1, suf: 0, mid: 2 });
  });

  it('is undefined when any of the three is missing', () => {
    expect(fimTokens(new Map([tokens('<|fim_prefix|>', '<|fim_suffix|>')]))).toBeUndefined();
    expect(fimTokens(new Map())).toBeUndefined();
  });
});

/** Row `row` of an F32 tensor [dim, n] in a written file. */
async function tensorRow(path: string, name: string, row: number): Promise<Float32Array> {
  const h = await readGgufHeader(path);
  const t = h.tensors.find((x) => x.name === name)!;
  const dim = t.dims[0]!;
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(dim * 4);
    await fh.read(buf, 0, buf.length, h.dataOffset + t.offset + row * dim * 4);
    return new Float32Array(buf.buffer, buf.byteOffset, dim);
  } finally {
    await fh.close();
  }
}

describe('endOfGenerationIds', () => {
  it('takes the eos/eot/eom and FIM ids, control tokens and the end-of-turn texts llama.cpp ends at', () => {
    const vocab = new Map<string, GgufValue>([
      tokens('<unk>', '<s>', '</s>', 'hello', '<|im_end|>', 'world', '<|fim_pad|>', '<end_of_turn>'),
      ['tokenizer.ggml.token_type', { type: 'array', itemType: 'int32', value: [2, 3, 3, 1, 1, 1, 1, 1] } as GgufValue],
      ['tokenizer.ggml.eos_token_id', u32(2)],
      ['tokenizer.ggml.fim_pad_token_id', u32(6)],
      ['tokenizer.ggml.bos_token_id', u32(1)],
    ]);
    expect([...endOfGenerationIds(vocab)].sort((a, b) => a - b)).toEqual([1, 2, 4, 6, 7]);
  });
});

describe.skipIf(!VOCAB)('tiny model kinds', () => {
  it('zeroes the output rows of the end-of-generation tokens, and only those', async () => {
    const out = join(dir, 'eog.gguf');
    await writeTinyModel(out, { vocabPath: VOCAB! });
    const h = await readGgufHeader(out);
    const eog = endOfGenerationIds(h.metadata);
    const eos = Number(h.metadata.get('tokenizer.ggml.eos_token_id')!.value);
    expect(eog.has(eos)).toBe(true);
    for (const id of eog) expect((await tensorRow(out, 'output.weight', id)).every((w) => w === 0)).toBe(true);
    const word = (h.metadata.get('tokenizer.ggml.tokens')!.value as string[]).indexOf('▁the');
    expect(eog.has(word)).toBe(false);
    expect((await tensorRow(out, 'output.weight', word)).some((w) => w !== 0)).toBe(true);
    // The input embedding of EOS is untouched: only what the model may emit changed.
    expect((await tensorRow(out, 'token_embd.weight', eos)).some((w) => w !== 0)).toBe(true);
  });

  it('--fim: a coder vocab whose FIM ids are written as keys', async () => {
    const out = join(dir, 'fim.gguf');
    await writeTinyModel(out, { vocabPath: tinyVocabPath(VOCAB!, 'fim') });
    const h = await readGgufHeader(out);
    const fim = fimTokens(h.metadata);
    expect(fim).toBeDefined();
    expect(h.metadata.get('tokenizer.ggml.fim_pre_token_id')).toEqual({ type: 'uint32', value: fim!.pre });
    expect(h.metadata.get('tokenizer.ggml.fim_mid_token_id')).toEqual({ type: 'uint32', value: fim!.mid });
    const texts = h.metadata.get('tokenizer.ggml.tokens')!.value as string[];
    expect(texts[fim!.pre]).toBe('<｜fim▁begin｜>');
    expect(h.metadata.has('llama.pooling_type')).toBe(false);
  });

  it('the default vocab has no FIM tokens', async () => {
    const out = join(dir, 'plain.gguf');
    await writeTinyModel(out, { vocabPath: VOCAB! });
    expect(fimTokens((await readGgufHeader(out)).metadata)).toBeUndefined();
  });

  it.each([
    ['embedding', 1],
    ['rerank', 4],
  ] as const)('%s: llama.pooling_type %i', async (kind, poolingType) => {
    const out = join(dir, `${kind}.gguf`);
    await writeTinyModel(out, { vocabPath: tinyVocabPath(VOCAB!, kind), pooling: TINY_KIND_SPEC[kind].pooling });
    expect((await readGgufHeader(out)).metadata.get('llama.pooling_type')).toEqual({ type: 'uint32', value: poolingType });
  });
});
