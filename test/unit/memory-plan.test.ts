// The memory plan's arithmetic on a tiny synthetic header whose every number is worked out by hand below.
import { describe, expect, it } from 'vitest';
import { ggmlTypeId, type GgufHeader, type GgufTensorInfo, type GgufValue } from '../../gguf/gguf';
import { modelFacts, type ModelFacts } from '../../daemon/memory/model-facts';
import {
  checkFit,
  computeBytes,
  formatMemory,
  memoryError,
  mostSlotsThatFit,
  placement,
  planMemory,
  shortfallMessage,
  type FreeMemory,
  type PlanSettings,
} from '../../daemon/memory/plan';
import { DEFAULT_SERVER_MEMORY_OPTIONS, serverMemoryOptions } from '../../daemon/memory/server-args';
import { buildPlanReport, renderPlanTable } from '../../cli/commands/render-plan';
import { shapeHeader } from '../helpers/gguf-shape';

// ggml type ids: f32 0, f16 1, q4_0 2, q8_0 8.
const [F32, F16, Q4_0, Q8_0] = [0, 1, 2, 8];
const u32 = (value: number): GgufValue => ({ type: 'uint32', value });

/**
 * n_embd 64, 4 heads of 16, 2 KV heads (GQA), n_ff 256, vocab 1000, 2 blocks. Tensor bytes:
 *   token_embd f32 64×1000 = 256000            (input: stays on the host)
 *   blk.N.attn_q f16 64×64 = 8192, blk.N.attn_k q8_0 64×32 = 64 blocks × 34 = 2176,
 *   blk.N.ffn_up q4_0 64×256 = 512 blocks × 18 = 9216          → 19584 per block
 *   output_norm f32 64 = 256, output q8_0 64×1000 = 2000 blocks × 34 = 68000 → 68256
 */
function header(opts: { tied?: boolean; kvHeads?: GgufValue } = {}): GgufHeader {
  const t = (name: string, type: number, ...dims: number[]): GgufTensorInfo => ({ name, type, dims, offset: 0 });
  const tensors = [t('token_embd.weight', F32, 64, 1000)];
  for (const b of ['blk.0', 'blk.1']) tensors.push(t(`${b}.attn_q.weight`, F16, 64, 64), t(`${b}.attn_k.weight`, Q8_0, 64, 32), t(`${b}.ffn_up.weight`, Q4_0, 64, 256));
  tensors.push(t('output_norm.weight', F32, 64));
  if (!opts.tied) tensors.push(t('output.weight', Q8_0, 64, 1000));
  const metadata = new Map<string, GgufValue>([
    ['general.architecture', { type: 'string', value: 'llama' }],
    ['llama.block_count', u32(2)],
    ['llama.context_length', u32(2048)],
    ['llama.embedding_length', u32(64)],
    ['llama.feed_forward_length', u32(256)],
    ['llama.attention.head_count', u32(4)],
    ['llama.attention.head_count_kv', opts.kvHeads ?? u32(2)],
    ['llama.vocab_size', u32(1000)],
  ]);
  return { path: '/models/synthetic.gguf', fileSize: 0, version: 3, metadata, tensors, alignment: 32, dataOffset: 0, skipped: new Map() };
}

const FACTS = modelFacts(header());
const CPU_ONLY: FreeMemory = { host: 64 * 2 ** 30, gpus: [] };
const plan = (s: Partial<PlanSettings> & { args?: string[] }, free: FreeMemory = CPU_ONLY) =>
  planMemory(FACTS, { slots: 4, ctxPerSlot: 1000, gpuLayers: 0, server: serverMemoryOptions(s.args ?? []), ...s }, free);

