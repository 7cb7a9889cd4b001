import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLoadEnd, parseLoadLine, parseProgressLine, setsVerbosity, type LoadProgress } from '../../daemon/runtime/load-log';
import type { Placement } from '../../shared/protocol';

// CPU lines: recorded from this repo's llama-server build (commit de3ff81) loading the tiny model at -lv 4.
const CPU_LOG = [
  '0.00.065.474 I print_info: n_layer               = 2',
  '0.00.069.267 I load_tensors:   CPU_Mapped model buffer size =    16.13 MiB',
  '0.00.069.939 I llama_context:        CPU  output buffer size =     0.24 MiB',
  '0.00.069.958 I llama_kv_cache:        CPU KV buffer size =     0.25 MiB',
  '0.00.070.777 I sched_reserve:        CPU compute buffer size =     2.26 MiB',
  '0.00.076.655 I srv  llama_server: model loaded',
];
// GPU lines: the same format strings (llama.cpp src/llama-model.cpp:1846,1852; llama-kv-cache.cpp:291;
// llama-context.cpp:738) as a CUDA build prints them for a 32-layer model fully offloaded.
const GPU_LOG = [
  'load_tensors: offloaded 33/33 layers to GPU',
  'load_tensors:        CUDA0 model buffer size =  3820.93 MiB',
  'load_tensors:   CPU_Mapped model buffer size =    70.31 MiB',
  'llama_kv_cache:      CUDA0 KV buffer size =   512.00 MiB',
  'sched_reserve:      CUDA0 compute buffer size =   296.00 MiB',
];

describe('load log placement', () => {
  it("ends at llama-server's \"model loaded\" line (this build and older ones), not at a buffer line", () => {
    expect(CPU_LOG.map(isLoadEnd)).toEqual([false, false, false, false, false, true]);
    expect(isLoadEnd('main: model loaded')).toBe(true);
    expect(isLoadEnd('srv  load_model: loading model')).toBe(false);
    expect(readFileSync(join(__dirname, '../fixtures/load-log/tiny-mmap.log'), 'utf8').split('\n').filter(isLoadEnd)).toHaveLength(1);
  });
  it('reads layers and buffers of a CPU load', () => {
    const acc: Placement = { buffers: {} };
    expect(CPU_LOG.map((l) => parseLoadLine(l, acc))).toEqual([true, true, true, true, true, false]);
    expect(acc).toEqual({ layersTotal: 2, buffers: { 'model CPU_Mapped': 16.13, 'output CPU': 0.24, 'kv CPU': 0.25, 'compute CPU': 2.26 } });
  });

  it("counts a hybrid's recurrent state (RS) as KV of its device", () => {
    // Recorded from this repo's llama-server (de3ff81) loading the tiny qwen35 (gguf/tiny-model.ts fullAttentionInterval) at -lv 4.
    const acc: Placement = { buffers: {} };
    const lines = [
      '0.00.138.546 I llama_kv_cache:        CPU KV buffer size =     2.00 MiB',
      '0.00.143.136 I llama_memory_recurrent:        CPU RS buffer size =     0.13 MiB',
      '0.00.143.140 I llama_memory_recurrent: size =    0.13 MiB (     4 cells,   8 layers,  4 seqs  0 rs_seq), R (f32):    0.04 MiB, S (f32):    0.09 MiB, P (f32):    0.00 MiB',
    ];
    expect(lines.map((l) => parseLoadLine(l, acc))).toEqual([true, true, false]);
    expect(acc.buffers).toEqual({ 'kv CPU': 2.13 });
  });

  it("reads a projector's weights on the device it names and its encoder buffer as `projector <device>`", () => {
    // Recorded from this repo's llama-server (de3ff81) loading the tiny model with the tiny projector
    // (gguf/tiny-projector.ts) at -lv 4; the CUDA lines are the same format strings (tools/mtmd/clip.cpp).
    const cpu: Placement = { buffers: {} };
    const lines = [
      '0.00.129.119 I clip_model_loader: model name:   slotwise-tiny-mmproj-d32-t64-s1',
      '0.00.129.184 I clip_ctx: CLIP using CPU backend',
      '0.00.131.670 I load_hparams: model size:         0.07 MiB',
      '0.00.142.810 I get_dummy_batch: warmup with image size = 64 x 64',
      '0.00.143.241 I reserve_compute_meta:        CPU compute buffer size =     0.07 MiB',
    ];
    expect(lines.map((l) => parseLoadLine(l, cpu))).toEqual([false, true, true, false, true]);
    expect(cpu.buffers).toEqual({ 'projector CPU': 0.14 });
    const gpu: Placement = { buffers: {} };
    for (const l of ['clip_ctx: CLIP using CUDA0 backend', 'load_hparams: model size:         812.50 MiB', 'reserve_compute_meta:      CUDA0 compute buffer size =   276.25 MiB', 'reserve_compute_meta:        CPU compute buffer size =     9.19 MiB']) parseLoadLine(l, gpu);
    expect(gpu.buffers).toEqual({ 'projector CUDA0': 1088.75, 'projector CPU': 9.19 });
    // Without the device line first, a weights line is not attributed to any device.
    expect(parseLoadLine('load_hparams: model size:         1.00 MiB', { buffers: {} })).toBe(false);
  });

  it('reads offloaded layers of a GPU load; the offload line wins over n_layer', () => {
    const acc: Placement = { buffers: {} };
    parseLoadLine('print_info: n_layer               = 32', acc);
    for (const l of GPU_LOG) parseLoadLine(l, acc);
    expect(acc.layersOnGpu).toBe(33);
    expect(acc.layersTotal).toBe(33);
    expect(acc.buffers).toEqual({ 'model CUDA0': 3820.93, 'model CPU_Mapped': 70.31, 'kv CUDA0': 512, 'compute CUDA0': 296 });
  });

  it.each([
    [['-lv', '2'], true],
    [['--verbosity=1'], true],
    [['--log-disable'], true],
    [['--temp', '0.2'], false],
    [[], false],
  ])('setsVerbosity(%j) = %s', (args, want) => {
    expect(setsVerbosity(args)).toBe(want);
  });
});

