// The tiny random-weight model the integration tests run, written once into the cache by Slotwise's own writer.
import { ensureCachedTinyModel } from '../../daemon/llama/tiny-model';

let cached: Promise<string> | undefined;

export function tinyModelPath(): Promise<string> {
  cached ??= ensureCachedTinyModel();
  return cached;
}