describe('modelFacts', () => {
  it('sums tensor bytes per block, outside the blocks and of the output, and reads the attention shape', () => {
    expect(FACTS).toEqual({
      architecture: 'llama',
      layers: 2,
      layerBytes: [19584, 19584],
      layerTensors: [0, 1].map((i) => [
        { name: `blk.${i}.attn_q.weight`, bytes: 8192 },
        { name: `blk.${i}.attn_k.weight`, bytes: 2176 },
        { name: `blk.${i}.ffn_up.weight`, bytes: 9216 },
      ]),
      inputBytes: 256000,
      outputBytes: 68256,
      tiedOutputBytes: 0,
      headCountKv: [2, 2],
      headCount: 4,
      keyLength: 16, // no key_length: embedding_length / head_count
      valueLength: 16,
      embeddingLength: 64,
      feedForwardLength: 256,
      vocabSize: 1000,
      contextLength: 2048,
    });
  });

  it('counts token_embd again on the output GPU when the file ties the output to it', () => {
    const tied = modelFacts(header({ tied: true }));
    expect([tied.outputBytes, tied.tiedOutputBytes]).toEqual([256, 256000]);
  });

  it('takes per-layer KV head counts (0 = a layer without attention)', () => {
    const facts = modelFacts(header({ kvHeads: { type: 'array', itemType: 'int32', value: [2, 0] } }));
    expect(facts.headCountKv).toEqual([2, 0]);
    // 4 slots × 1024 cells × (2 heads × (16 + 16) × 2 B) in layer 0 only
    expect(planMemory(facts, { slots: 4, ctxPerSlot: 1000, gpuLayers: 0 }, CPU_ONLY).devices[0]!.kv).toBe(4096 * 128);
  });

  it('fails with SW_ERR_GGUF_INVALID on a tensor type it cannot size', () => {
    const h = header();
    h.tensors[1] = { ...h.tensors[1]!, type: 99 };
    expect(() => modelFacts(h)).toThrow(expect.objectContaining({ code: 'SW_ERR_GGUF_INVALID', message: expect.stringContaining('blk.0.attn_q.weight') }));
  });
});

describe('planMemory on the host', () => {
  // weights on the host: 256000 + 2 × 19584 + 68256 = 363424
  const cases = [
    {
      what: 'f16 cache: n_ctx pad256(4000) = 4096, 1024 cells a slot',
      s: { slots: 4, ctxPerSlot: 1000 },
      // KV 4096 cells × 2 layers × 2 heads × 32 × 2 B; compute 512 × 4 × (3·256 + min(256, 4·64)) + 1024 × 512 × 2
      want: { cellsPerSlot: 1024, kv: 1_048_576, kvPerSlot: 262_144, compute: 3_145_728, output: 16_000 },
    },
    {
      what: 'q8_0 cache: a 32-element row is one 34-byte block; pad256(floor(1024/3)) = 512 cells a slot',
      s: { slots: 3, ctxPerSlot: 300, args: ['-ctk', 'q8_0', '--cache-type-v=q8_0'] },
      // KV 1536 cells × 2 layers × (34 + 34); compute 2097152 + 512 cells × 512 × 2
      want: { cellsPerSlot: 512, kv: 208_896, kvPerSlot: 69_632, compute: 2_621_440, output: 12_000 },
    },
    {
      what: 'no flash attention, ubatch 64: the KQ scores and f32 mask win',
      s: { slots: 1, ctxPerSlot: 128, args: ['-ub', '64', '-fa', 'off'] },
      // KV 256 × 2 × 128; compute max(64·4·1024 + 256·64·2, 64·4·(256·5 + 7·64)) = max(294912, 442368)
      want: { cellsPerSlot: 256, kv: 65_536, kvPerSlot: 65_536, compute: 442_368, output: 4_000 },
    },
    {
      what: 'unified cache: one stream of n_ctx cells that attention spans whole',
      s: { slots: 2, ctxPerSlot: 1000, args: ['-kvu'] },
      // KV 2048 × 2 × 128; compute 2097152 + 2048 × 512 × 2
      want: { cellsPerSlot: 1024, kv: 524_288, kvPerSlot: 262_144, compute: 4_194_304, output: 8_000 },
    },
    {
      what: 'a ubatch larger than the context shrinks to it',
      s: { slots: 1, ctxPerSlot: 200 },
      // n_ctx 256 → ub 256: 256 × 4 × 1024 + 256 × 256 × 2
      want: { cellsPerSlot: 256, kv: 65_536, kvPerSlot: 65_536, compute: 1_179_648, output: 4_000 },
    },
  ];
  it.each(cases)('$what', ({ s, want }) => {
    const p = plan(s);
    const host = p.devices[0]!;
    expect(p.devices).toHaveLength(1);
    expect(p.gpuLayers).toBe(0);
    expect({ cellsPerSlot: p.cellsPerSlot, kv: host.kv, kvPerSlot: p.kvPerSlot, compute: host.compute, output: host.output }).toEqual(want);
    expect(host.weights).toBe(363_424);
    expect(host.total).toBe(363_424 + want.kv + want.compute + want.output);
    expect(p.total).toBe(host.total);
  });

  it('notes a context beyond the training context and gpuLayers without a GPU', () => {
    expect(plan({ slots: 1, ctxPerSlot: 4096, gpuLayers: 10 }).notes).toEqual([
      "ctxPerSlot 4096 is beyond the model's training context 2048: llama-server caps each slot at 2048",
      'no GPU found: gpuLayers 10 has no effect, everything is on the host',
    ]);
  });
});

