// Splits a GGUF the way llama.cpp's gguf-split does (`NAME-00001-of-0000N.gguf`): the first file keeps
// every metadata key, each file gets `split.no`, `split.count`, `split.tensors.count` and a contiguous
// share of the tensors, data copied byte for byte. The tests' way to a split model llama-server loads:
// the llama.cpp build here has no gguf-split binary.
import { open, rename } from 'node:fs/promises';
import { alignUp, encodeGgufHeader, ggmlTensorBytes, layoutTensors, readGgufHeader, type GgufValue } from '../../gguf/gguf';
import { splitPath } from '../../gguf/split';

/** Writes `count` split files beside `prefix` and returns their paths, the first one first. */
export async function splitGguf(src: string, prefix: string, count: number): Promise<string[]> {
  const head = await readGgufHeader(src, { skipArrays: new Set() });
  const per = Math.ceil(head.tensors.length / count);
  const input = await open(src, 'r');
  const paths: string[] = [];
  try {
    for (let no = 0; no < count; no++) {
      const part = head.tensors.slice(no * per, (no + 1) * per);
      const split: [string, GgufValue][] = [
        ['split.no', { type: 'uint16', value: no }],
        ['split.count', { type: 'uint16', value: count }],
        ['split.tensors.count', { type: 'int32', value: head.tensors.length }],
      ];
      const metadata = new Map<string, GgufValue>(no === 0 ? [...head.metadata, ...split] : split);
      const tensors = layoutTensors(part.map(({ name, dims, type }) => ({ name, dims, type })), head.alignment);
      const header = encodeGgufHeader({ metadata, tensors });
      const path = splitPath(prefix, no, count);
      const tmp = `${path}.tmp`;
      const out = await open(tmp, 'w');
      try {
        await out.write(header, 0, header.length, 0);
        for (const [i, t] of tensors.entries()) {
          const bytes = ggmlTensorBytes(t.type, t.dims)!;
          const data = Buffer.alloc(bytes);
          await input.read(data, 0, bytes, head.dataOffset + part[i]!.offset);
          await out.write(data, 0, bytes, header.length + t.offset);
        }
        // The data section ends aligned, as ggml writes it.
        const last = tensors.at(-1);
        const dataBytes = last ? last.offset + ggmlTensorBytes(last.type, last.dims)! : 0;
        await out.truncate(header.length + alignUp(dataBytes, head.alignment));
      } finally {
        await out.close();
      }
      await rename(tmp, path);
      paths.push(path);
    }
  } finally {
    await input.close();
  }
  return paths;
}