/** Every (phase, progress) the parser reports over a recorded log (test/fixtures/load-log/SOURCES.md), in order. */
function replay(file: string, keep: (line: string) => boolean = () => true): LoadProgress[] {
  const acc: LoadProgress = { phase: 'starting' };
  const seen: LoadProgress[] = [];
  for (const line of readFileSync(join(__dirname, '../fixtures/load-log', file), 'utf8').split('\n').filter(keep)) {
    if (parseProgressLine(line, acc)) seen.push({ ...acc });
  }
  return seen;
}

describe('load log progress', () => {
  it('a mapped tiny model: weights 0 → 1 at once (the context is next), then the warmup', () => {
    expect(replay('tiny-mmap.log')).toEqual([
      { phase: 'weights', progress: 0 },
      { phase: 'context', progress: 1 },
      { phase: 'warmup', progress: 1 },
    ]);
  });

  it('at -lv 3, with only the state lines: weights, then the context once every stage is read', () => {
    expect(replay('tiny-mmap.log', (l) => l.startsWith('cmd_child_to_router:'))).toEqual([
      { phase: 'weights', progress: 0 },
      { phase: 'context', progress: 1 },
    ]);
    const seen = replay('no-mmap-4gb.log', (l) => l.startsWith('cmd_child_to_router:'));
    expect(seen.filter((p) => p.phase === 'weights').length).toBeGreaterThan(30);
    expect(seen.at(-1)).toEqual({ phase: 'context', progress: 1 });
  });

  it('a 4 GB model read without mmap: many samples between 0 and 1, never going back, then the context', () => {
    const seen = replay('no-mmap-4gb.log');
    const weights = seen.filter((p) => p.phase === 'weights').map((p) => p.progress!);
    expect(weights.length).toBeGreaterThan(30);
    expect(weights[0]).toBe(0);
    expect(weights.at(-1)).toBeLessThan(1);
    expect(seen.find((p) => p.phase !== 'weights')).toEqual({ phase: 'context', progress: 1 }); // every weight read: the context is next
    expect(weights.filter((v) => v > 0.4 && v < 0.6).length).toBeGreaterThan(3);
    for (let i = 1; i < weights.length; i++) expect(weights[i]).toBeGreaterThanOrEqual(weights[i - 1]!);
    expect(seen.at(-1)).toEqual({ phase: 'context', progress: 1 }); // --no-warmup: no warmup line
  });

  it('spreads the stages (model, then projector): half the projector is 75 % overall', () => {
    const acc: LoadProgress = { phase: 'context', progress: 1 / 2 };
    const line = (current: string, value: number) =>
      `cmd_child_to_router:state:${JSON.stringify({ state: 'loading', payload: { stages: ['text_model', 'mmproj_model'], current, value } })}`;
    expect(parseProgressLine(line('mmproj_model', 0.5), acc)).toBe(true);
    expect(acc).toEqual({ phase: 'weights', progress: 0.75 });
    expect(parseProgressLine(line('text_model', 0.2), acc)).toBe(false); // never back
    expect(acc.progress).toBe(0.75);
  });

  it('ignores a state line cut by other output and the ready line', () => {
    const acc: LoadProgress = { phase: 'starting' };
    expect(parseProgressLine('cmd_child_to_router:state:{"state":"loading","payl', acc)).toBe(false);
    expect(parseProgressLine('cmd_child_to_router:state:{"state":"ready","payload":{}}', acc)).toBe(false);
    expect(acc).toEqual({ phase: 'starting' });
  });
});
