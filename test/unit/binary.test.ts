// Finding llama-server, the cache lock, and publishing into the build cache.
//
// The "llama-server" binaries here are small shell scripts that print what the real one prints for
// `--version` (to stderr). That is enough for what these tests check — the search order, the error
// messages, the lock and the atomic publish — and keeps full builds out of unit tests. The real
// binary is exercised by the opt-in build test (build.test.ts, SLOTWISE_TEST_BUILD=1) and the
// integration tests.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { build } from 'esbuild';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureLlamaServer, findLlamaServer } from '../../toolchain/binary';
import { type LockHolder, withLock } from '../../toolchain/cache-lock';
import { buildDir, llamaCacheLayout } from '../../toolchain/cache-layout';
import { publishPrebuilt, withCacheLock } from '../../toolchain/publish';
import { requireTools } from '../../toolchain/require-tools';
import { LLAMA_SOURCE_PACKAGE } from '../../toolchain/source-package';
import { parseVersionOutput } from '../../toolchain/version';
import { ensureVocab } from '../../gguf/vocab';
import { isAlive } from '../../platform/procfs';
import { rejection } from '../helpers/rejection';

const COMMIT = 'de3ff815ea7d559ee917f063901b8986f038abc6';
const BASE_PATH = '/usr/bin:/bin';

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'slotwise-binary-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A stand-in llama-server: prints a real-looking `--version` to stderr. */
async function fakeServer(dir: string, tag: string, opts: { runs?: boolean } = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'llama-server');
  const body =
    opts.runs === false
      ? 'echo "error while loading shared libraries: libfoo.so.1" >&2\nexit 127\n'
      : `echo "0.00.000.311 I srv  llama_server: initializing ..." >&2\necho "version: 0.5.0-dev (build 1, commit ${tag})" >&2\necho "built with test" >&2\n`;
  await writeFile(path, `#!/bin/sh\n${body}`);
  await chmod(path, 0o755);
  return path;
}

/** A stand-in llama.cpp checkout: `models/` with vocab files of `bytes` each. */
async function fakeSource(dir: string, bytes = 1024): Promise<string> {
  await mkdir(join(dir, 'models'), { recursive: true });
  for (const name of ['ggml-vocab-llama-spm.gguf', 'ggml-vocab-gpt-2.gguf', 'ggml-vocab-qwen2.gguf']) {
    await writeFile(join(dir, 'models', name), Buffer.alloc(bytes, name.length));
  }
  await writeFile(join(dir, 'models', 'ggml-vocab-gpt-2.gguf.inp'), 'test input, not copied');
  return dir;
}

/** The source record a finished `extractSource` leaves, so the cache can be found without the tarball. */
async function writeSourceRecord(env: NodeJS.ProcessEnv): Promise<void> {
  const layout = llamaCacheLayout(env);
  await mkdir(layout.llamaDir, { recursive: true });
  const record = { package: LLAMA_SOURCE_PACKAGE.name, version: LLAMA_SOURCE_PACKAGE.version, commit: COMMIT, integrity: LLAMA_SOURCE_PACKAGE.integrity };
  await writeFile(layout.sourceRecord, JSON.stringify(record));
}

async function seedCache(env: NodeJS.ProcessEnv, tag = 'cached'): Promise<string> {
  await writeSourceRecord(env);
  const binDir = join(tmp, `build-${tag}`);
  await fakeServer(binDir, tag);
  const { bin } = await publishPrebuilt({ env, binDir, srcDir: await fakeSource(join(tmp, `src-${tag}`)), commit: COMMIT });
  return bin;
}

describe('parseVersionOutput', () => {
  it.each([
    {
      name: 'v0.5.0 (stderr with a log line first)',
      text: '0.00.000.311 I srv  llama_server: initializing ...\nversion: 0.5.0-dev (build 1, commit de3ff81)\nbuilt with GNU 12.2.0 for Linux x86_64\n',
      want: { version: '0.5.0-dev (build 1, commit de3ff81)', build: 1, commit: 'de3ff81', builtWith: 'GNU 12.2.0 for Linux x86_64' },
    },
    {
      name: 'older builds',
      text: 'version: 4325 (abc1234)\nbuilt with cc (Debian 12.2.0-14) 12.2.0 for x86_64-linux-gnu\n',
      want: { version: '4325 (abc1234)', build: 4325, commit: 'abc1234', builtWith: 'cc (Debian 12.2.0-14) 12.2.0 for x86_64-linux-gnu' },
    },
    { name: 'unknown shape keeps the text', text: 'version: custom\n', want: { version: 'custom' } },
    { name: 'no version line', text: 'error: unknown argument: --version\n', want: undefined },
  ])('$name', ({ text, want }) => {
    expect(parseVersionOutput(text)).toEqual(want);
  });
});

