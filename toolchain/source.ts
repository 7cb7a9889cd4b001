// Getting the llama.cpp source: `npm pack` the pinned node-llama-cpp tarball into the cache, take
// only its git bundle out with tar, read the bundle's commit, and clone it (fully, or just the vocab files).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { execa } from 'execa';
import { SlotwiseError, firstLine } from '../shared/errors';
import type { OnSetupProgress } from './build-progress';
import { type LlamaCacheLayout, tmpPath } from './cache-layout';
import { errnoCode } from '../platform/errno';
import { runStep } from './run-step';
import { LLAMA_SOURCE_PACKAGE } from './source-package';

/** `current-<version>.json`: which llama.cpp commit the pinned package holds, so later runs need no tarball. */
export interface SourceRecord {
  package: string;
  version: string;
  commit: string;
  /** node-llama-cpp's name for the llama.cpp release (`binariesGithubRelease.json`), e.g. `v0.5.0`. */
  release?: string;
  integrity: string;
}

export interface ExtractedSource extends SourceRecord {
  /** The git bundle inside the work dir. */
  bundle: string;
}

export interface SourceStepOptions {
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  onProgress?: OnSetupProgress;
  log?: Writable;
  logPath?: string;
}

/** Vocab-only GGUFs in the llama.cpp source; `.inp`/`.out` test files beside them are left out. */
export const VOCAB_PATTERN = /^ggml-vocab-.+\.gguf$/;

const PACKAGE_SPEC = `${LLAMA_SOURCE_PACKAGE.name}@${LLAMA_SOURCE_PACKAGE.version}`;
const BUNDLE_IN_TARBALL = 'package/llama/gitRelease.bundle';
const RELEASE_IN_TARBALL = 'package/llama/binariesGithubRelease.json';

