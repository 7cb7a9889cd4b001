// Configures and builds llama-server from a llama.cpp checkout with CMake, reporting progress.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { SlotwiseError } from '../shared/errors';
import { type OnSetupProgress, parseBuildProgress } from './build-progress';
import { runStep } from './run-step';
import { executableProblem } from '../platform/which';

/**
 * CMake flags of every build. Static libraries, so the published dir is a single binary;
 * no curl/OpenSSL (the daemon gives llama-server local files only); only the server target.
 * LLAMA_USE_PREBUILT_UI=OFF: otherwise the build downloads an unpinned web UI from Hugging Face
 * ("latest"), and stalls on DNS where there is no network; Slotwise uses the API, not that UI.
 */
export const CMAKE_FLAGS: readonly string[] = [
  '-DCMAKE_BUILD_TYPE=Release',
  '-DBUILD_SHARED_LIBS=OFF',
  '-DLLAMA_CURL=OFF',
  '-DLLAMA_OPENSSL=OFF',
  '-DLLAMA_BUILD_TESTS=OFF',
  '-DLLAMA_BUILD_EXAMPLES=OFF',
  '-DLLAMA_BUILD_TOOLS=ON',
  '-DLLAMA_BUILD_SERVER=ON',
  '-DLLAMA_USE_PREBUILT_UI=OFF',
  '-DGGML_CCACHE=OFF',
];

/** The flags for a CPU or CUDA build (GGML_NATIVE stays on: CUDA then targets the GPUs present). */
export function cmakeFlags(cuda: boolean): string[] {
  return cuda ? [...CMAKE_FLAGS, '-DGGML_CUDA=ON'] : [...CMAKE_FLAGS];
}

export interface BuildOptions {
  srcDir: string;
  buildDir: string;
  cuda: boolean;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onProgress?: OnSetupProgress;
  log?: Writable;
  logPath?: string;
  /** Parallel compile jobs; default `os.availableParallelism()`. */
  jobs?: number;
}

export interface BuildResult {
  /** `<buildDir>/bin`, holding `llama-server`. */
  binDir: string;
  cmakeArgs: string[];
  /** Configure + build wall time. */
  seconds: number;
}

/** `cmake -S -B` then `cmake --build --target llama-server`; throws SW_ERR_BUILD_FAILED with the log tail. */
export async function buildLlamaServer(opts: BuildOptions): Promise<BuildResult> {
  const started = performance.now();
  const flags = cmakeFlags(opts.cuda);
  const step = { env: opts.env, signal: opts.signal, log: opts.log, logPath: opts.logPath };
  opts.onProgress?.({ phase: 'configure', message: opts.cuda ? 'cmake (CUDA)' : 'cmake' });
  await runStep('cmake', ['-S', opts.srcDir, '-B', opts.buildDir, ...flags], {
    ...step,
    title: 'cmake configure',
    onLine: (line) => {
      // CMake status lines start with "-- "; they are the only ones worth showing.
      if (line.startsWith('-- ')) opts.onProgress?.({ phase: 'configure', message: line.slice(3) });
    },
  });
  const jobs = opts.jobs ?? availableParallelism();
  let pct = 0;
  opts.onProgress?.({ phase: 'build', pct, message: `llama-server, ${jobs} jobs` });
  await runStep('cmake', ['--build', opts.buildDir, '--target', 'llama-server', '-j', String(jobs)], {
    ...step,
    title: 'cmake --build',
    onLine: (line) => {
      const p = parseBuildProgress(line);
      if (!p) return;
      pct = Math.max(pct, p.pct); // parallel jobs print slightly out of order; never go back
      opts.onProgress?.({ phase: 'build', pct, message: p.message });
    },
  });
  const binDir = join(opts.buildDir, 'bin');
  if (await executableProblem(join(binDir, 'llama-server'))) {
    throw new SlotwiseError('SW_ERR_BUILD_FAILED', `cmake --build finished but made no ${join(binDir, 'llama-server')}`);
  }
  return { binDir, cmakeArgs: flags, seconds: (performance.now() - started) / 1000 };
}