describe('planMemory with GPUs', () => {
  const oneGpu = (free: number): FreeMemory => ({ host: 2 ** 30, gpus: [{ index: 0, free }] });
  // Per block on the GPU: 19584 weights + 4096 cells × 128 KV = 543872; output unit 68256; graph 3145728.
  const gpu = (p: ReturnType<typeof plan>) => p.devices[1]!;

  it.each([
    { gpuLayers: 1, blocks: 0, gpuWeights: 68_256, gpuKv: 0 }, // just the output layer
    { gpuLayers: 2, blocks: 1, gpuWeights: 19_584 + 68_256, gpuKv: 524_288 }, // the last block and the output
    { gpuLayers: 'all' as const, blocks: 2, gpuWeights: 2 * 19_584 + 68_256, gpuKv: 1_048_576 },
    { gpuLayers: 99, blocks: 2, gpuWeights: 2 * 19_584 + 68_256, gpuKv: 1_048_576 },
  ])('gpuLayers $gpuLayers puts $blocks blocks on GPU 0', ({ gpuLayers, blocks, gpuWeights, gpuKv }) => {
    const p = plan({ gpuLayers }, oneGpu(2 ** 30));
    const [host, g] = p.devices as [NonNullable<(typeof p.devices)[0]>, NonNullable<(typeof p.devices)[0]>];
    expect([g.label, g.layers, g.weights, g.kv, g.compute]).toEqual(['GPU 0', blocks, gpuWeights, gpuKv, 3_145_728]);
    expect([host.layers, host.weights, host.kv]).toEqual([2 - blocks, 363_424 - gpuWeights, 1_048_576 - gpuKv]);
    expect(host.compute).toBe(512 * 64 * 6); // the host's input-embedding buffer
    expect(host.output).toBe(16_000);
  });

  it('moves overridden tensors off their layer\'s device, the first matching override deciding (-ot, --n-cpu-ffn)', () => {
    // All on GPU 0, but ffn_up (9216 a block) on the host: -ot's first pair wins over the second.
    const p = plan({ gpuLayers: 'all', args: ['-ot', 'ffn_up=CPU,ffn=CUDA0'] }, oneGpu(2 ** 30));
    expect([p.devices[0]!.weights, p.devices[1]!.weights]).toEqual([256_000 + 2 * 9216, 2 * (19_584 - 9216) + 68_256]);
    expect(p.devices[1]!.layers).toBe(2); // the layer (and its KV cache) stays where -ngl put it
    expect(p.devices[1]!.kv).toBe(1_048_576);
    // --n-cpu-ffn 1: block 0's dense FFN only.
    const first = plan({ gpuLayers: 'all', args: ['--n-cpu-ffn', '1'] }, oneGpu(2 ** 30));
    expect(first.devices[1]!.weights).toBe(2 * 19_584 - 9216 + 68_256);
    // A tensor of a host layer can be sent to the GPU.
    const up = plan({ gpuLayers: 0, args: ['-ot', 'attn_q=CUDA0'] }, oneGpu(2 ** 30));
    expect(up.devices[1]!.weights).toBe(2 * 8192);
    // Auto offload counts what the override keeps on the host: 2 layers (the last block and the output)
    // need 3757856 bytes, 3748640 with that block's ffn_up on the host; 3750000 are free.
    expect(plan({ gpuLayers: 'auto' }, oneGpu(3_750_000)).gpuLayers).toBe(1);
    expect(plan({ gpuLayers: 'auto', args: ['-ot', 'ffn_up=CPU'] }, oneGpu(3_750_000)).gpuLayers).toBe(2);
  });

  it('copies a tied token_embd to the GPU that holds the output', () => {
    const p = planMemory(modelFacts(header({ tied: true })), { slots: 4, ctxPerSlot: 1000, gpuLayers: 1 }, oneGpu(2 ** 30));
    expect([p.devices[0]!.weights, p.devices[1]!.weights]).toEqual([256_000 + 2 * 19_584, 256 + 256_000]);
  });

  it.each([
    { free: 5_000_000, layers: 3 }, // all: 2 × 543872 + 68256 + 3145728 = 4301728
    { free: 4_000_000, layers: 2 }, // 3757856 fits, 4301728 does not
    { free: 3_300_000, layers: 1 }, // 3213984
    { free: 3_000_000, layers: 0 }, // not even the output layer with the graph
  ])('auto with $free bytes free on the GPU offloads $layers layers', ({ free, layers }) => {
    const p = plan({ gpuLayers: 'auto' }, oneGpu(free));
    expect(p.gpuLayers).toBe(layers);
    if (layers === 0) expect(gpu(p).total).toBe(0);
    else expect(gpu(p).total).toBeLessThanOrEqual(free);
  });

  it('splits layers across GPUs by free memory, as llama.cpp does', () => {
    // 3 units (2 blocks + output); splits [0.5, 1]: unit 0 at 0, unit 1 at 1/3 → GPU 0; the output at 2/3 → GPU 1
    expect(placement(2, 3, [1, 1])).toEqual({ layer: [0, 0], output: 1 });
    expect(placement(2, 3, [3, 1])).toEqual({ layer: [0, 0], output: 0 });
    expect(placement(2, 3, [1, 3])).toEqual({ layer: [0, 1], output: 1 });
    expect(placement(4, 2, [1, 1])).toEqual({ layer: [-1, -1, -1, 0], output: 1 });
    expect(placement(4, 0, [1, 1])).toEqual({ layer: [-1, -1, -1, -1], output: -1 });
  });

  it('keeps the KV cache on the host with -nkvo', () => {
    const p = plan({ gpuLayers: 'all', args: ['-nkvo'] }, oneGpu(2 ** 30));
    expect([p.devices[0]!.kv, p.devices[1]!.kv]).toEqual([1_048_576, 0]);
  });
});

