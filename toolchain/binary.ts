// Finding the llama-server to run, and building one into the cache when there is none.
// Order: config `llamaServer` path, $SLOTWISE_LLAMA_SERVER, `llama-server` on PATH, the build cache.
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { SlotwiseError } from '../shared/errors';
import { expandHome } from '../shared/paths';
import { buildLlamaServer } from './build';
import type { OnSetupProgress } from './build-progress';
import { type LlamaCacheLayout, buildBinary, buildDir, buildLogPath, llamaCacheLayout, tmpPath } from './cache-layout';
import { cleanStaging, installBuild, withCacheLock } from './publish';
import { type ToolName, requireTools } from './require-tools';
import { cloneSource, extractSource, readSourceRecord } from './source';
import { llamaServerVersion } from './version';
import { executableProblem, which } from '../platform/which';

export type LlamaServerSource = 'config' | 'env' | 'path' | 'cache';

export interface FoundLlamaServer {
  path: string;
  source: LlamaServerSource;
  /** From `--version`, e.g. `0.5.0-dev (build 1, commit de3ff81)`; undefined when the binary printed none. */
  version?: string;
  /** Short commit from `--version`. */
  commit?: string;
  /** For `cache`: whether it is the CUDA build. */
  cuda?: boolean;
}

export interface FindLlamaServerOptions {
  /** Config `llamaServer`: `auto` (or unset) to search, else a path that must be an executable. */
  configured?: string;
  env?: NodeJS.ProcessEnv;
  /** Which cached build: true CUDA, false CPU, undefined the CUDA one when present. */
  cuda?: boolean;
}

export interface EnsureLlamaServerOptions extends FindLlamaServerOptions {
  /** Build with CUDA; undefined = only when `nvidia-smi -L` lists a GPU. */
  cuda?: boolean;
  /** Rebuild into the cache even when a llama-server is found. */
  force?: boolean;
  /** Parallel compile jobs; default `os.availableParallelism()`. */
  jobs?: number;
  onProgress?: OnSetupProgress;
  signal?: AbortSignal;
}

export interface EnsuredLlamaServer extends FoundLlamaServer {
  /** True when this call built it. */
  built: boolean;
}

const ENV_KEY = 'SLOTWISE_LLAMA_SERVER';
const INSTEAD = `set ${ENV_KEY} to an existing llama-server`;

/**
 * The llama-server to run, or undefined when none is configured, on PATH or cached. Throws
 * SW_ERR_LLAMA_SERVER_NOT_FOUND when the config or $SLOTWISE_LLAMA_SERVER names a path that is not an executable.
 */
export async function findLlamaServer(opts: FindLlamaServerOptions = {}): Promise<FoundLlamaServer | undefined> {
  const env = opts.env ?? process.env;
  if (opts.configured && opts.configured !== 'auto') {
    const path = resolve(expandHome(opts.configured, env));
    const problem = await executableProblem(path);
    if (problem) {
      throw new SlotwiseError(
        'SW_ERR_LLAMA_SERVER_NOT_FOUND',
        `config llamaServer: ${path} ${problem} (set it to "auto" or to a llama-server executable)`,
      );
    }
    return withVersion(path, 'config', env);
  }
  const fromEnv = env[ENV_KEY];
  if (fromEnv) {
    const path = resolve(expandHome(fromEnv, env));
    const problem = await executableProblem(path);
    if (problem) {
      throw new SlotwiseError('SW_ERR_LLAMA_SERVER_NOT_FOUND', `${ENV_KEY}: ${path} ${problem} (unset it or point it at a llama-server executable)`);
    }
    return withVersion(path, 'env', env);
  }
  const onPath = await which('llama-server', env);
  if (onPath) return withVersion(onPath, 'path', env);
  return findCached(llamaCacheLayout(env), env, opts.cuda);
}

