// A GGUF header holding a model's shape alone (its `<arch>.*` numbers, no tensors): what the memory
// plan's unit tests need of a real model too big to write here, as its GGUF metadata states it.
import type { GgufHeader, GgufValue } from '../../gguf/gguf';

/** `keys` without the `<arch>.` prefix, each a uint32: `{ block_count: 62, 'attention.head_count_kv': 16 }`. */
export function shapeHeader(arch: string, keys: Record<string, number>): GgufHeader {
  const metadata = new Map<string, GgufValue>([['general.architecture', { type: 'string', value: arch }]]);
  for (const [k, value] of Object.entries(keys)) metadata.set(`${arch}.${k}`, { type: 'uint32', value });
  return { path: `/models/${arch}.gguf`, fileSize: 0, version: 3, tensors: [], alignment: 32, dataOffset: 0, skipped: new Map(), metadata };
}