describe('fit', () => {
  it('reports each device the plan does not fit, with its numbers and a one-line fix', () => {
    const free: FreeMemory = { host: 1_000_000, gpus: [{ index: 0, free: 4_000_000 }] };
    const p = plan({ gpuLayers: 'all' }, free);
    const fit = checkFit(p, free);
    expect(fit.fits).toBe(false);
    expect(fit.shortfalls).toEqual([{ device: 'gpu0', label: 'GPU 0', needs: 4_301_728, has: 4_000_000 }]);
    expect(shortfallMessage(fit.shortfalls[0]!, true)).toBe('needs 4.1 MiB on GPU 0, which has 3.8 MiB free: lower slots, ctxPerSlot or gpuLayers');
    expect(shortfallMessage({ device: 'gpu0', label: 'GPU 0', needs: 9.1 * 2 ** 30, has: 8 * 2 ** 30 }, true)).toBe(
      'needs 9.1 GiB on GPU 0, which has 8.0 GiB free: lower slots, ctxPerSlot or gpuLayers',
    );
    const err = memoryError('model "coder"', fit, true);
    expect([err.code, err.exitCode, err.message]).toEqual(['SW_ERR_NOT_ENOUGH_MEMORY', 1, 'model "coder" needs 4.1 MiB on GPU 0, which has 3.8 MiB free: lower slots, ctxPerSlot or gpuLayers']);
    expect(() => memoryError('x', { fits: true, shortfalls: [] }, false)).toThrow(RangeError);
    expect(shortfallMessage({ device: 'host', label: 'host RAM', needs: 3 * 2 ** 30, has: 2 ** 30 }, false)).toBe(
      'needs 3.0 GiB of host RAM, which has 1.0 GiB free: lower slots or ctxPerSlot',
    );
  });

  it('names the prompt cache when it is part of the shortfall: its fix alone when the rest fits, beside the others when not', () => {
    const free: FreeMemory = { host: 4_000_000, gpus: [] };
    const p = plan({ promptCacheMiB: 1 }, free); // 4_573_728 (see the modelFacts cases) + 1 MiB of cache
    const fit = checkFit(p, free);
    expect(fit.shortfalls).toEqual([{ device: 'host', label: 'host RAM', needs: 4_573_728 + 2 ** 20, has: 4_000_000, promptCache: 2 ** 20 }]);
    expect(memoryError('model "coder"', checkFit(p, { host: 4_600_000, gpus: [] }), false).message).toBe(
      'model "coder" needs 5.4 MiB of host RAM with its 1.0 MiB prompt cache, which has 4.4 MiB free: lower promptCacheMiB (0 turns the cache off)',
    );
    expect(memoryError('model "coder"', fit, true).message).toBe(
      'model "coder" needs 5.4 MiB of host RAM with its 1.0 MiB prompt cache, which has 3.8 MiB free: lower slots or ctxPerSlot, or raise gpuLayers, and promptCacheMiB',
    );
    // A cache of 0 adds nothing and is not named.
    const off = plan({ promptCacheMiB: 0 }, free);
    expect(off.total).toBe(plan({}, free).total);
    expect(memoryError('m', checkFit(off, free), false).message).toBe('m needs 4.4 MiB of host RAM, which has 3.8 MiB free: lower slots or ctxPerSlot');
  });

  // On the host at 1024 tokens a slot: 363424 + 3145728 (graph) + slots × (262144 KV + 1000 × 4 B output) = 3509152 + slots × 266144
  it.each([
    { free: 6_000_000, max: 16, want: 9 }, // 9.36
    { free: 6_000_000, max: 5, want: 5 },
    { free: 3_775_296, max: 16, want: 1 }, // exactly one slot
    { free: 3_775_295, max: 16, want: 0 },
  ])('mostSlotsThatFit with $free bytes free (max $max) is $want', ({ free, max, want }) => {
    expect(mostSlotsThatFit(FACTS, { ctxPerSlot: 1024, gpuLayers: 0 }, { host: free, gpus: [] }, max)).toBe(want);
  });

  it('formats binary units', () => {
    expect([formatMemory(1_048_576 * 1.5), formatMemory(2 ** 30 * 9.1)]).toEqual(['1.5 MiB', '9.1 GiB']);
  });
});

