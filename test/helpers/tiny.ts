// The random-weight models the integration tests run, written once into the cache by Slotwise's own writer.
// `tiny` (dim 64, 2 layers, 17 MB) is fast; `slow` (dim 256, 4 layers) keeps slots busy long enough to watch;
// `long` is `slow` with a 16k training context, for replies that must still stream after many seconds
// (llama-server caps a slot's context, and so a reply, at the training context).
// A kind other than 'completion' picks the variant: 'fim' (coder vocab with FIM tokens, for /infill),
// 'embedding' (mean pooling) or 'rerank' (rank pooling); see gguf/tiny-model.ts.
import { ensureCachedTinyModel, type TinyModelKind } from '../../gguf/tiny-model';

export type TestModelSize = 'tiny' | 'slow' | 'long';

const SIZES: Record<TestModelSize, { dim: number; layers: number; contextLength?: number }> = {
  tiny: { dim: 64, layers: 2 },
  slow: { dim: 256, layers: 4 },
  long: { dim: 256, layers: 4, contextLength: 16384 },
};

const cached = new Map<string, Promise<string>>();

export function tinyModelPath(size: TestModelSize = 'tiny', kind: TinyModelKind = 'completion'): Promise<string> {
  const key = `${size}-${kind}`;
  let p = cached.get(key);
  if (!p) cached.set(key, (p = ensureCachedTinyModel({ ...SIZES[size], kind })));
  return p;
}
