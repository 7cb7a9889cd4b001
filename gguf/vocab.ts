// The vocab-only GGUF the tiny test model borrows its tokenizer from (llama.cpp `models/`).
// Needs the source, never a build: extracted on its own when no build has been published yet.
import { existsSync } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { OnSetupProgress } from '../toolchain/build-progress';
import { type LlamaCacheLayout, buildDir, llamaCacheLayout, tmpPath, vocabDir } from '../toolchain/cache-layout';
import { errnoCode } from '../platform/errno';
import { cleanStaging, publishDir, withCacheLock } from '../toolchain/publish';
import { type ToolName, requireTools } from '../toolchain/require-tools';
import { cloneSource, copyVocab, extractSource, readSourceRecord } from '../toolchain/source';

export const VOCAB_FILE = 'ggml-vocab-llama-spm.gguf';

export interface EnsureVocabOptions {
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onProgress?: OnSetupProgress;
}

/**
 * Path of `ggml-vocab-llama-spm.gguf` in the cache (other `ggml-vocab-*.gguf` lie beside it):
 * a build's `models/` when one is published, else `llama.cpp/vocab-<commit>/`, extracted now if needed.
 */
export async function ensureVocab(opts: EnsureVocabOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const layout = llamaCacheLayout(env);
  const cached = await findVocab(layout);
  if (cached) return cached;
  const tools: ToolName[] = existsSync(layout.tarball) ? ['tar', 'git'] : ['npm', 'tar', 'git'];
  await requireTools(tools, env);
  return withCacheLock(
    layout,
    async () => {
      const again = await findVocab(layout);
      if (again) return again;
      await cleanStaging(layout);
      const work = tmpPath(layout.llamaDir);
      await mkdir(work, { recursive: true });
      try {
        const step = { env, signal: opts.signal, onProgress: opts.onProgress };
        const source = await extractSource(layout, work, step);
        await cloneSource(source.bundle, join(work, 'src'), { ...step, vocabOnly: true });
        await copyVocab(join(work, 'src', 'models'), join(work, 'out'));
        const dest = vocabDir(layout, source.commit);
        await publishDir(join(work, 'out'), dest);
        return join(dest, VOCAB_FILE);
      } finally {
        await rm(work, { recursive: true, force: true });
      }
    },
    { signal: opts.signal, onProgress: opts.onProgress },
  );
}

async function findVocab(layout: LlamaCacheLayout): Promise<string | undefined> {
  const record = await readSourceRecord(layout);
  if (!record) return undefined;
  const candidates = [
    join(buildDir(layout, record.commit, false), 'models', VOCAB_FILE),
    join(buildDir(layout, record.commit, true), 'models', VOCAB_FILE),
    join(vocabDir(layout, record.commit), VOCAB_FILE),
  ];
  for (const path of candidates) {
    // Published dirs are complete, so the file existing is enough.
    if (await isFile(path)) return path;
  }
  return undefined;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (err) {
    // ENOENT: not extracted there.
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}
