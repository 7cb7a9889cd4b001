import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  encodeGgufHeader,
  ggmlTensorBytes,
  ggmlTypeName,
  layoutTensors,
  readGgufHeader,
  summarizeGguf,
  type GgufHeader,
  type GgufTensorInfo,
  type GgufValue,
} from '../../gguf/gguf';
import { writeTinyModel, type TinyModelOptions } from '../../gguf/tiny-model';
import { vocabPath } from '../helpers/vocab';

const VOCAB = vocabPath();
const NEEDS_VOCAB = VOCAB ? '' : ' [skipped: no llama.cpp vocab GGUF; set SLOTWISE_VOCAB_GGUF or run `slotwise setup`]';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slotwise-gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Raw little-endian pieces for hand-made (corrupt) files.
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: number | bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};
const str = (s: string): Buffer => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
const preamble = (tensors: number | bigint, kvs: number | bigint, version = 3): Buffer =>
  Buffer.concat([Buffer.from('GGUF'), u32(version), u64(tensors), u64(kvs)]);
const kvU32 = (key: string, value: number): Buffer => Buffer.concat([str(key), u32(4), u32(value)]);
const tensorInfo = (name: string, dims: number[], type: number, offset: number): Buffer =>
  Buffer.concat([str(name), u32(dims.length), ...dims.map(u64), u32(type), u64(offset)]);