describe('computeBytes', () => {
  // Checks of the fitted formula against buffers the real llama-server printed (MiB) for tiny llama models.
  it.each([
    { embd: 64, ff: 256, heads: 4, ub: 512, nKv: 4096, fa: true, mib: 6.01 },
    { embd: 128, ff: 1024, heads: 2, ub: 512, nKv: 512, fa: true, mib: 7.51 },
    { embd: 256, ff: 512, heads: 8, ub: 256, nKv: 2048, fa: true, mib: 3.01 },
    { embd: 256, ff: 1024, heads: 4, ub: 512, nKv: 4096, fa: false, mib: 43.51 },
  ])('n_embd $embd n_ff $ff ub $ub n_kv $nKv flash $fa ≈ $mib MiB', ({ embd, ff, heads, ub, nKv, fa, mib }) => {
    const facts = { ...FACTS, embeddingLength: embd, feedForwardLength: ff, headCount: heads } satisfies ModelFacts;
    expect(computeBytes(facts, ub, nKv, fa) / 2 ** 20).toBeCloseTo(mib, 1);
  });
});

describe('serverMemoryOptions', () => {
  it('defaults to llama.cpp\'s and reads the flags in either form', () => {
    expect(serverMemoryOptions(['--jinja'])).toEqual(DEFAULT_SERVER_MEMORY_OPTIONS);
    expect(serverMemoryOptions(['-ctk', 'Q4_0', '--cache-type-v=q8_0', '--ubatch-size', '128', '-b=256', '-fa', '--kv-unified', '--no-kv-offload'])).toEqual({
      cacheTypeK: 'q4_0',
      cacheTypeV: 'q8_0',
      ubatch: 128,
      batch: 256,
      flashAttn: true,
      kvUnified: true,
      kvOffload: false,
      swaFull: false,
      tensorOverrides: [],
      mmproj: 'gpu',
      draft: { gpuLayers: 'auto', cacheTypeK: 'f16', cacheTypeV: 'f16' },
    });
    expect(serverMemoryOptions(['--swa-full']).swaFull).toBe(true);
    expect(serverMemoryOptions(['--no-mmproj-offload']).mmproj).toBe('host');
    expect(serverMemoryOptions(['-mmdev', 'none']).mmproj).toBe('host');
    expect(serverMemoryOptions(['--no-mmproj-offload', '--mmproj-offload']).mmproj).toBe('gpu'); // the last one wins, as in llama.cpp
    expect(serverMemoryOptions(['--flash-attn', 'off', '-m', 'x']).flashAttn).toBe(false);
    expect(ggmlTypeId('Q8_0')).toBe(8);
  });

  it("reads tensor overrides as llama.cpp builds them: -ot pairs in order, --cpu-moe, --n-cpu-moe N, --n-cpu-ffn N", () => {
    const o = serverMemoryOptions(['-ot', 'attn_q=CUDA1,\\.ffn_up\\.=CPU', '--n-cpu-moe', '2', '--cpu-moe', '-ot=exps=Vulkan0,norm=RPC[host:1]', '--n-cpu-ffn=1']).tensorOverrides;
    expect(o.map((x) => [x.pattern.source, x.device])).toEqual([
      ['attn_q', 'gpu1'],
      ['\\.ffn_up\\.', 'host'],
      ['blk\\.0\\.ffn_(up|down|gate|gate_up)_(ch|)exps', 'host'],
      ['blk\\.1\\.ffn_(up|down|gate|gate_up)_(ch|)exps', 'host'],
      ['\\.ffn_(up|down|gate|gate_up)_(ch|)exps', 'host'],
      ['exps', 'gpu0'],
      ['norm', undefined], // a buffer type the plan cannot place: the layer's device
      ['blk\\.0\\.ffn_(up|down|gate)\\.', 'host'],
    ]);
    // Names as llama.cpp lists its devices' buffer types, exactly: no other spelling places anything.
    expect(serverMemoryOptions(['-ot', 'a=MTL0,b=cpu,c=CPU_REPACK,d=CUDA']).tensorOverrides.map((x) => x.device)).toEqual(['gpu0', undefined, undefined, undefined]);
    expect(o[2]!.pattern.test('blk.0.ffn_gate_up_exps.weight')).toBe(true);
    expect(o[2]!.pattern.test('blk.10.ffn_up_exps.weight')).toBe(false);
  });

  it.each([
    [['-ctk', 'q9_9'], 'llama-server args: -ctk q9_9 is not a ggml type — use f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0 or q5_1'],
    [['-ub', '0'], 'llama-server args: -ub must be a positive integer, got "0"'],
    [['--cache-type-v'], 'llama-server args: --cache-type-v needs a value'],
    [['-ot', 'exps'], 'llama-server args: -ot takes PATTERN=BUFFER pairs separated by commas, e.g. "\\.ffn_.*_exps\\.=CPU", got "exps"'],
    [['-ot', '(=CPU'], 'llama-server args: -ot pattern "(" is not a regular expression (Invalid regular expression: /(/: Unterminated group)'],
    [['--n-cpu-moe', '-1'], 'llama-server args: --n-cpu-moe must be an integer >= 0, got "-1"'],
  ])('%j fails with one line', (args, message) => {
    expect(() => serverMemoryOptions(args)).toThrow(expect.objectContaining({ code: 'SW_ERR_CONFIG', message }));
  });
});