/** The recorded commit of the pinned package, when a previous setup read it. */
export async function readSourceRecord(layout: LlamaCacheLayout): Promise<SourceRecord | undefined> {
  let raw: string;
  try {
    raw = await readFile(layout.sourceRecord, 'utf8');
  } catch (err) {
    // ENOENT: no setup has read the bundle yet.
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const rec = JSON.parse(raw) as Partial<SourceRecord>;
    const ok =
      rec.package === LLAMA_SOURCE_PACKAGE.name &&
      rec.version === LLAMA_SOURCE_PACKAGE.version &&
      typeof rec.commit === 'string' &&
      /^[0-9a-f]{40}$/.test(rec.commit);
    return ok ? (rec as SourceRecord) : undefined;
  } catch (err) {
    // A torn or hand-edited record only costs a re-read of the bundle; it is rewritten then.
    if (err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** The pinned tarball in `downloads/`, fetched with `npm pack` unless a copy with the pinned integrity is there. Caller holds the lock. */
export async function ensureTarball(layout: LlamaCacheLayout, opts: SourceStepOptions): Promise<string> {
  if ((await sriOf(layout.tarball)) === LLAMA_SOURCE_PACKAGE.integrity) return layout.tarball;
  opts.onProgress?.({ phase: 'fetch', message: `npm pack ${PACKAGE_SPEC}` });
  await mkdir(layout.downloads, { recursive: true });
  const tmp = tmpPath(layout.downloads);
  await mkdir(tmp);
  try {
    // --ignore-scripts: we want the file, not anything the package would run.
    await runStep('npm', ['pack', PACKAGE_SPEC, '--pack-destination', tmp, '--ignore-scripts'], {
      title: `npm pack ${PACKAGE_SPEC}`,
      cwd: tmp,
      env: opts.env,
      signal: opts.signal,
      log: opts.log,
    });
    const fetched = join(tmp, `${LLAMA_SOURCE_PACKAGE.name}-${LLAMA_SOURCE_PACKAGE.version}.tgz`);
    const got = await sriOf(fetched);
    if (got !== LLAMA_SOURCE_PACKAGE.integrity) {
      throw new SlotwiseError(
        'SW_ERR_BUILD_FAILED',
        `${PACKAGE_SPEC} from npm does not match the pinned integrity (got ${got ?? 'no file'}); check the registry or update LLAMA_SOURCE_PACKAGE`,
      );
    }
    await rename(fetched, layout.tarball);
    return layout.tarball;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Tarball → `<work>/package/llama/gitRelease.bundle`, its commit, and the source record (written). Caller holds the lock. */
export async function extractSource(layout: LlamaCacheLayout, workDir: string, opts: SourceStepOptions): Promise<ExtractedSource> {
  const tarball = await ensureTarball(layout, opts);
  opts.onProgress?.({ phase: 'extract', message: 'gitRelease.bundle' });
  await runStep('tar', ['-xzf', tarball, '-C', workDir, BUNDLE_IN_TARBALL, RELEASE_IN_TARBALL], {
    title: `tar (extracting the llama.cpp bundle from ${tarball})`,
    env: opts.env,
    signal: opts.signal,
    log: opts.log,
  });
  const bundle = join(workDir, BUNDLE_IN_TARBALL);
  const record: SourceRecord = {
    package: LLAMA_SOURCE_PACKAGE.name,
    version: LLAMA_SOURCE_PACKAGE.version,
    commit: await bundleHead(bundle, opts.env),
    release: await readRelease(join(workDir, RELEASE_IN_TARBALL)),
    integrity: LLAMA_SOURCE_PACKAGE.integrity,
  };
  const draft = tmpPath(layout.llamaDir);
  await writeFile(draft, `${JSON.stringify(record, null, 2)}\n`);
  await rename(draft, layout.sourceRecord);
  return { ...record, bundle };
}

/** `git clone` of the bundle into `dest`; with `vocabOnly`, checks out just `models/ggml-vocab-*.gguf`. */
export async function cloneSource(bundle: string, dest: string, opts: SourceStepOptions & { vocabOnly?: boolean }): Promise<void> {
  opts.onProgress?.({ phase: 'clone', message: opts.vocabOnly ? 'vocab files' : 'llama.cpp source' });
  const step = { env: opts.env, signal: opts.signal, log: opts.log, logPath: opts.logPath };
  // The bundle's HEAD is detached: silence git's advice about it.
  const clone = ['-c', 'advice.detachedHead=false', 'clone', '--quiet', ...(opts.vocabOnly ? ['--no-checkout'] : []), bundle, dest];
  await runStep('git', clone, { ...step, title: 'git clone (llama.cpp bundle)' });
  if (opts.vocabOnly) {
    await runStep('git', ['-C', dest, 'checkout', 'HEAD', '--', ':(glob)models/ggml-vocab-*.gguf'], {
      ...step,
      title: 'git checkout (vocab files)',
    });
  }
}

/** Copies the vocab GGUFs of `modelsDir` into `dest`; throws when the llama-spm one is missing. */
export async function copyVocab(modelsDir: string, dest: string): Promise<number> {
  const names = (await readdir(modelsDir)).filter((n) => VOCAB_PATTERN.test(n));
  if (!names.includes('ggml-vocab-llama-spm.gguf')) {
    throw new SlotwiseError('SW_ERR_BUILD_FAILED', `no ggml-vocab-llama-spm.gguf in ${modelsDir}: not a llama.cpp source tree`);
  }
  await mkdir(dest, { recursive: true });
  for (const name of names) await copyFile(join(modelsDir, name), join(dest, name));
  return names.length;
}

async function bundleHead(bundle: string, env: NodeJS.ProcessEnv): Promise<string> {
  const res = await execa('git', ['bundle', 'list-heads', bundle], { env, extendEnv: false, reject: false, timeout: 60_000 });
  const head = /^([0-9a-f]{40}) HEAD$/m.exec(res.stdout) ?? /^([0-9a-f]{40}) /m.exec(res.stdout);
  if (res.failed || !head?.[1]) {
    throw new SlotwiseError('SW_ERR_BUILD_FAILED', `cannot read the commit of ${bundle}: ${firstLine(res.stderr || res.shortMessage || 'no HEAD')}`);
  }
  return head[1];
}

async function readRelease(path: string): Promise<string | undefined> {
  try {
    const value = (JSON.parse(await readFile(path, 'utf8')) as { release?: unknown }).release;
    return typeof value === 'string' ? value : undefined;
  } catch (err) {
    // The release name is informational only; the commit identifies the source.
    if (err instanceof SyntaxError || errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** npm-style `sha512-<base64>` of a file, or undefined when there is no file. */
async function sriOf(path: string): Promise<string | undefined> {
  const hash = createHash('sha512');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (err) {
    // ENOENT: not downloaded yet.
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  return `sha512-${hash.digest('base64')}`;
}