describe('findLlamaServer', () => {
  it('searches config, then $SLOTWISE_LLAMA_SERVER, then PATH, then the cache', async () => {
    const configured = await fakeServer(join(tmp, 'configured'), 'cfg0001');
    const fromEnv = await fakeServer(join(tmp, 'env'), 'env0001');
    const onPath = await fakeServer(join(tmp, 'path'), 'path001');
    const env: NodeJS.ProcessEnv = {
      PATH: `${join(tmp, 'path')}:${BASE_PATH}`,
      HOME: tmp,
      SLOTWISE_CACHE_DIR: join(tmp, 'cache'),
      SLOTWISE_LLAMA_SERVER: fromEnv,
    };
    const cached = await seedCache(env, 'cach001');

    expect(await findLlamaServer({ configured, env })).toEqual({
      path: configured,
      source: 'config',
      version: '0.5.0-dev (build 1, commit cfg0001)',
      commit: undefined,
    });
    expect(await findLlamaServer({ configured: 'auto', env })).toMatchObject({ path: fromEnv, source: 'env' });
    delete env.SLOTWISE_LLAMA_SERVER;
    expect(await findLlamaServer({ configured: 'auto', env })).toMatchObject({ path: onPath, source: 'path' });
    env.PATH = BASE_PATH;
    expect(await findLlamaServer({ env })).toEqual({
      path: cached,
      source: 'cache',
      version: '0.5.0-dev (build 1, commit cach001)',
      cuda: false,
    });
    expect(cached).toBe(join(tmp, 'cache', 'llama.cpp', COMMIT, 'bin', 'llama-server'));
    expect(await findLlamaServer({ env, cuda: true })).toBeUndefined(); // no CUDA build cached
    await rm(join(tmp, 'cache'), { recursive: true });
    expect(await findLlamaServer({ env })).toBeUndefined();
  });

  it('parses the commit only when it is hex (as llama-server prints it)', async () => {
    const bin = await fakeServer(join(tmp, 'hex'), 'de3ff81');
    expect(await findLlamaServer({ configured: bin, env: { PATH: BASE_PATH } })).toMatchObject({ commit: 'de3ff81' });
  });

  it('rejects a configured path that is missing or not executable, naming the key and the path', async () => {
    const missing = join(tmp, 'nope', 'llama-server');
    const err = await rejection(findLlamaServer({ configured: missing, env: { PATH: BASE_PATH } }));
    expect(err.code).toBe('SW_ERR_LLAMA_SERVER_NOT_FOUND');
    expect(err.message).toBe(`config llamaServer: ${missing} does not exist (set it to "auto" or to a llama-server executable)`);

    const plain = join(tmp, 'plain-file');
    await writeFile(plain, 'not a program');
    const notExec = await rejection(findLlamaServer({ configured: plain, env: { PATH: BASE_PATH } }));
    expect(notExec.message).toBe(`config llamaServer: ${plain} is not executable (set it to "auto" or to a llama-server executable)`);

    // A configured path never falls through to PATH, even when one is there.
    await fakeServer(join(tmp, 'path'), 'path001');
    const stillMissing = await rejection(findLlamaServer({ configured: missing, env: { PATH: join(tmp, 'path') } }));
    expect(stillMissing.code).toBe('SW_ERR_LLAMA_SERVER_NOT_FOUND');
  });

  it('rejects $SLOTWISE_LLAMA_SERVER pointing at nothing', async () => {
    const missing = join(tmp, 'gone');
    const err = await rejection(findLlamaServer({ env: { PATH: BASE_PATH, SLOTWISE_LLAMA_SERVER: missing } }));
    expect(err.code).toBe('SW_ERR_LLAMA_SERVER_NOT_FOUND');
    expect(err.message).toBe(`SLOTWISE_LLAMA_SERVER: ${missing} does not exist (unset it or point it at a llama-server executable)`);
  });

  it('reports no version for a binary that does not run, but still finds it', async () => {
    const broken = await fakeServer(join(tmp, 'broken'), 'x', { runs: false });
    expect(await findLlamaServer({ configured: broken, env: { PATH: BASE_PATH } })).toEqual({ path: broken, source: 'config' });
  });
});