describe('plan report', () => {
  const reading = { free: { host: 6_000_000, gpus: [] }, gpuNames: new Map(), warnings: [] };
  const target = { name: 'syn', path: '/models/synthetic.gguf', slots: 4, ctxPerSlot: 1024, gpuLayers: 'auto' as const, args: [] };
  const report = buildPlanReport({ target, facts: FACTS, reading, server: DEFAULT_SERVER_MEMORY_OPTIONS });

  it('plans slots 1, 2, 4, 8, 16 at half, the asked and double the context, and recommends the most that fit', () => {
    expect(report.table.map((r) => `${r.slots}×${r.ctxPerSlot}`)).toEqual(
      [512, 1024, 2048].flatMap((c) => [1, 2, 4, 8, 16].map((s) => `${s}×${c}`)),
    );
    expect(report.plan).toMatchObject({ slots: 4, ctxPerSlot: 1024, fits: true, total: 3_509_152 + 4 * 266_144 });
    expect(report.recommendation).toEqual({ ctxPerSlot: 1024, slots: 9, message: 'slots 9 at ctxPerSlot 1024 is the most that fits the memory free now' });
    const sixteen = report.table.find((r) => r.slots === 16 && r.ctxPerSlot === 1024)!;
    expect(sixteen.fits).toBe(false);
    expect(sixteen.message).toBe('model "syn" with 16 slots × 1024 tokens needs 7.4 MiB of host RAM, which has 5.7 MiB free: lower slots or ctxPerSlot');
  });

  it('renders one line per plan, marks the asked one and ends with the recommendation', () => {
    const text = renderPlanTable(report);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('model  syn (/models/synthetic.gguf): llama, 2 layers, training context 2048');
    expect(lines.filter((l) => /host RAM .*(yes|NO)$/.test(l))).toHaveLength(15);
    expect(lines.find((l) => l.startsWith('*'))).toMatch(/^\*\s+4\s+1024\s+0\s+host RAM\s.*yes$/);
    expect(lines.find((l) => /^\s+16\s+1024\s/.test(l))).toMatch(/NO$/);
    expect(lines.at(-1)).toBe('recommendation: slots 9 at ctxPerSlot 1024 is the most that fits the memory free now');
  });
});