async function writeTemp(name: string, bytes: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

describe('readGgufHeader rejects corrupt files with one clear line', () => {
  const dataHeader = (offset: number): Buffer =>
    Buffer.concat([preamble(1, 0), tensorInfo('w', [8], 0, offset), Buffer.alloc(7)]); // 57 bytes + pad to 64
  // `sparseSize` extends the file with a hole, to reach the length limits without writing 64 MB.
  const cases: { name: string; bytes: Buffer; sparseSize?: number; message: string }[] = [
    {
      name: 'bad-magic',
      bytes: Buffer.concat([Buffer.from([0x50, 0x4b, 0x03, 0x04]), Buffer.alloc(20)]),
      message: '[bad-magic.gguf] not a GGUF file (magic "PK\\x03\\x04", expected "GGUF")',
    },
    { name: 'empty', bytes: Buffer.alloc(0), message: '[empty.gguf] not a GGUF file (only 0 bytes)' },
    { name: 'two-bytes', bytes: Buffer.from('GG'), message: '[two-bytes.gguf] not a GGUF file (only 2 bytes)' },
    {
      name: 'v1',
      bytes: preamble(0, 0, 1),
      message: '[v1.gguf] unsupported GGUF version 1 (expected 2 or 3; v1 is obsolete, re-convert the model)',
    },
    {
      name: 'big-endian',
      bytes: preamble(0, 0, 0x03000000),
      message: '[big-endian.gguf] unsupported GGUF version 50331648 (expected 2 or 3; a big-endian file?)',
    },
    {
      name: 'short-header',
      bytes: preamble(0, 0).subarray(0, 12),
      message: '[short-header.gguf] truncated: header runs past the end of the file (size 12 B)',
    },
    {
      name: 'cut-in-key',
      bytes: Buffer.concat([preamble(0, 2), kvU32('a.b', 1), u64(20), Buffer.from('gener')]),
      message: '[cut-in-key.gguf] truncated: metadata key 1 runs past the end of the file (size 56 B)',
    },
    {
      name: 'cut-in-value',
      bytes: Buffer.concat([preamble(0, 1), str('general.alignment'), u32(4), Buffer.from([32, 0])]),
      message: '[cut-in-value.gguf] truncated: metadata value "general.alignment" runs past the end of the file (size 55 B)',
    },
    {
      name: 'cut-in-string',
      bytes: Buffer.concat([preamble(0, 1), str('general.name'), u32(8), u64(10), Buffer.from('abc')]),
      message: '[cut-in-string.gguf] truncated: metadata value "general.name" runs past the end of the file (size 59 B)',
    },
    {
      name: 'huge-string',
      bytes: Buffer.concat([preamble(0, 1), u64(2n ** 40n), Buffer.from('x')]),
      message:
        '[huge-string.gguf] corrupt: metadata key 0 claims a string of 1099511627776 bytes, more than the whole file (size 33 B)',
    },
    {
      name: 'string-over-limit',
      bytes: Buffer.concat([preamble(0, 1), u64(70_000_000)]),
      sparseSize: 80_000_000,
      message: '[string-over-limit.gguf] corrupt: metadata key 0 claims a string of 70000000 bytes (limit 67108864)',
    },
    {
      name: 'array-over-limit',
      bytes: Buffer.concat([preamble(0, 1), str('a'), u32(9), u32(0), u64(17_000_000)]),
      sparseSize: 20_000_000,
      message: '[array-over-limit.gguf] corrupt: metadata value "a" claims 17000000 array items (limit 16777216)',
    },
    {
      name: 'huge-kv-count',
      bytes: preamble(0, 1_000_000_000),
      message:
        '[huge-kv-count.gguf] corrupt: header claims 1000000000 metadata entries, more than fit in the file (size 24 B)',
    },
    {
      name: 'huge-tensor-count',
      bytes: preamble(2n ** 64n - 1n, 0),
      message:
        '[huge-tensor-count.gguf] corrupt: header claims 18446744073709551615 tensor infos, more than fit in the file (size 24 B)',
    },
    {
      name: 'unknown-type',
      bytes: Buffer.concat([preamble(0, 1), str('a.b'), u32(13), u32(0)]),
      message: '[unknown-type.gguf] corrupt: metadata value "a.b" has unknown type 13',
    },
    {
      name: 'unknown-item-type',
      bytes: Buffer.concat([preamble(0, 1), str('a.b'), u32(9), u32(42), u64(1), u32(0)]),
      message: '[unknown-item-type.gguf] corrupt: metadata value "a.b" has unknown type 42',
    },
    {
      name: 'nested-array',
      bytes: Buffer.concat([preamble(0, 1), str('a'), u32(9), u32(9), u64(1)]),
      message: '[nested-array.gguf] corrupt: metadata value "a" is an array of arrays, which GGUF does not allow',
    },
    {
      name: 'huge-array',
      bytes: Buffer.concat([preamble(0, 1), str('a'), u32(9), u32(4), u64(1_000_000)]),
      message: '[huge-array.gguf] corrupt: metadata value "a" claims 1000000 array items, more than fit in the file (size 49 B)',
    },
    {
      name: 'duplicate-key',
      bytes: Buffer.concat([preamble(0, 2), kvU32('a', 1), kvU32('a', 2)]),
      message: '[duplicate-key.gguf] corrupt: duplicate metadata key "a"',
    },
    {
      name: 'alignment-type',
      bytes: Buffer.concat([preamble(0, 1), str('general.alignment'), u32(5), u32(64)]),
      message: '[alignment-type.gguf] corrupt: general.alignment must be of type uint32, not int32',
    },
    {
      name: 'alignment-3',
      bytes: Buffer.concat([preamble(0, 1), kvU32('general.alignment', 3)]),
      message: '[alignment-3.gguf] corrupt: general.alignment 3 is not a power of 2',
    },
    {
      name: 'five-dims',
      bytes: Buffer.concat([preamble(1, 0), tensorInfo('w', [1, 1, 1, 1, 1], 0, 0)]),
      message: '[five-dims.gguf] corrupt: tensor "w" has 5 dimensions (at most 4)',
    },
    {
      name: 'cut-in-tensor-info',
      bytes: Buffer.concat([preamble(1, 0), str('w'), u32(2), u64(8)]),
      message: '[cut-in-tensor-info.gguf] truncated: tensor info "w" runs past the end of the file (size 45 B)',
    },
    {
      name: 'misaligned',
      bytes: Buffer.concat([dataHeader(4), Buffer.alloc(64)]),
      message: '[misaligned.gguf] corrupt: tensor "w" offset 4 is not a multiple of the alignment 32',
    },
    {
      name: 'cut-data',
      bytes: Buffer.concat([dataHeader(0), Buffer.alloc(31)]),
      message:
        '[cut-data.gguf] truncated: tensor "w" data ends at 96 B, past the end of the file (size 95 B) — was the download interrupted?',
    },
  ];

  it.each(cases)('$name', async ({ name, bytes, sparseSize, message }) => {
    const path = await writeTemp(`${name}.gguf`, bytes);
    if (sparseSize) await truncate(path, sparseSize);
    await expect(readGgufHeader(path)).rejects.toMatchObject({ code: 'SW_ERR_GGUF_INVALID', message });
  });

  it('accepts the same tensor once its data is complete', async () => {
    const path = await writeTemp('full-data.gguf', Buffer.concat([dataHeader(0), Buffer.alloc(32)]));
    const header = await readGgufHeader(path);
    expect(header.tensors).toEqual([{ name: 'w', dims: [8], type: 0, offset: 0 }]);
    expect(header.dataOffset).toBe(64);
  });
});

describe('readGgufHeader: model file errors', () => {
  it('names a missing file, with the config key when the model is known', async () => {
    const path = join(dir, 'missing.gguf');
    await expect(readGgufHeader(path)).rejects.toMatchObject({
      code: 'SW_ERR_MODEL_FILE',
      message: `model file not found: ${path}`,
    });
    await expect(readGgufHeader(path, { model: 'coder' })).rejects.toMatchObject({
      code: 'SW_ERR_MODEL_FILE',
      message: `model file not found: ${path} — check models.coder.path`,
    });
  });

  it('refuses a directory', async () => {
    const path = join(dir, 'a-dir.gguf');
    await mkdir(path);
    await expect(readGgufHeader(path)).rejects.toMatchObject({
      code: 'SW_ERR_MODEL_FILE',
      message: `model path is not a file: ${path}`,
    });
  });

  it('stops on an aborted signal', async () => {
    const path = await writeTemp('abort.gguf', preamble(0, 0));
    const signal = AbortSignal.abort();
    await expect(readGgufHeader(path, { signal })).rejects.toBe(signal.reason);
  });
});

describe('encodeGgufHeader and readGgufHeader round-trip', () => {
  const everyType = new Map<string, GgufValue>([
    ['t.u8', { type: 'uint8', value: 255 }],
    ['t.i8', { type: 'int8', value: -128 }],
    ['t.u16', { type: 'uint16', value: 65535 }],
    ['t.i16', { type: 'int16', value: -32768 }],
    ['t.u32', { type: 'uint32', value: 4294967295 }],
    ['t.i32', { type: 'int32', value: -2147483648 }],
    ['t.f32', { type: 'float32', value: -1.5 }],
    ['t.bool', { type: 'bool', value: true }],
    ['t.string', { type: 'string', value: 'héllo ✓ "quoted"' }],
    ['t.u64', { type: 'uint64', value: 2n ** 64n - 1n }],
    ['t.i64', { type: 'int64', value: -(2n ** 63n) }],
    ['t.f64', { type: 'float64', value: Math.PI }],
    ['a.u8', { type: 'array', itemType: 'uint8', value: [0, 1, 255] }],
    ['a.i32', { type: 'array', itemType: 'int32', value: [-1, 0, 7] }],
    ['a.f32', { type: 'array', itemType: 'float32', value: [0.25, -2] }],
    ['a.f64', { type: 'array', itemType: 'float64', value: [] }],
    ['a.bool', { type: 'array', itemType: 'bool', value: [true, false] }],
    ['a.string', { type: 'array', itemType: 'string', value: ['', 'ä', '<0x0A>'] }],
    ['a.u64', { type: 'array', itemType: 'uint64', value: [0n, 2n ** 53n + 1n] }],
    ['a.i64', { type: 'array', itemType: 'int64', value: [-5n] }],
  ]);

  it('keeps every value type, typed arrays and key order', async () => {
    const path = await writeTemp('every-type.gguf', encodeGgufHeader({ metadata: everyType, tensors: [] }));
    const header = await readGgufHeader(path);
    expect(header.version).toBe(3);
    expect([...header.metadata]).toEqual([...everyType]);
    expect(header.tensors).toEqual([]);
    expect(header.alignment).toBe(32);
  });

  it('reads version 2 files', async () => {
    const bytes = encodeGgufHeader({ metadata: everyType, tensors: [] });
    bytes.writeUInt32LE(2, 4);
    const header = await readGgufHeader(await writeTemp('v2.gguf', bytes));
    expect(header.version).toBe(2);
    expect([...header.metadata]).toEqual([...everyType]);
  });

  it('reads arrays that span many read chunks', async () => {
    const n = 30_000;
    const metadata = new Map<string, GgufValue>([
      ['big.tokens', { type: 'array', itemType: 'string', value: Array.from({ length: n }, (_, i) => `tok${i}`) }],
      ['big.scores', { type: 'array', itemType: 'float32', value: Array.from({ length: n }, (_, i) => i / 4) }],
    ]);
    const path = await writeTemp('big-arrays.gguf', encodeGgufHeader({ metadata, tensors: [] }));
    expect([...(await readGgufHeader(path)).metadata]).toEqual([...metadata]);
  });

  it("reads past the tokenizer's merges, scores and token types by default, keeping their counts and every other key", async () => {
    const n = 30_000; // several read chunks of strings and of numbers
    const metadata = new Map<string, GgufValue>([
      ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: Array.from({ length: n }, (_, i) => `tok${i}`) }],
      ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: Array.from({ length: n }, (_, i) => `m${i} é${i}`) }],
      ['tokenizer.ggml.scores', { type: 'array', itemType: 'float32', value: Array.from({ length: n }, (_, i) => i / 4) }],
      ['tokenizer.ggml.token_type', { type: 'array', itemType: 'int32', value: Array.from({ length: n }, () => 1) }],
      ['after.string', { type: 'string', value: 'still read' }],
    ]);
    const tensors = layoutTensors([{ name: 'w', dims: [4], type: 0 }], 32);
    const bytes = encodeGgufHeader({ metadata, tensors });
    const path = await writeTemp('vocab-tables.gguf', Buffer.concat([bytes, Buffer.alloc(16)]));
    const lean = await readGgufHeader(path);
    expect([...lean.metadata.keys()]).toEqual(['tokenizer.ggml.tokens', 'after.string']);
    expect(lean.metadata.get('tokenizer.ggml.tokens')).toEqual(metadata.get('tokenizer.ggml.tokens'));
    expect(lean.metadata.get('after.string')).toEqual({ type: 'string', value: 'still read' });
    expect([...lean.skipped]).toEqual([
      ['tokenizer.ggml.merges', n],
      ['tokenizer.ggml.scores', n],
      ['tokenizer.ggml.token_type', n],
    ]);
    expect(lean).toMatchObject({ tensors, dataOffset: bytes.length });
    const full = await readGgufHeader(path, { skipArrays: new Set() });
    expect([...full.metadata]).toEqual([...metadata]);
    expect(full.skipped.size).toBe(0);
  });

  it('names a skipped array that runs past the end of the file', async () => {
    const metadata = new Map<string, GgufValue>([['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: ['a b', 'c d', 'e f'] }]]);
    const bytes = encodeGgufHeader({ metadata, tensors: [] });
    const path = await writeTemp('cut-merges.gguf', bytes.subarray(0, bytes.indexOf('e f') + 1));
    await expect(readGgufHeader(path)).rejects.toMatchObject({
      code: 'SW_ERR_GGUF_INVALID',
      message: expect.stringMatching(/^\[cut-merges\.gguf\] truncated: metadata value "tokenizer\.ggml\.merges" runs past the end of the file/),
    });
  });

  it('honours general.alignment for tensor offsets and the data offset', async () => {
    const metadata = new Map<string, GgufValue>([['general.alignment', { type: 'uint32', value: 64 }]]);
    const tensors = layoutTensors(
      [
        { name: 'a', dims: [3], type: 0 },
        { name: 'b', dims: [5, 2], type: 1 },
      ],
      64,
    );
    expect(tensors.map((t) => t.offset)).toEqual([0, 64]);
    const header = encodeGgufHeader({ metadata, tensors });
    expect(header.length % 64).toBe(0);
    const path = await writeTemp('aligned.gguf', Buffer.concat([header, Buffer.alloc(64 + 20)]));
    const read = await readGgufHeader(path);
    expect(read).toMatchObject({ alignment: 64, dataOffset: header.length, tensors });
  });
});

describe('ggml types', () => {
  it.each([
    [0, 'f32'],
    [1, 'f16'],
    [12, 'q4_K'],
    [30, 'bf16'],
    [39, 'mxfp4'],
    [4, 'unknown(4)'],
    [99, 'unknown(99)'],
  ])('type %i is %s', (type, name) => {
    expect(ggmlTypeName(type)).toBe(name);
  });

  it('sizes tensors by block', () => {
    expect(ggmlTensorBytes(0, [64, 32000])).toBe(64 * 32000 * 4);
    expect(ggmlTensorBytes(12, [4096, 2])).toBe(2 * 16 * 144); // q4_K: 256 per 144-byte block
    expect(ggmlTensorBytes(4, [8])).toBeUndefined();
  });
});

describe('summarizeGguf', () => {
  const header = (metadata: [string, GgufValue][]): GgufHeader => ({
    path: '/m/model.gguf',
    fileSize: 0,
    version: 3,
    metadata: new Map(metadata),
    tensors: [],
    alignment: 32,
    dataOffset: 0,
    skipped: new Map(),
  });

  it('reads the architecture keys, widening u64 and per-layer arrays', () => {
    const summary = summarizeGguf(
      header([
        ['general.architecture', { type: 'string', value: 'qwen2' }],
        ['general.name', { type: 'string', value: 'Qwen2 7B' }],
        ['qwen2.block_count', { type: 'uint32', value: 28 }],
        ['qwen2.context_length', { type: 'uint64', value: 32768n }],
        ['qwen2.embedding_length', { type: 'uint32', value: 3584 }],
        ['qwen2.attention.head_count', { type: 'array', itemType: 'int32', value: [28, 0, 32] }],
        ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: ['a', 'b', 'c'] }],
        ['general.file_type', { type: 'uint32', value: 15 }],
      ]),
    );
    expect(summary).toEqual({
      architecture: 'qwen2',
      name: 'Qwen2 7B',
      layers: 28,
      contextLength: 32768,
      embeddingLength: 3584,
      headCount: 32,
      vocabSize: 3,
      fileType: 15,
    });
  });

  it('reports 0 for keys an architecture lacks', () => {
    const summary = summarizeGguf(header([['general.architecture', { type: 'string', value: 'mamba' }]]));
    expect(summary).toMatchObject({ architecture: 'mamba', layers: 0, headCount: 0, contextLength: 0 });
  });

  it('fails without general.architecture', () => {
    expect(() => summarizeGguf(header([]))).toThrow(
      expect.objectContaining({
        code: 'SW_ERR_GGUF_INVALID',
        message: '[model.gguf] no "general.architecture" in the metadata: not a model file',
      }),
    );
  });
});

