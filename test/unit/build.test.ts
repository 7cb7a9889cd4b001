// Build progress, the step runner and the CMake driver. The `cmake` used by the driver tests is a
// shell script that prints what CMake prints; it tests our plumbing (arguments, progress, errors),
// not CMake. The real build runs only in the opt-in test at the end (SLOTWISE_TEST_BUILD=1).
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureLlamaServer } from '../../toolchain/binary';
import { CMAKE_FLAGS, buildLlamaServer, cmakeFlags } from '../../toolchain/build';
import { type SetupProgress, parseBuildProgress } from '../../toolchain/build-progress';
import { runStep } from '../../toolchain/run-step';
import { createProgressPrinter, formatProgressLine } from '../../toolchain/setup';
import { ensureVocab } from '../../gguf/vocab';
import { isAlive } from '../../platform/procfs';
import { rejection } from '../helpers/rejection';

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'slotwise-build-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('parseBuildProgress', () => {
  it.each([
    { line: '[ 48%] Building C object ggml/src/CMakeFiles/ggml-cpu.dir/ggml-cpu/ggml-cpu.c.o', want: { pct: 48, message: 'ggml-cpu.c' } },
    { line: '[  1%] Building CXX object vendor/hash/CMakeFiles/vendor-hash.dir/hash.cpp.o', want: { pct: 1, message: 'hash.cpp' } },
    {
      line: '[ 62%] Building CUDA object ggml/src/ggml-cuda/CMakeFiles/ggml-cuda.dir/template-instances/fattn-vec-f16.cu.o',
      want: { pct: 62, message: 'fattn-vec-f16.cu' },
    },
    { line: '[100%] Linking CXX executable ../../bin/llama-server', want: { pct: 100, message: 'link llama-server' } },
    { line: '[  7%] Linking CXX static library libggml-base.a', want: { pct: 7, message: 'link libggml-base.a' } },
    { line: '[100%] Built target llama-server', want: { pct: 100, message: 'built llama-server' } },
    { line: '[ 10%] Provisioning UI assets', want: { pct: 10, message: 'Provisioning UI assets' } },
    { line: '\x1b[32m[ 33%] Building C object a/b.c.o\x1b[0m', want: { pct: 33, message: 'b.c' } },
    { line: '[12/345] Building CXX object common/CMakeFiles/common.dir/arg.cpp.o', want: { pct: 3, message: 'arg.cpp' } },
    { line: '[345/345] Linking CXX executable bin/llama-server', want: { pct: 100, message: 'link llama-server' } },
    { line: "/usr/lib/gcc/x86_64-linux-gnu/12/include/avx512fintrin.h:206:11: note: '__Y' was declared here", want: undefined },
    { line: '-- Configuring done', want: undefined },
    { line: '[0/0] nothing', want: undefined },
    { line: '', want: undefined },
  ])('$line', ({ line, want }) => {
    expect(parseBuildProgress(line)).toEqual(want);
  });
});

describe('progress output', () => {
  it.each([
    { p: { phase: 'build', pct: 48, message: 'ggml-cpu.c' }, line: '[#####.....]  48% build      ggml-cpu.c' },
    { p: { phase: 'build', pct: 100, message: 'built llama-server' }, line: '[##########] 100% build      built llama-server' },
    { p: { phase: 'fetch', message: 'npm pack node-llama-cpp@3.22.1' }, line: '[..........]      fetch      npm pack node-llama-cpp@3.22.1' },
    { p: { phase: 'configure', message: 'Configuring done' }, line: '[..........]      configure  Configuring done' },
  ] satisfies { p: SetupProgress; line: string }[])('$line', ({ p, line }) => {
    expect(formatProgressLine(p)).toBe(line);
  });

  it('prints plain lines on phase changes, every 10 % and every 15 s when not a TTY', () => {
    const out: string[] = [];
    let now = 0;
    const printer = createProgressPrinter({ write: (s: string) => out.push(s), isTTY: false }, () => now);
    const events: [number, SetupProgress][] = [
      [0, { phase: 'clone', message: 'llama.cpp source' }],
      [1000, { phase: 'configure', message: 'cmake' }],
      [1100, { phase: 'configure', message: 'Configuring done' }],
      [2000, { phase: 'build', pct: 0, message: 'llama-server, 2 jobs' }],
      [3000, { phase: 'build', pct: 4, message: 'ggml.c' }],
      [4000, { phase: 'build', pct: 11, message: 'ggml-cpu.c' }],
      [5000, { phase: 'build', pct: 12, message: 'repack.cpp' }],
      [20_000, { phase: 'build', pct: 13, message: 'slow.cpp' }],
      [21_000, { phase: 'build', pct: 100, message: 'built llama-server' }],
    ];
    for (const [t, p] of events) {
      now = t;
      printer.update(p);
    }
    printer.done();
    expect(out).toEqual([
      'setup: clone llama.cpp source\n',
      'setup: configure cmake\n',
      'setup: build 0% llama-server, 2 jobs\n',
      'setup: build 11% ggml-cpu.c\n',
      'setup: build 13% slow.cpp\n',
      'setup: build 100% built llama-server\n',
    ]);
  });

  it('rewrites one line on a TTY, throttled, and clears it at the end', () => {
    const out: string[] = [];
    let now = 0;
    const printer = createProgressPrinter({ write: (s: string) => out.push(s), isTTY: true, columns: 32 }, () => now);
    printer.update({ phase: 'build', pct: 48, message: 'ggml-cpu.c' });
    now = 50;
    printer.update({ phase: 'build', pct: 49, message: 'skipped: too soon' });
    now = 200;
    printer.update({ phase: 'install', message: 'copying llama-server and vocab files' });
    printer.done();
    expect(out).toEqual(['\r[#####.....]  48% build      gg\x1b[K', '\r[..........]      install    co\x1b[K', '\r\x1b[K']);
  });
});