describe('plan report with a prompt cache', () => {
  const reading = { free: { host: 6_000_000, gpus: [] }, gpuNames: new Map(), warnings: [] };
  const target = { name: 'syn', path: '/models/synthetic.gguf', slots: 4, ctxPerSlot: 1024, gpuLayers: 'auto' as const, args: [], promptCacheMiB: 1 };
  const report = buildPlanReport({ target, facts: FACTS, reading, server: DEFAULT_SERVER_MEMORY_OPTIONS, hostBytes: 2 ** 34 });

  it('counts it on the host in every row, the fit and the recommendation', () => {
    expect(report.plan.devices[0]).toMatchObject({ device: 'host', promptCache: 2 ** 20, total: 3_509_152 + 4 * 266_144 + 2 ** 20 });
    expect(report.plan).toMatchObject({ fits: true, total: 3_509_152 + 4 * 266_144 + 2 ** 20 });
    // 6_000_000 − 1 MiB leaves room for 5 slots, not 9
    expect(report.recommendation.slots).toBe(5);
    const eight = report.table.find((r) => r.slots === 8 && r.ctxPerSlot === 1024)!;
    expect(eight.message).toBe('model "syn" with 8 slots × 1024 tokens needs 6.4 MiB of host RAM with its 1.0 MiB prompt cache, which has 5.7 MiB free: lower promptCacheMiB (0 turns the cache off)');
  });

  it('shows it in its own column; `-` without one', () => {
    const lines = renderPlanTable(report).split('\n');
    expect(lines).toContainEqual(expect.stringMatching(/^\s+slots\s+ctx\/slot\s+gpuLayers\s+device\s+weights\s+KV\s+compute\s+output\s+cache\s+total\s+free\s+fits$/));
    expect(lines.find((l) => l.startsWith('*'))).toMatch(/^\*\s+4\s+1024\s+0\s+host RAM\s+[\d.]+ MiB\s+[\d.]+ MiB\s+[\d.]+ MiB\s+[\d.]+ MiB\s+1\.0 MiB\s+5\.4 MiB\s+5\.7 MiB\s+yes$/);
    const none = renderPlanTable(buildPlanReport({ target: { ...target, promptCacheMiB: 0 }, facts: FACTS, reading, server: DEFAULT_SERVER_MEMORY_OPTIONS }));
    expect(none.split('\n').find((l) => l.startsWith('*'))).toMatch(/\s-\s+[\d.]+ MiB\s+5\.7 MiB\s+yes$/);
  });
});