describe('writeTinyModel with a small synthetic vocab', () => {
  const nVocab = 300;
  const tokenizer = new Map<string, GgufValue>([
    ['tokenizer.ggml.model', { type: 'string', value: 'llama' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: Array.from({ length: nVocab }, (_, i) => `t${i}`) }],
    ['tokenizer.ggml.scores', { type: 'array', itemType: 'float32', value: Array.from({ length: nVocab }, () => 0) }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'int32', value: Array.from({ length: nVocab }, () => 1) }],
    ['tokenizer.ggml.bos_token_id', { type: 'uint32', value: 1 }],
    ['tokenizer.ggml.add_bos_token', { type: 'bool', value: true }],
  ]);
  let vocab: string;
  beforeAll(async () => {
    const metadata = new Map<string, GgufValue>([
      ['general.architecture', { type: 'string', value: 'llama' }],
      ['llama.block_count', { type: 'uint32', value: 32 }], // not copied: only tokenizer.* keys are
      ...tokenizer,
    ]);
    vocab = await writeTemp('synthetic-vocab.gguf', encodeGgufHeader({ metadata, tensors: [] }));
  });

  const opts = (extra: Partial<TinyModelOptions> = {}): TinyModelOptions => ({ vocabPath: vocab, dim: 16, heads: 2, ...extra });

  it('writes what llama.cpp expects and reads back identically', async () => {
    const out = join(dir, 'tiny-synthetic.gguf');
    const result = await writeTinyModel(out, opts({ layers: 1, ffn: 48, contextLength: 512, seed: 7 }));
    const bytes = await readFile(out);
    expect(result).toEqual({ bytes: bytes.length, sha256: sha256(bytes) });

    const header = await readGgufHeader(out, { skipArrays: new Set() });
    expect([...header.metadata].filter(([k]) => !k.startsWith('tokenizer.'))).toEqual([
      ['general.architecture', { type: 'string', value: 'llama' }],
      ['general.name', { type: 'string', value: 'slotwise-tiny-d16-l1-s7' }],
      ['llama.context_length', { type: 'uint32', value: 512 }],
      ['llama.embedding_length', { type: 'uint32', value: 16 }],
      ['llama.block_count', { type: 'uint32', value: 1 }],
      ['llama.feed_forward_length', { type: 'uint32', value: 48 }],
      ['llama.attention.head_count', { type: 'uint32', value: 2 }],
      ['llama.attention.head_count_kv', { type: 'uint32', value: 2 }],
      ['llama.rope.dimension_count', { type: 'uint32', value: 8 }],
      ['llama.attention.layer_norm_rms_epsilon', { type: 'float32', value: Math.fround(1e-5) }],
      ['general.file_type', { type: 'uint32', value: 0 }],
    ]);
    expect([...header.metadata].filter(([k]) => k.startsWith('tokenizer.'))).toEqual([...tokenizer]);

    const shapes = header.tensors.map((t) => [t.name, ...t.dims]);
    expect(shapes).toEqual([
      ['token_embd.weight', 16, nVocab],
      ['blk.0.attn_norm.weight', 16],
      ['blk.0.attn_q.weight', 16, 16],
      ['blk.0.attn_k.weight', 16, 16],
      ['blk.0.attn_v.weight', 16, 16],
      ['blk.0.attn_output.weight', 16, 16],
      ['blk.0.ffn_norm.weight', 16],
      ['blk.0.ffn_gate.weight', 16, 48],
      ['blk.0.ffn_down.weight', 48, 16],
      ['blk.0.ffn_up.weight', 16, 48],
      ['output_norm.weight', 16],
      ['output.weight', 16, nVocab],
    ]);
    expect(header.tensors.every((t) => t.type === 0)).toBe(true);
    expect(header.tensors).toEqual(layoutTensors(header.tensors));
    const last = header.tensors.at(-1) as GgufTensorInfo;
    expect(header.dataOffset + last.offset + 16 * nVocab * 4).toBe(bytes.length);

    const floats = (t: GgufTensorInfo): number[] => {
      const at = header.dataOffset + t.offset;
      const n = t.dims.reduce((a, b) => a * b, 1);
      return Array.from({ length: n }, (_, i) => bytes.readFloatLE(at + i * 4));
    };
    for (const t of header.tensors) {
      const values = floats(t);
      if (t.name.endsWith('_norm.weight')) expect(new Set(values)).toEqual(new Set([1]));
      else expect(values.every((v) => Math.abs(v) <= 0.02) && new Set(values).size > values.length / 2).toBe(true);
    }
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const a = await writeTinyModel(join(dir, 'seed-a.gguf'), opts({ seed: 3 }));
    const b = await writeTinyModel(join(dir, 'seed-b.gguf'), opts({ seed: 3 }));
    const c = await writeTinyModel(join(dir, 'seed-c.gguf'), opts({ seed: 4 }));
    expect(b).toEqual(a);
    expect(Buffer.compare(await readFile(join(dir, 'seed-a.gguf')), await readFile(join(dir, 'seed-b.gguf')))).toBe(0);
    expect(c.bytes).toBe(a.bytes);
    expect(c.sha256).not.toBe(a.sha256);
  });

  it('replaces an existing file and leaves no temp file behind', async () => {
    const sub = await mkdtemp(join(dir, 'atomic-'));
    const out = join(sub, 'model.gguf');
    await writeFile(out, 'old contents');
    const result = await writeTinyModel(out, opts());
    expect(await readdir(sub)).toEqual(['model.gguf']);
    expect((await stat(out)).size).toBe(result.bytes);
  });

  it('leaves neither the model nor a temp file when aborted mid-write', async () => {
    const sub = await mkdtemp(join(dir, 'abort-'));
    const controller = new AbortController();
    const reason = new Error('stop');
    // The writer checks its signal once per chunk of tensor data; abort on the 10th check, which
    // falls inside the tensor data (the vocab read takes only 2).
    let checks = 0;
    const signal = new Proxy(controller.signal, {
      get(target, key) {
        if (key === 'throwIfAborted') {
          return () => {
            if (++checks === 10) controller.abort(reason);
            target.throwIfAborted();
          };
        }
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    await expect(writeTinyModel(join(sub, 'model.gguf'), opts({ signal }))).rejects.toBe(reason);
    expect(checks).toBe(10);
    expect(await readdir(sub)).toEqual([]);
  });

  it.each([
    [{ dim: 63, heads: 4 }, 'tiny model: dim 63 must split into 4 heads of even size (dim = heads × an even number)'],
    [{ dim: 12, heads: 4 }, 'tiny model: dim 12 must split into 4 heads of even size (dim = heads × an even number)'],
    [{ layers: 0 }, 'tiny model: layers must be a positive integer, got 0'],
    [{ ffn: 1.5 }, 'tiny model: ffn must be a positive integer, got 1.5'],
    [{ seed: -1 }, 'tiny model: seed must be a non-negative integer, got -1'],
    [{ slidingWindow: 0 }, 'tiny model: slidingWindow must be a positive integer, got 0'],
    [{ slidingWindow: 128, pooling: 'mean' as const }, 'tiny model: a gemma3 model is generative: give no pooling'],
    [{ fullAttentionInterval: 4, pooling: 'rank' as const }, 'tiny model: a qwen35 model is generative: give no pooling'],
    [{ fullAttentionInterval: 0 }, 'tiny model: fullAttentionInterval must be a positive integer, got 0'],
    [{ slidingWindow: 128, fullAttentionInterval: 4 }, 'tiny model: give slidingWindow (gemma3) or fullAttentionInterval (qwen35), not both'],
  ])('rejects options %o', async (extra, message) => {
    await expect(writeTinyModel(join(dir, 'never.gguf'), { vocabPath: vocab, ...extra })).rejects.toMatchObject({
      code: 'SW_ERR_USAGE',
      message,
    });
  });

  it('rejects a vocab file without tokens', async () => {
    const notVocab = await writeTemp('not-vocab.gguf', encodeGgufHeader({ metadata: new Map(), tensors: [] }));
    await expect(writeTinyModel(join(dir, 'never.gguf'), { vocabPath: notVocab })).rejects.toMatchObject({
      code: 'SW_ERR_GGUF_INVALID',
      message: '[not-vocab.gguf] no tokenizer.ggml.tokens string array: not a vocab file',
    });
  });

  it('names an output directory that does not exist', async () => {
    const out = join(dir, 'no-such-dir', 'model.gguf');
    await expect(writeTinyModel(out, opts())).rejects.toMatchObject({
      code: 'SW_ERR_MODEL_FILE',
      message: `cannot write model file ${out}: ENOENT`,
    });
  });
});

describe("writeTinyModel with llama.cpp's vocab", () => {
  it.skipIf(!VOCAB)(`copies every tokenizer key of the vocab file${NEEDS_VOCAB}`, async () => {
    const vocab = await readGgufHeader(VOCAB as string, { skipArrays: new Set() });
    const out = join(dir, 'tiny-default.gguf');
    const result = await writeTinyModel(out, { vocabPath: VOCAB as string });
    const header = await readGgufHeader(out, { skipArrays: new Set() });
    expect(result.bytes).toBe(header.fileSize);
    const tokenizerOf = (h: GgufHeader): [string, GgufValue][] => [...h.metadata].filter(([k]) => k.startsWith('tokenizer.'));
    expect(tokenizerOf(header)).toEqual(tokenizerOf(vocab));
    expect(tokenizerOf(header).length).toBeGreaterThan(3);
    expect(summarizeGguf(header)).toEqual({
      architecture: 'llama',
      name: 'slotwise-tiny-d64-l2-s1',
      layers: 2,
      contextLength: 4096,
      embeddingLength: 64,
      headCount: 4,
      vocabSize: 32000,
      fileType: 0,
    });
    expect(header.tensors).toHaveLength(3 + 2 * 9);
  });

  it.skipIf(!VOCAB)(`re-encodes the vocab file byte for byte${NEEDS_VOCAB}`, async () => {
    const original = await readFile(VOCAB as string);
    const encoded = encodeGgufHeader(await readGgufHeader(VOCAB as string, { skipArrays: new Set() }));
    // The encoder pads to the data offset; the vocab file (no tensors) may stop short of it.
    expect(Buffer.compare(encoded.subarray(0, original.length), original)).toBe(0);
    expect(encoded.subarray(original.length).every((b) => b === 0)).toBe(true);
  });
});