describe('ensureLlamaServer', () => {
  it('returns the cached build without building', async () => {
    const env: NodeJS.ProcessEnv = { PATH: BASE_PATH, HOME: tmp, SLOTWISE_CACHE_DIR: join(tmp, 'cache') };
    const cached = await seedCache(env);
    const phases: string[] = [];
    const found = await ensureLlamaServer({ env, cuda: false, onProgress: (p) => phases.push(p.phase) });
    expect(found).toMatchObject({ path: cached, source: 'cache', built: false });
    expect(phases).toEqual([]);
  });

  it('fails fast with SW_ERR_TOOL_MISSING before fetching anything when cmake is missing', async () => {
    const bin = join(tmp, 'bin');
    await linkTools(bin, ['git', 'tar', 'npm', 'make', 'c++', 'sh']);
    const env: NodeJS.ProcessEnv = { PATH: bin, HOME: tmp, SLOTWISE_CACHE_DIR: join(tmp, 'cache') };
    const err = await rejection(ensureLlamaServer({ env, cuda: false }));
    expect(err.code).toBe('SW_ERR_TOOL_MISSING');
    expect(err.message).toBe(
      'cmake not found: install it (Debian/Ubuntu: sudo apt-get install cmake; macOS: brew install cmake) or set SLOTWISE_LLAMA_SERVER to an existing llama-server',
    );
    expect(existsSync(join(tmp, 'cache', 'downloads'))).toBe(false);
  });
});

describe('requireTools', () => {
  it.each([
    {
      name: 'several missing: one line, packages merged',
      have: ['git', 'sh'],
      need: ['npm', 'tar', 'git', 'cmake', 'make', 'c++'] as const,
      message:
        'npm, tar, cmake, make, a C++ compiler (c++, g++ or clang++) not found: install them (Debian/Ubuntu: sudo apt-get install npm tar cmake build-essential; macOS: brew install node gnu-tar cmake && xcode-select --install) or set SLOTWISE_LLAMA_SERVER to an existing llama-server',
    },
    {
      name: 'any of c++, g++, clang++ will do',
      have: ['g++', 'git'],
      need: ['c++', 'git'] as const,
      message: undefined,
    },
    {
      name: 'compiler alone',
      have: ['git'],
      need: ['c++'] as const,
      message:
        'a C++ compiler (c++, g++ or clang++) not found: install it (Debian/Ubuntu: sudo apt-get install build-essential; macOS: xcode-select --install) or set SLOTWISE_LLAMA_SERVER to an existing llama-server',
    },
  ])('$name', async ({ have, need, message }) => {
    const bin = join(tmp, 'bin');
    await linkTools(bin, have);
    const check = requireTools(need, { PATH: bin }, 'set SLOTWISE_LLAMA_SERVER to an existing llama-server');
    if (message === undefined) await expect(check).resolves.toBeUndefined();
    else expect((await rejection(check)).message).toBe(message);
  });
});

