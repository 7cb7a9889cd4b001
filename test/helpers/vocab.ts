// Finds llama.cpp's vocab-only GGUF for tests that write the tiny model with the real tokenizer.
// Stopgap until toolchain/source.ts locates the llama.cpp checkout; undefined means "skip".
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

const VOCAB_FILE = 'ggml-vocab-llama-spm.gguf';
const PLACES = [join('models', VOCAB_FILE), join('src', 'models', VOCAB_FILE), VOCAB_FILE];

// `$SLOTWISE_VOCAB_GGUF`, else the first ggml-vocab-llama-spm.gguf under a
// `<cache>/slotwise/llama.cpp/<dir>/` in `models/` (a build), `src/models/` (a checkout) or the dir itself
// (a vocab extracted without a build).
export function vocabPath(): string | undefined {
  const fromEnv = process.env.SLOTWISE_VOCAB_GGUF;
  // Returned even when missing: a wrong explicit path should fail the tests loudly, not skip them.
  if (fromEnv) return fromEnv;
  const root = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'slotwise', 'llama.cpp');
  for (const commit of listDir(root)) {
    for (const place of PLACES) {
      const candidate = join(root, commit, place);
      if (existsSync(candidate)) return candidate;
    }
  }
  return undefined;
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return []; // no llama.cpp cached yet
    throw err;
  }
}
