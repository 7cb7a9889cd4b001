import { describe, expect, it } from 'vitest';
import { parseLoadLine, setsVerbosity, type Offload } from '../../daemon/runtime/load-log';

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
  it('reads layers and buffers of a CPU load', () => {
    const acc: Offload = { buffers: {} };
    expect(CPU_LOG.map((l) => parseLoadLine(l, acc))).toEqual([true, true, true, true, true, false]);
    expect(acc).toEqual({ layersTotal: 2, buffers: { 'model CPU_Mapped': 16.13, 'output CPU': 0.24, 'kv CPU': 0.25, 'compute CPU': 2.26 } });
  });

  it('reads offloaded layers of a GPU load; the offload line wins over n_layer', () => {
    const acc: Offload = { buffers: {} };
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