describe('withLock', () => {
  it('serializes two callers in one process and reports whom the second waits for', async () => {
    const lock = join(tmp, 'setup.lock');
    const events: string[] = [];
    const waits: LockHolder[] = [];
    const critical = (name: string) => async () => {
      events.push(`${name} start`);
      await sleep(150);
      events.push(`${name} end`);
    };
    await Promise.all([
      withLock(lock, critical('a'), { pollMs: 20 }),
      sleep(10).then(() => withLock(lock, critical('b'), { pollMs: 20, onWait: (h) => waits.push(h) })),
    ]);
    expect(events).toEqual(['a start', 'a end', 'b start', 'b end']);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatchObject({ pid: process.pid, host: hostname() });
    expect(existsSync(lock)).toBe(false);
  });

  it('takes over a lock whose holder pid is dead', async () => {
    const lock = join(tmp, 'setup.lock');
    const dead = await deadPid();
    await writeFile(lock, JSON.stringify({ pid: dead, host: hostname(), startedAt: new Date().toISOString(), token: 'dead' }));
    const waits: LockHolder[] = [];
    const started = Date.now();
    expect(await withLock(lock, async () => 'ran', { onWait: (h) => waits.push(h) })).toBe('ran');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(waits).toEqual([]);
    expect(existsSync(lock)).toBe(false);
  });

  it('waits for a live holder in another process, reporting it, until cancelled', async () => {
    const lock = join(tmp, 'setup.lock');
    const holder = execa('sleep', ['30']);
    try {
      await writeFile(lock, JSON.stringify({ pid: holder.pid, host: hostname(), startedAt: new Date().toISOString(), token: 'live' }));
      const progress: string[] = [];
      const layout = { ...llamaCacheLayout({ SLOTWISE_CACHE_DIR: tmp }), lock };
      const err = await rejection(
        withCacheLock(layout, async () => 'never', { signal: AbortSignal.timeout(400), onProgress: (p) => progress.push(`${p.phase}: ${p.message}`) }),
      );
      expect(err.code).toBe('SW_ERR_CANCELLED');
      expect(progress).toEqual([`wait: waiting for another setup (pid ${holder.pid})`]);
      expect(existsSync(lock)).toBe(true); // a live holder's lock is never broken
    } finally {
      holder.kill('SIGKILL');
      await holder.catch(() => undefined); // killed on purpose
    }
  });

  it('serializes separate processes, and recovers from a holder killed with SIGKILL', async () => {
    const script = await bundleLockScript();
    const lock = join(tmp, 'setup.lock');
    const journal = join(tmp, 'journal');
    const workers = [1, 2, 3].map(() => execa('node', [script, 'work', lock, journal]));
    await Promise.all(workers);
    const lines = (await readFile(journal, 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(6);
    for (let i = 0; i < lines.length; i += 2) {
      const pid = lines[i]?.split(' ')[1];
      expect([lines[i], lines[i + 1]]).toEqual([`start ${pid}`, `end ${pid}`]);
    }

    const crashed = execa('node', [script, 'hold', lock, journal]);
    await waitFor(() => existsSync(lock));
    crashed.kill('SIGKILL');
    await crashed.catch(() => undefined); // killed on purpose
    expect(existsSync(lock)).toBe(true); // it died holding the lock
    expect(await withLock(lock, async () => 'recovered')).toBe('recovered');
  });
});

describe('publish into the cache', () => {
  it('a concurrent reader never sees a partial build dir', async () => {
    const env: NodeJS.ProcessEnv = { PATH: BASE_PATH, SLOTWISE_CACHE_DIR: join(tmp, 'cache') };
    const layout = llamaCacheLayout(env);
    const dest = buildDir(layout, COMMIT, false);
    const vocabBytes = 8 * 1024 * 1024; // large enough that copying takes many event-loop turns
    const binDir = join(tmp, 'build');
    await fakeServer(binDir, 'de3ff81');
    const srcDir = await fakeSource(join(tmp, 'src'), vocabBytes);
    const expected = ['bin/llama-server', 'build-info.json', 'models/ggml-vocab-gpt-2.gguf', 'models/ggml-vocab-llama-spm.gguf', 'models/ggml-vocab-qwen2.gguf'];

    let done = false;
    let sawStaging = 0;
    let sawComplete = 0;
    const violations: string[] = [];
    const reader = (async () => {
      while (!done) {
        if (existsSync(dest)) {
          const files = listFiles(dest);
          const short = files.filter((f) => f.startsWith('models/') && statSync(join(dest, f)).size !== vocabBytes);
          if (files.join() !== expected.join() || short.length) violations.push(`saw ${files.join(',')} short=${short.join(',')}`);
          else sawComplete++;
        } else if (existsSync(layout.llamaDir) && readdirSync(layout.llamaDir).some((n) => n.startsWith('tmp-'))) {
          sawStaging++;
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    const { bin, info } = await publishPrebuilt({ env, binDir, srcDir, commit: COMMIT, seconds: 12.4, cmakeArgs: ['-DX=1'] });
    await sleep(20);
    done = true;
    await reader;

    expect(violations).toEqual([]);
    expect(sawStaging).toBeGreaterThan(0); // the reader really ran while the build was being staged
    expect(sawComplete).toBeGreaterThan(0);
    expect(bin).toBe(join(dest, 'bin', 'llama-server'));
    expect(info).toMatchObject({ commit: COMMIT, cuda: false, seconds: 12, cmakeArgs: ['-DX=1'], source: 'node-llama-cpp@3.22.1', version: '0.5.0-dev (build 1, commit de3ff81)' });
    expect(JSON.parse(readFileSync(join(dest, 'build-info.json'), 'utf8'))).toEqual(info);
    expect(readdirSync(layout.llamaDir).sort()).toEqual([COMMIT]); // no staging left, lock released
  });

  it('cleans what a crashed setup left, and keeps an existing build unless asked to replace it', async () => {
    const env: NodeJS.ProcessEnv = { PATH: BASE_PATH, SLOTWISE_CACHE_DIR: join(tmp, 'cache') };
    const layout = llamaCacheLayout(env);
    await mkdir(join(layout.llamaDir, 'tmp-99999-deadbeef', 'build'), { recursive: true });
    await mkdir(join(layout.downloads, 'tmp-99999-cafe'), { recursive: true });
    await seedCache(env, 'first01');
    expect(readdirSync(layout.llamaDir).sort()).toEqual([`current-${LLAMA_SOURCE_PACKAGE.version}.json`, COMMIT]);
    expect(readdirSync(layout.downloads)).toEqual([]);

    const binDir = join(tmp, 'second');
    await fakeServer(binDir, 'second1');
    const srcDir = await fakeSource(join(tmp, 'src2'));
    await publishPrebuilt({ env, binDir, srcDir, commit: COMMIT });
    expect(readFileSync(join(buildDir(layout, COMMIT, false), 'bin', 'llama-server'), 'utf8')).toContain('first01');
    await publishPrebuilt({ env, binDir, srcDir, commit: COMMIT, replace: true });
    expect(readFileSync(join(buildDir(layout, COMMIT, false), 'bin', 'llama-server'), 'utf8')).toContain('second1');
    expect(readdirSync(layout.llamaDir).filter((n) => n.startsWith('old-') || n.startsWith('tmp-'))).toEqual([]);
  });

  it('refuses to publish a binary that does not run', async () => {
    const env: NodeJS.ProcessEnv = { PATH: BASE_PATH, SLOTWISE_CACHE_DIR: join(tmp, 'cache') };
    const binDir = join(tmp, 'broken');
    await fakeServer(binDir, 'x', { runs: false });
    const err = await rejection(publishPrebuilt({ env, binDir, srcDir: await fakeSource(join(tmp, 'src')), commit: COMMIT }));
    expect(err.code).toBe('SW_ERR_BUILD_FAILED');
    expect(err.message).toMatch(/^the built llama-server does not run \(it printed no version\): .*\/tmp-\d+-[0-9a-f]+\/bin\/llama-server$/);
    expect(err.detail).toContain('error while loading shared libraries');
    expect(readdirSync(llamaCacheLayout(env).llamaDir)).toEqual([]);
  });

  it('ensureVocab returns the build\'s vocab without any tool on PATH', async () => {
    const env: NodeJS.ProcessEnv = { PATH: BASE_PATH, SLOTWISE_CACHE_DIR: join(tmp, 'cache') };
    await seedCache(env);
    const vocab = await ensureVocab({ env: { ...env, PATH: '' } });
    expect(vocab).toBe(join(buildDir(llamaCacheLayout(env), COMMIT, false), 'models', 'ggml-vocab-llama-spm.gguf'));
    expect(readdirSync(join(vocab, '..')).sort()).toEqual(['ggml-vocab-gpt-2.gguf', 'ggml-vocab-llama-spm.gguf', 'ggml-vocab-qwen2.gguf']);
  });
});

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? listFiles(dir, `${prefix}${e.name}/`) : [`${prefix}${e.name}`]))
    .sort();
}

/** Symlinks the real tools named into `dir`, so `dir` alone can be PATH. */
async function linkTools(dir: string, names: readonly string[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const name of names) {
    const real = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    await symlink(real, join(dir, name));
  }
}

async function deadPid(): Promise<number> {
  const child = execa('true');
  await child;
  const pid = child.pid;
  if (pid === undefined || isAlive(pid)) throw new Error('could not get a dead pid');
  return pid;
}

/** The lock module bundled for plain `node`, plus a tiny driver: `work` journals start/end, `hold` never releases. */
async function bundleLockScript(): Promise<string> {
  const entry = join(tmp, 'lock-driver.ts');
  const lockModule = join(__dirname, '..', '..', 'toolchain', 'cache-lock');
  await writeFile(
    entry,
    `import { appendFileSync } from 'node:fs';
import { withLock } from ${JSON.stringify(lockModule)};
const [mode, lock, journal] = process.argv.slice(2);
withLock(lock!, async () => {
  if (mode === 'hold') return new Promise(() => setInterval(() => {}, 1000));
  appendFileSync(journal!, 'start ' + process.pid + '\\n');
  await new Promise((r) => setTimeout(r, 150));
  appendFileSync(journal!, 'end ' + process.pid + '\\n');
}, { pollMs: 25 });
`,
  );
  const out = join(tmp, 'lock-driver.cjs');
  await build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', target: 'node20', outfile: out, logLevel: 'error' });
  return out;
}

async function waitFor(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}
