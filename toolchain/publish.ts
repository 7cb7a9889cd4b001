// Writing the build cache safely. Every writer holds the cache lock, stages under `tmp-*` in the
// same directory and publishes with one rename, so readers see a build dir complete or not at all;
// a crashed writer leaves only `tmp-*`/`old-*` entries, which the next lock holder removes.
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { SlotwiseError } from '../shared/errors';
import type { OnSetupProgress } from './build-progress';
import { withLock } from './cache-lock';
import { type LlamaCacheLayout, buildBinary, buildDir, isStagingName, llamaCacheLayout, tmpPath } from './cache-layout';
import { errnoCode } from '../platform/errno';
import { copyVocab } from './source';
import { LLAMA_SOURCE_PACKAGE } from './source-package';
import { type LlamaServerVersion, runVersion } from './version';
import { which } from '../platform/which';

/** `build-info.json` beside `bin/` and `models/`. */
export interface BuildInfo {
  commit: string;
  cuda: boolean;
  /** ISO time the build was published. */
  builtAt: string;
  /** Wall time of configure + build, in seconds (0 when unknown, e.g. a prebuilt binary). */
  seconds: number;
  cmakeArgs: string[];
  /** Where the source came from: `node-llama-cpp@3.22.1`. */
  source: string;
  /** `--version` of the published binary. */
  version?: string;
}

export interface CacheWriteOptions {
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onProgress?: OnSetupProgress;
}

/** Runs `fn` holding the cache lock, reporting `wait` progress while another setup holds it. */
export async function withCacheLock<T>(layout: LlamaCacheLayout, fn: () => Promise<T>, opts: CacheWriteOptions = {}): Promise<T> {
  return withLock(layout.lock, fn, {
    signal: opts.signal,
    onWait: (h) =>
      opts.onProgress?.({
        phase: 'wait',
        message: `waiting for another setup (pid ${h.pid}${h.host === hostname() ? '' : ` on ${h.host}`})`,
      }),
  });
}

/** Removes what crashed writers left. Only call while holding the lock: then no staging entry is live. */
export async function cleanStaging(layout: LlamaCacheLayout): Promise<string[]> {
  const removed: string[] = [];
  for (const dir of [layout.llamaDir, layout.downloads]) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue; // nothing written there yet
      throw err;
    }
    for (const name of names.filter(isStagingName)) {
      await rm(join(dir, name), { recursive: true, force: true });
      removed.push(join(dir, name));
    }
  }
  return removed;
}

/**
 * Renames the staged dir to `dest` (atomic on one filesystem). An existing `dest` is kept unless
 * `replace`; then it is swapped out first, which leaves `dest` missing for the instant between two renames.
 */
export async function publishDir(staged: string, dest: string, replace = false): Promise<'published' | 'kept'> {
  try {
    await rename(staged, dest);
    return 'published';
  } catch (err) {
    // ENOTEMPTY/EEXIST: a build is already published there; handled below.
    const code = errnoCode(err);
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
  }
  if (!replace) {
    await rm(staged, { recursive: true, force: true });
    return 'kept';
  }
  const old = join(dirname(dest), `old-${process.pid}-${randomBytes(4).toString('hex')}`);
  await rename(dest, old);
  await rename(staged, dest);
  await rm(old, { recursive: true, force: true });
  return 'published';
}

/** Runs the staged binary once; a missing shared library or a wrong architecture fails here, not in the daemon. */
export async function verifyLlamaServer(bin: string, env: NodeJS.ProcessEnv): Promise<LlamaServerVersion> {
  const run = await runVersion(bin, env);
  if (run.ok && run.parsed) return run.parsed;
  const missing = await missingLibraries(bin, env);
  const why = missing.length ? `missing shared libraries: ${missing.join(', ')}` : 'it printed no version';
  throw new SlotwiseError('SW_ERR_BUILD_FAILED', `the built llama-server does not run (${why}): ${bin}`, {
    detail: run.output.split('\n').slice(-40).join('\n'),
  });
}

export interface InstallBuildOptions {
  /** Dir holding `llama-server` (and any shared libraries built beside it). */
  binDir: string;
  /** The source's `models/` dir, for the vocab GGUFs. */
  modelsDir: string;
  commit: string;
  cuda: boolean;
  cmakeArgs: string[];
  seconds: number;
  /** Replace an existing build of the same commit and variant (setup --force). */
  replace?: boolean;
  env: NodeJS.ProcessEnv;
  onProgress?: OnSetupProgress;
}