describe('cmakeFlags', () => {
  it('builds a static server without network features, CUDA only when asked', () => {
    expect(CMAKE_FLAGS).toEqual(
      expect.arrayContaining(['-DCMAKE_BUILD_TYPE=Release', '-DBUILD_SHARED_LIBS=OFF', '-DLLAMA_CURL=OFF', '-DLLAMA_OPENSSL=OFF', '-DLLAMA_BUILD_SERVER=ON', '-DGGML_CCACHE=OFF', '-DLLAMA_USE_PREBUILT_UI=OFF']),
    );
    expect(cmakeFlags(false)).not.toContain('-DGGML_CUDA=ON');
    expect(cmakeFlags(true)).toEqual([...CMAKE_FLAGS, '-DGGML_CUDA=ON']);
  });
});

describe('runStep', () => {
  it('fails with the exit code in one line and the last 40 lines as detail', async () => {
    const logPath = join(tmp, 'step.log');
    const log = createWriteStream(logPath);
    const err = await rejection(
      runStep('sh', ['-c', 'for i in $(seq 1 100); do echo "line $i"; done; echo "fatal: boom" >&2; exit 3'], {
        title: 'test step',
        env: { PATH: '/usr/bin:/bin' },
        log,
        logPath,
      }),
    );
    await new Promise<void>((done) => log.end(done));
    expect(err.code).toBe('SW_ERR_BUILD_FAILED');
    expect(err.message).toBe(`test step failed (exit code 3); full log: ${logPath}`);
    const detail = err.detail?.split('\n') ?? [];
    expect(detail).toHaveLength(40);
    expect(detail[0]).toBe('line 62');
    expect(detail.at(-1)).toBe('fatal: boom');
    const logged = readFileSync(logPath, 'utf8').split('\n');
    expect(logged[0]).toMatch(/^\$ sh -c for i in/);
    expect(logged).toContain('line 1');
    expect(logged).toContain('fatal: boom');
  });

  it('reports a command that cannot start', async () => {
    const err = await rejection(runStep('no-such-tool-here', [], { title: 'missing tool', env: { PATH: '/usr/bin:/bin' } }));
    expect(err.code).toBe('SW_ERR_BUILD_FAILED');
    expect(err.message).toMatch(/^missing tool failed \(.*ENOENT.*\)$/);
  });

  it('abort kills the whole process tree, not only the direct child', async () => {
    const controller = new AbortController();
    let grandchild = 0;
    const step = runStep('sh', ['-c', 'sleep 60 & echo "child $!"; wait'], {
      title: 'tree',
      env: { PATH: '/usr/bin:/bin' },
      signal: controller.signal,
      onLine: (line) => {
        const m = /^child (\d+)$/.exec(line);
        if (m) {
          grandchild = Number(m[1]);
          controller.abort();
        }
      },
    });
    const err = await rejection(step);
    expect(err.code).toBe('SW_ERR_CANCELLED');
    expect(err.message).toBe('setup cancelled during tree');
    expect(grandchild).toBeGreaterThan(0);
    const deadline = Date.now() + 5000;
    while (isAlive(grandchild) && Date.now() < deadline) await sleep(20);
    expect(isAlive(grandchild)).toBe(false);
  });
});

