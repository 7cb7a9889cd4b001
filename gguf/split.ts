// A model split over several GGUF files, as llama.cpp's gguf-split writes large models
// (`NAME-00001-of-00003.gguf`): the first file holds the metadata and `split.count`, every file some
// of the tensors. llama-server is given the first and finds the rest by that naming (src/llama.cpp
// llama_split_prefix / llama_split_path); the memory plan must count the tensors of all of them.
import { SlotwiseError } from '../shared/errors';
import { ggufNumber, readGgufHeader, type GgufHeader, type ReadGgufOptions } from './gguf';

/** llama_split_path: `PREFIX-%05d-of-%05d.gguf`, `no` counted from 0. */
export function splitPath(prefix: string, no: number, count: number): string {
  return `${prefix}-${String(no + 1).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.gguf`;
}

/** llama_split_prefix: `path` less its `-%05d-of-%05d.gguf` for split `no`, or undefined when not named so. */
export function splitPrefix(path: string, no: number, count: number): string | undefined {
  const suffix = splitPath('', no, count);
  return path.length > suffix.length && path.endsWith(suffix) ? path.slice(0, -suffix.length) : undefined;
}

/** Every split's path given the first one's, or undefined when its name is not the first of `count`. */
export function splitPaths(first: string, count: number): string[] | undefined {
  const prefix = splitPrefix(first, 0, count);
  return prefix === undefined ? undefined : Array.from({ length: count }, (_, no) => splitPath(prefix, no, count));
}

/**
 * The header of the model at `path` with the tensors of all its splits (one file: its own header).
 * `fileSize` is all the files together. Fails as llama-server would: a later split given instead of
 * the first, a split missing or not of this model, a tensor count that does not add up.
 */
export async function readModelHeader(path: string, opts: ReadGgufOptions = {}): Promise<GgufHeader> {
  const head = await readGgufHeader(path, opts);
  const count = ggufNumber(head, 'split.count') ?? 1;
  if (count <= 1) return head;
  const no = ggufNumber(head, 'split.no') ?? 0;
  if (no !== 0) {
    const prefix = splitPrefix(path, no, count);
    const first = prefix === undefined ? `the file ending in ${splitPath('', 0, count)}` : splitPath(prefix, 0, count);
    throw new SlotwiseError('SW_ERR_MODEL_FILE', `${path} is split ${no + 1} of ${count} of a model: give the first, ${first}`);
  }
  const paths = splitPaths(path, count);
  if (!paths) {
    throw new SlotwiseError('SW_ERR_MODEL_FILE', `${path} is the first of ${count} split files but is not named like one (…${splitPath('', 0, count)}), so llama-server cannot find the others — keep gguf-split's names`);
  }
  const tensors = [...head.tensors];
  let fileSize = head.fileSize;
  for (const [i, p] of paths.entries()) {
    if (i === 0) continue;
    const part = await readGgufHeader(p, opts).catch((err: unknown) => {
      throw new SlotwiseError('SW_ERR_MODEL_FILE', `split ${i + 1} of ${count} of ${path}: ${(err as Error).message}`, { cause: err });
    });
    if (ggufNumber(part, 'split.no') !== i) {
      throw new SlotwiseError('SW_ERR_MODEL_FILE', `${p} is not split ${i + 1} of ${count} of ${path} (its split.no says otherwise) — download the splits again`);
    }
    tensors.push(...part.tensors);
    fileSize += part.fileSize;
  }
  const expected = ggufNumber(head, 'split.tensors.count');
  if (expected !== undefined && expected !== tensors.length) {
    throw new SlotwiseError('SW_ERR_GGUF_INVALID', `${path}: its ${count} splits hold ${tensors.length} tensors, ${expected} expected — a split is truncated or from another model`);
  }
  return { ...head, tensors, fileSize };
}