/** Copies, verifies and publishes a build as `llama.cpp/<commit>[-cuda]/`; returns the published binary. Caller holds the lock. */
export async function installBuild(layout: LlamaCacheLayout, opts: InstallBuildOptions): Promise<{ bin: string; info: BuildInfo }> {
  const staged = tmpPath(layout.llamaDir);
  try {
    opts.onProgress?.({ phase: 'install', message: 'copying llama-server and vocab files' });
    await mkdir(join(staged, 'bin'), { recursive: true });
    for (const name of await readdir(opts.binDir)) {
      // The server itself, plus shared libraries when the build made any (BUILD_SHARED_LIBS=ON); its rpath is $ORIGIN.
      if (name !== 'llama-server' && !/\.(so(\.\d+)*|dylib)$/.test(name)) continue;
      await copyFile(join(opts.binDir, name), join(staged, 'bin', name));
    }
    await chmod(buildBinary(staged), 0o755);
    await copyVocab(opts.modelsDir, join(staged, 'models'));
    opts.onProgress?.({ phase: 'install', message: 'checking llama-server --version' });
    const version = await verifyLlamaServer(buildBinary(staged), opts.env);
    const info: BuildInfo = {
      commit: opts.commit,
      cuda: opts.cuda,
      builtAt: new Date().toISOString(),
      seconds: Math.round(opts.seconds),
      cmakeArgs: opts.cmakeArgs,
      source: `${LLAMA_SOURCE_PACKAGE.name}@${LLAMA_SOURCE_PACKAGE.version}`,
      version: version.version,
    };
    await writeFile(join(staged, 'build-info.json'), `${JSON.stringify(info, null, 2)}\n`);
    const dest = buildDir(layout, opts.commit, opts.cuda);
    await mkdir(dirname(dest), { recursive: true });
    await publishDir(staged, dest, opts.replace);
    return { bin: buildBinary(dest), info };
  } finally {
    await rm(staged, { recursive: true, force: true });
  }
}

export interface PublishPrebuiltOptions extends CacheWriteOptions {
  /** Dir of a finished build's `llama-server` (e.g. `<src>/build/bin`). */
  binDir: string;
  /** The llama.cpp checkout it was built from; its HEAD must be `commit`. */
  srcDir: string;
  commit: string;
  cuda?: boolean;
  cmakeArgs?: string[];
  seconds?: number;
  replace?: boolean;
}

/** Installs a build made outside Slotwise into the cache, through the same lock, checks and atomic publish. */
export async function publishPrebuilt(opts: PublishPrebuiltOptions): Promise<{ bin: string; info: BuildInfo }> {
  const env = opts.env ?? process.env;
  const layout = llamaCacheLayout(env);
  if (await which('git', env)) {
    const head = await execa('git', ['-C', opts.srcDir, 'rev-parse', 'HEAD'], { env, extendEnv: false, reject: false });
    if (!head.failed && head.stdout.trim() !== opts.commit) {
      throw new SlotwiseError('SW_ERR_USAGE', `${opts.srcDir} is at ${head.stdout.trim()}, not ${opts.commit}`);
    }
  }
  return withCacheLock(
    layout,
    async () => {
      await cleanStaging(layout);
      return installBuild(layout, {
        binDir: opts.binDir,
        modelsDir: join(opts.srcDir, 'models'),
        commit: opts.commit,
        cuda: opts.cuda ?? false,
        cmakeArgs: opts.cmakeArgs ?? [],
        seconds: opts.seconds ?? 0,
        replace: opts.replace,
        env,
        onProgress: opts.onProgress,
      });
    },
    opts,
  );
}

/** Libraries `ldd` reports as `not found` (Linux only; elsewhere an empty list). */
async function missingLibraries(bin: string, env: NodeJS.ProcessEnv): Promise<string[]> {
  if (process.platform !== 'linux' || !(await which('ldd', env))) return [];
  const res = await execa('ldd', [bin], { env, extendEnv: false, reject: false, timeout: 10_000 });
  return [...res.stdout.matchAll(/^\s*(\S+) => not found/gm)].map((m) => m[1] ?? '');
}