/** Finds a llama-server, else builds one into the cache (minutes; progress via `onProgress`, abortable via `signal`). */
export async function ensureLlamaServer(opts: EnsureLlamaServerOptions = {}): Promise<EnsuredLlamaServer> {
  const env = opts.env ?? process.env;
  const cuda = opts.cuda ?? (await detectCudaGpu(env));
  if (!opts.force) {
    const found = await findLlamaServer({ ...opts, env, cuda });
    if (found) return { ...found, built: false };
  }
  const layout = llamaCacheLayout(env);
  // Check every tool before the first long step, so a missing one fails in a second, not after the fetch.
  const tools: ToolName[] = ['tar', 'git', 'cmake', 'make', 'c++'];
  if (!existsSync(layout.tarball)) tools.unshift('npm');
  if (cuda) tools.push('nvcc');
  await requireTools(tools, env, INSTEAD);
  const progress = { env, signal: opts.signal, onProgress: opts.onProgress };
  return withCacheLock(
    layout,
    async () => {
      // Another process may have published the build while we waited for the lock.
      const cached = opts.force ? undefined : await findCached(layout, env, cuda);
      if (cached) return { ...cached, built: false };
      await cleanStaging(layout);
      return buildIntoCache(layout, { ...progress, cuda, replace: opts.force ?? false, jobs: opts.jobs });
    },
    progress,
  );
}

// Cached per PATH: nvidia-smi takes ~0.1–1 s and the answer does not change while we run.
const gpuProbe = new Map<string, Promise<boolean>>();

/** True when `nvidia-smi -L` lists at least one GPU. */
export async function detectCudaGpu(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const key = env.PATH ?? '';
  let probe = gpuProbe.get(key);
  if (!probe) {
    probe = (async () => {
      const smi = await which('nvidia-smi', env);
      if (!smi) return false;
      const res = await execa(smi, ['-L'], { env, extendEnv: false, reject: false, timeout: 15_000 });
      return !res.failed && /^GPU \d+:/m.test(res.stdout);
    })();
    gpuProbe.set(key, probe);
  }
  return probe;
}

interface BuildIntoCacheOptions {
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onProgress?: OnSetupProgress;
  cuda: boolean;
  replace: boolean;
  jobs?: number;
}

/** fetch → extract → clone → configure → build → install, in a `tmp-*` work dir. Caller holds the lock. */
async function buildIntoCache(layout: LlamaCacheLayout, opts: BuildIntoCacheOptions): Promise<EnsuredLlamaServer> {
  const work = tmpPath(layout.llamaDir);
  await mkdir(work, { recursive: true });
  try {
    const source = await extractSource(layout, work, opts);
    const logPath = buildLogPath(layout, source.commit, opts.cuda);
    const log = createWriteStream(logPath);
    // A log that cannot be written (disk full) must not crash setup; the steps' own results decide.
    log.on('error', (err) => opts.onProgress?.({ phase: 'build', message: `cannot write ${logPath}: ${err.message}` }));
    try {
      log.write(`# slotwise setup ${new Date().toISOString()}: llama.cpp ${source.commit} (${source.package}@${source.version}), cuda=${opts.cuda}\n`);
      const step = { ...opts, log, logPath };
      const srcDir = join(work, 'src');
      await cloneSource(source.bundle, srcDir, step);
      const built = await buildLlamaServer({ ...step, srcDir, buildDir: join(work, 'build') });
      const { bin, info } = await installBuild(layout, {
        binDir: built.binDir,
        modelsDir: join(srcDir, 'models'),
        commit: source.commit,
        cuda: opts.cuda,
        cmakeArgs: built.cmakeArgs,
        seconds: built.seconds,
        replace: opts.replace,
        env: opts.env,
        onProgress: opts.onProgress,
      });
      log.write(`# published ${bin} (${info.version ?? 'no version'}) after ${info.seconds} s\n`);
      const version = await llamaServerVersion(bin, opts.env);
      return { path: bin, source: 'cache', version: version?.version, commit: version?.commit, cuda: opts.cuda, built: true };
    } finally {
      await new Promise<void>((done) => log.end(done));
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function findCached(layout: LlamaCacheLayout, env: NodeJS.ProcessEnv, cuda: boolean | undefined): Promise<FoundLlamaServer | undefined> {
  const record = await readSourceRecord(layout);
  if (!record) return undefined;
  for (const variant of cuda === undefined ? [true, false] : [cuda]) {
    const bin = buildBinary(buildDir(layout, record.commit, variant));
    if ((await executableProblem(bin)) === undefined) return { ...(await withVersion(bin, 'cache', env)), cuda: variant };
  }
  return undefined;
}

async function withVersion(path: string, source: LlamaServerSource, env: NodeJS.ProcessEnv): Promise<FoundLlamaServer> {
  const v = await llamaServerVersion(path, env);
  const found: FoundLlamaServer = { path, source };
  if (v) {
    found.version = v.version;
    if (v.commit) found.commit = v.commit;
  }
  return found;
}