describe('the plan of a model with latent attention (DeepSeek V2 Lite)', () => {
  // As convert_hf_to_gguf writes an MLA model: one KV "head" of kv_lora_rank + rope = 576, values of 512,
  // and the per-head sizes in the _mla keys. llama.cpp then caches K alone (the latent) and reads V out of it.
  const kv = (mla: boolean): number => {
    const shape = { block_count: 27, embedding_length: 2048, 'attention.head_count': 16, 'attention.head_count_kv': 1, 'attention.key_length': 576, 'attention.value_length': 512 };
    const facts = modelFacts(shapeHeader('deepseek2', mla ? { ...shape, 'attention.key_length_mla': 192, 'attention.value_length_mla': 128 } : shape));
    expect(facts.latentAttention).toBe(mla ? true : undefined);
    return planMemory(facts, { slots: 4, ctxPerSlot: 4096, gpuLayers: 0, server: serverMemoryOptions([]) }, { host: 2 ** 40, gpus: [] }).devices[0]!.kv;
  };
  it('caches K rows alone: 576 f16 a cell and layer, not 576 + 512', () => {
    expect(kv(true)).toBe(27 * 4 * 4096 * 576 * 2);
    expect(kv(false)).toBe(27 * 4 * 4096 * (576 + 512) * 2);
  });

  it("adds DeepSeek V3.2's indexer key (128 wide) to each layer's cells", () => {
    const shape = { block_count: 61, embedding_length: 7168, 'attention.head_count': 128, 'attention.head_count_kv': 1, 'attention.key_length': 576, 'attention.value_length': 512, 'attention.key_length_mla': 192, 'attention.value_length_mla': 128, 'attention.indexer.key_length': 128 };
    const facts = modelFacts(shapeHeader('deepseek32', shape));
    expect(facts.indexerKeyLength).toBe(128);
    expect(planMemory(facts, { slots: 8, ctxPerSlot: 32768, gpuLayers: 0, server: serverMemoryOptions([]) }, { host: 2 ** 40, gpus: [] }).devices[0]!.kv).toBe(61 * 8 * 32768 * (576 + 128) * 2);
    expect(modelFacts(shapeHeader('deepseek2', shape)).indexerKeyLength).toBeUndefined(); // the key means nothing to another architecture
  });
});

describe('a model with a multi-token-prediction head (nextn_predict_layers)', () => {
  it('plans neither the weights nor the KV cache of its last blocks, as llama-server does not load them', () => {
    const header = shapeHeader('glm4moe', { block_count: 3, nextn_predict_layers: 1, embedding_length: 64, 'attention.head_count': 4, 'attention.head_count_kv': 2 });
    const t = (name: string): GgufTensorInfo => ({ name, type: F32, dims: [64, 64], offset: 0 });
    header.tensors.push(t('blk.0.attn_q.weight'), t('blk.1.attn_q.weight'), t('blk.2.attn_q.weight'), t('blk.2.nextn.eh_proj.weight'));
    const facts = modelFacts(header);
    expect({ layers: facts.layers, layerBytes: facts.layerBytes, inputBytes: facts.inputBytes }).toEqual({ layers: 2, layerBytes: [16384, 16384], inputBytes: 0 });
    // 2 layers × 4 slots × 512 cells × 2 heads × 16 wide × 2 (K, V) × 2 B
    expect(planMemory(facts, { slots: 4, ctxPerSlot: 512, gpuLayers: 0 }, CPU_ONLY).devices[0]!.kv).toBe(2 * 4 * 512 * 2 * 16 * 2 * 2);
  });
});
