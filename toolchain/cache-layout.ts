// Paths of the llama.cpp build cache. Every writer holds `lock`, stages under a `tmp-*` name and
// publishes with one rename, so a path below that exists is complete (see publish.ts).
//
//   <cache>/downloads/node-llama-cpp-<v>.tgz        npm tarball (integrity-checked on every use)
//   <cache>/llama.cpp/setup.lock                     held by the one process writing the cache
//   <cache>/llama.cpp/current-<v>.json               package version -> llama.cpp commit (SourceRecord)
//   <cache>/llama.cpp/<commit>[-cuda]/bin/llama-server
//   <cache>/llama.cpp/<commit>[-cuda]/models/ggml-vocab-*.gguf
//   <cache>/llama.cpp/<commit>[-cuda]/build-info.json
//   <cache>/llama.cpp/vocab-<commit>/ggml-vocab-*.gguf   vocab extracted without a build
//   <cache>/llama.cpp/build-<commit>[-cuda].log      full log of the last build
//   <cache>/llama.cpp/tmp-<pid>-<rand>/              work dir of a running (or crashed) setup
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { cacheDir } from '../shared/paths';
import { LLAMA_SOURCE_PACKAGE } from './source-package';

export interface LlamaCacheLayout {
  root: string;
  downloads: string;
  tarball: string;
  llamaDir: string;
  lock: string;
  sourceRecord: string;
}

/** The layout under `cacheDir(env)`. */
export function llamaCacheLayout(env: NodeJS.ProcessEnv = process.env): LlamaCacheLayout {
  const root = cacheDir(env);
  const llamaDir = join(root, 'llama.cpp');
  const { name, version } = LLAMA_SOURCE_PACKAGE;
  return {
    root,
    downloads: join(root, 'downloads'),
    tarball: join(root, 'downloads', `${name}-${version}.tgz`),
    llamaDir,
    lock: join(llamaDir, 'setup.lock'),
    sourceRecord: join(llamaDir, `current-${version}.json`),
  };
}

/** Directory name of a build: CPU and CUDA builds of one commit live side by side. */
export function buildKey(commit: string, cuda: boolean): string {
  return cuda ? `${commit}-cuda` : commit;
}

export function buildDir(layout: LlamaCacheLayout, commit: string, cuda: boolean): string {
  return join(layout.llamaDir, buildKey(commit, cuda));
}

export function buildBinary(dir: string): string {
  return join(dir, 'bin', 'llama-server');
}

export function vocabDir(layout: LlamaCacheLayout, commit: string): string {
  return join(layout.llamaDir, `vocab-${commit}`);
}

export function buildLogPath(layout: LlamaCacheLayout, commit: string, cuda: boolean): string {
  return join(layout.llamaDir, `build-${buildKey(commit, cuda)}.log`);
}

/** A fresh staging path in `parent`; names starting with `tmp-` are garbage whenever the lock is free. */
export function tmpPath(parent: string): string {
  return join(parent, `tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** True for staging leftovers (see tmpPath and publish.ts's `old-` swap names). */
export function isStagingName(name: string): boolean {
  return name.startsWith('tmp-') || name.startsWith('old-');
}