describe('buildLlamaServer', () => {
  async function fakeCmake(): Promise<{ env: NodeJS.ProcessEnv; argsFile: string }> {
    const bin = join(tmp, 'fakebin');
    await mkdir(bin, { recursive: true });
    const argsFile = join(tmp, 'cmake-args');
    await writeFile(
      join(bin, 'cmake'),
      `#!/bin/sh
echo "$@" >> "${argsFile}"
if [ "$1" = "--build" ]; then
  echo "[  5%] Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o"
  echo "/usr/lib/gcc/x86_64-linux-gnu/12/include/avx512fintrin.h:206:11: warning: '__Y' may be used uninitialized"
  echo "[ 48%] Building C object ggml/src/CMakeFiles/ggml-cpu.dir/ggml-cpu/ggml-cpu.c.o"
  echo "[ 47%] Building CXX object ggml/src/CMakeFiles/ggml-cpu.dir/ggml-cpu/repack.cpp.o"
  if [ -n "$FAKE_CMAKE_FAIL" ]; then echo "ggml.c:1:1: error: boom" >&2; exit 2; fi
  mkdir -p "$2/bin" && printf '#!/bin/sh\\n' > "$2/bin/llama-server" && chmod +x "$2/bin/llama-server"
  echo "[100%] Linking CXX executable ../../bin/llama-server"
  echo "[100%] Built target llama-server"
else
  echo "-- The C compiler identification is GNU 12.2.0"
  echo "-- Configuring done"
fi
`,
    );
    await chmod(join(bin, 'cmake'), 0o755);
    return { env: { PATH: `${bin}:/usr/bin:/bin` }, argsFile };
  }

  it('configures, builds the server target and reports monotonic progress', async () => {
    const { env, argsFile } = await fakeCmake();
    const events: SetupProgress[] = [];
    const src = join(tmp, 'src');
    const build = join(tmp, 'build');
    const result = await buildLlamaServer({ srcDir: src, buildDir: build, cuda: false, env, jobs: 3, onProgress: (p) => events.push(p) });
    expect(result.binDir).toBe(join(build, 'bin'));
    expect(result.cmakeArgs).toEqual([...CMAKE_FLAGS]);
    expect(readFileSync(argsFile, 'utf8').trim().split('\n')).toEqual([
      ['-S', src, '-B', build, ...CMAKE_FLAGS].join(' '),
      `--build ${build} --target llama-server -j 3`,
    ]);
    expect(events).toEqual([
      { phase: 'configure', message: 'cmake' },
      { phase: 'configure', message: 'The C compiler identification is GNU 12.2.0' },
      { phase: 'configure', message: 'Configuring done' },
      { phase: 'build', pct: 0, message: 'llama-server, 3 jobs' },
      { phase: 'build', pct: 5, message: 'ggml.c' },
      { phase: 'build', pct: 48, message: 'ggml-cpu.c' },
      { phase: 'build', pct: 48, message: 'repack.cpp' },
      { phase: 'build', pct: 100, message: 'link llama-server' },
      { phase: 'build', pct: 100, message: 'built llama-server' },
    ]);
  });

  it('turns a compile error into SW_ERR_BUILD_FAILED with the log tail', async () => {
    const { env } = await fakeCmake();
    const logPath = join(tmp, 'build.log');
    const log = createWriteStream(logPath);
    const err = await rejection(
      buildLlamaServer({ srcDir: join(tmp, 'src'), buildDir: join(tmp, 'build'), cuda: true, env: { ...env, FAKE_CMAKE_FAIL: '1' }, log, logPath }),
    );
    await new Promise<void>((done) => log.end(done));
    expect(err.code).toBe('SW_ERR_BUILD_FAILED');
    expect(err.message).toBe(`cmake --build failed (exit code 2); full log: ${logPath}`);
    expect(err.detail?.split('\n').at(-1)).toBe('ggml.c:1:1: error: boom');
    expect(readFileSync(logPath, 'utf8')).toContain('-DGGML_CUDA=ON');
  });
});

// Opt-in: fetches node-llama-cpp with npm and builds llama-server for real (minutes; a CUDA build
// when nvidia-smi lists a GPU). Run with SLOTWISE_TEST_BUILD=1.
describe.runIf(process.env.SLOTWISE_TEST_BUILD === '1')('real setup (SLOTWISE_TEST_BUILD=1)', () => {
  it(
    'extracts the vocab without building, then builds, verifies and caches llama-server',
    async () => {
      const env: NodeJS.ProcessEnv = { ...process.env, SLOTWISE_CACHE_DIR: join(tmp, 'cache') };
      delete env.SLOTWISE_LLAMA_SERVER;
      env.PATH = (env.PATH ?? '')
        .split(':')
        .filter((dir) => !existsSync(join(dir, 'llama-server')))
        .join(':');
      const phases = new Set<string>();
      const onProgress = (p: SetupProgress): void => void phases.add(p.phase);

      const vocab = await ensureVocab({ env, onProgress });
      expect(vocab).toMatch(/llama\.cpp\/vocab-[0-9a-f]{40}\/ggml-vocab-llama-spm\.gguf$/);
      expect(readFileSync(vocab).subarray(0, 4).toString()).toBe('GGUF');
      expect([...phases]).toEqual(['fetch', 'extract', 'clone']);

      const built = await ensureLlamaServer({ env, onProgress });
      expect(built).toMatchObject({ source: 'cache', built: true });
      expect(built.version).toMatch(/commit [0-9a-f]{7}/);
      const version = await execa(built.path, ['--version'], { reject: false, all: true });
      expect(version.all).toContain(built.version);
      expect(phases).toEqual(new Set(['fetch', 'extract', 'clone', 'configure', 'build', 'install']));
      const again = await ensureLlamaServer({ env });
      expect(again).toMatchObject({ path: built.path, built: false });
    },
    60 * 60_000,
  );
});
