// `setup`, `tiny-model`, `doctor`: getting llama-server and a model in place, and checking the machine.
import { execFile } from 'node:child_process';
import { access, constants, mkdir, open, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../daemon/config/load';
import { resolveConfigPath } from '../../shared/paths';
import { SlotwiseError, toSlotwiseError } from '../../shared/errors';
import { intValue } from '../args';
import { findDaemon } from '../locate';
import { stateDirError, stateDirPaths } from '../../shared/state-dir';
import { inspectStateDir } from '../../shared/state-dir-perms';
import { findLlamaServer } from '../../toolchain/binary';
import { summarizeGguf } from '../../gguf/gguf';
import { readProjectorFile } from '../../daemon/memory/model-file';
import { readModelHeader } from '../../gguf/split';
import { formatBytes } from '../../shared/format';
import { runSetup } from '../../toolchain/setup';
import { TINY_KIND_SPEC, tinyVocabPath, writeTinyModel, type TinyModelKind } from '../../gguf/tiny-model';
import { writeTinyProjector } from '../../gguf/tiny-projector';
import { ensureVocab } from '../../gguf/vocab';
import { which } from '../../platform/which';
import type { Command } from './command';

const run = promisify(execFile);

export const setupCommand: Command = {
  summary: 'find llama-server, or build it from the llama.cpp source shipped in node-llama-cpp (cached)',
  help: [
    'slotwise setup [--cuda] [--force]',
    '',
    'Looks for llama-server in the config ("llamaServer"), $SLOTWISE_LLAMA_SERVER, PATH and the build cache;',
    'if none is found, fetches the llama.cpp source and builds the llama-server target with all cores.',
    'The build is cached in $XDG_CACHE_HOME/slotwise/llama.cpp/<commit>/, so a machine builds it once.',
    '',
    '  --cuda              build with CUDA (default: only when `nvidia-smi -L` lists a GPU)',
    '  --no-cuda           build for the CPU even when a GPU is present',
    '  --force             rebuild into the cache even when a llama-server is found',
    '  --quiet-if-cached   print nothing when nothing needs doing (used by npm test)',
  ].join('\n'),
  options: { cuda: { type: 'boolean' }, 'no-cuda': { type: 'boolean' }, force: { type: 'boolean' }, 'quiet-if-cached': { type: 'boolean' } },
  async run(ctx) {
    if (ctx.values.cuda && ctx.values['no-cuda']) throw new SlotwiseError('SW_ERR_USAGE', 'give --cuda or --no-cuda, not both');
    const config = await loadConfig({ path: ctx.configPath, env: ctx.env, allowMissing: !ctx.configPath, checkFiles: false });
    await runSetup({
      configured: config.llamaServer,
      env: ctx.env,
      cuda: ctx.values.cuda === true ? true : ctx.values['no-cuda'] === true ? false : undefined,
      force: ctx.values.force === true,
      quietIfCached: ctx.values['quiet-if-cached'] === true,
      stderr: ctx.stderr,
    });
    return 0;
  },
};

export const tinyModelCommand: Command = {
  summary: 'write a tiny random-weight llama GGUF (for trying Slotwise without a real model)',
  args: 'PATH',
  maxArgs: 1,
  help: [
    'slotwise tiny-model PATH [--dim N] [--layers N] [--heads N] [--seed N] [--fim | --embedding | --rerank | --tools] [--mmproj vision|audio]',
    '',
    'Writes a random-weight llama-architecture GGUF with the tokenizer of llama.cpp\'s',
    'models/ggml-vocab-llama-spm.gguf. The same options and seed give the same bytes.',
    '',
    '  --dim N      embedding width (default 64; 17 MB file)',
    '  --layers N   transformer blocks (default 2)',
    '  --heads N    attention heads (default 4)',
    '  --seed N     weights seed (default 1)',
    '  --fim        DeepSeek-Coder vocab with fill-in-the-middle tokens: serves /infill',
    '  --embedding  mean pooling: serves /v1/embeddings (model "kind": "embedding")',
    '  --rerank     rank pooling: serves /v1/rerank (model "kind": "rerank")',
    '  --tools      Qwen2 vocab and a chat template with tool calls: llama-server parses its replies\' calls',
    '               into tool_calls (a random model writes one when its reply is begun with <tool_call>)',
    '  --mmproj M   also write a random-weight projector for it beside PATH (NAME-mmproj.gguf): vision reads',
    '               images (`prompt --image`), audio hears WAV/MP3/FLAC (`prompt --audio`); set it as "mmproj"',
  ].join('\n'),
  options: {
    dim: { type: 'string' },
    layers: { type: 'string' },
    seed: { type: 'string' },
    heads: { type: 'string' },
    fim: { type: 'boolean' },
    embedding: { type: 'boolean' },
    rerank: { type: 'boolean' },
    tools: { type: 'boolean' },
    mmproj: { type: 'string' },
  },
  async run(ctx) {
    const [path, extra] = ctx.positionals;
    const usageLine = 'usage: slotwise tiny-model PATH [--dim N] [--layers N] [--seed N] [--fim | --embedding | --rerank | --tools] [--mmproj vision|audio]';
    if (!path || extra !== undefined) throw new SlotwiseError('SW_ERR_USAGE', usageLine);
    const kinds = (['fim', 'embedding', 'rerank', 'tools'] as const).filter((k) => ctx.values[k] === true);
    if (kinds.length > 1) throw new SlotwiseError('SW_ERR_USAGE', `give one of --fim, --embedding, --rerank, --tools, not ${kinds.map((k) => `--${k}`).join(' and ')}`);
    const kind: TinyModelKind = kinds[0] ?? 'completion';
    const modality = ctx.values.mmproj as string | undefined;
    if (modality !== undefined && modality !== 'vision' && modality !== 'audio') throw new SlotwiseError('SW_ERR_USAGE', `--mmproj must be vision or audio, got "${modality}"`);
    if (modality && (kind === 'embedding' || kind === 'rerank')) throw new SlotwiseError('SW_ERR_USAGE', `--mmproj is for a model that generates text: not with --${kind}`);
    // Bounded: a tiny model is for trying and testing (--dim 4096 × 64 layers is already ~13 GB).
    const int = (name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number => (ctx.values[name] === undefined ? fallback : intValue(`--${name}`, ctx.values[name] as string, 1, max));
    const shape = { dim: int('dim', 64, 4096), layers: int('layers', 2, 64), heads: int('heads', 4, 64), seed: int('seed', 1) };
    const out = resolve(path);
    const mmprojOut = modality && join(dirname(out), `${basename(out, '.gguf')}-mmproj.gguf`);
    await checkModelTarget(out);
    if (mmprojOut) await checkModelTarget(mmprojOut);
    const vocabPath = tinyVocabPath(await ensureVocab({ env: ctx.env }), kind);
    const { pooling, chatTemplate } = TINY_KIND_SPEC[kind];
    // Ctrl-C ends the write through its signal, so the temp file beside `out` is removed; the exit code is the shell's for the signal.
    const abort = new AbortController();
    const onInt = (): void => abort.abort(130);
    const onTerm = (): void => abort.abort(143);
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    let res;
    try {
      res = await writeTinyModel(out, { vocabPath, pooling, chatTemplate, ...shape, signal: abort.signal });
      if (mmprojOut) await writeTinyProjector(mmprojOut, { modality, textDim: shape.dim, seed: shape.seed, signal: abort.signal });
    } catch (err) {
      if (!abort.signal.aborted) throw err;
      ctx.stderr.write(`tiny-model cancelled: ${mmprojOut && res ? mmprojOut : out} was not written\n`);
      return abort.signal.reason as number;
    } finally {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    }
    ctx.stdout.write(`${out}\n${mmprojOut ? `${mmprojOut}\n` : ''}`);
    ctx.stderr.write(`wrote ${formatBytes(res.bytes, { decimal: true, digits: 1 })} (sha256 ${res.sha256.slice(0, 16)}…)\n`);
    if (mmprojOut) ctx.stderr.write(`and its ${modality} projector: give it as the model's "mmproj" in the config\n`);
    return 0;
  },
};

/**
 * Where tiny-model may write: a new file, or a GGUF it replaces, in a directory it can make. Anything
 * else that is there (a config, a directory) is refused rather than overwritten.
 */
async function checkModelTarget(out: string): Promise<void> {
  const usage = (why: string): SlotwiseError => new SlotwiseError('SW_ERR_USAGE', `tiny-model: ${why}`);
  const st = await stat(out).catch(() => undefined);
  if (st?.isDirectory()) throw usage(`${out} is a directory — give a file path, e.g. ${join(out, 'tiny.gguf')}`);
  if (st) {
    const magic = Buffer.alloc(4);
    const fh = await open(out, 'r').catch(() => undefined);
    await fh?.read(magic, 0, 4, 0).catch(() => undefined);
    await fh?.close();
    if (magic.toString('latin1') !== 'GGUF') throw usage(`${out} exists and is not a GGUF file: not overwriting it — remove it or give another path`);
  }
  try {
    await mkdir(dirname(out), { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw usage(`cannot make the directory ${dirname(out)}: a file is in the way — give another path`);
    throw usage(`cannot make the directory ${dirname(out)} (${code ?? (err as Error).message}) — give another path`);
  }
}

export const doctorCommand: Command = {
  summary: 'check llama-server, GPU tools, config, state dir and the daemon',
  async run(ctx) {
    let problems = 0;
    const line: DoctorLine = (ok, what, detail) => {
      if (ok === false) problems++;
      ctx.stdout.write(`${ok === 'info' ? '·' : ok ? '✓' : '✗'} ${what.padEnd(13)} ${detail}\n`);
    };
    let configured = 'auto';
    let configBad = false;
    try {
      const config = await loadConfig({ path: ctx.configPath, env: ctx.env, allowMissing: !ctx.configPath });
      configured = config.llamaServer;
      if (!config.source) line('info', 'config', `no file at ${resolveConfigPath(ctx.configPath, ctx.env)}: defaults, no models — create it with a "models" entry (README: "Use it with your models")`);
      else if (config.models.length === 0) line('info', 'config', `${config.source} · no models — add one under "models"`);
      else line(true, 'config', `${config.source} · ${config.models.length} model(s)`);
      for (const m of config.models) {
        try {
          const s = summarizeGguf(await readModelHeader(m.path));
          line(true, `  ${m.name}`, `${s.architecture}, ${s.layers} layers, ctx ${s.contextLength} · ${m.slots} slots × ${m.ctxPerSlot}`);
        } catch (err) {
          line(false, `  ${m.name}`, (err as Error).message);
        }
        if (m.mmproj) {
          try {
            const p = await readProjectorFile(m.mmproj);
            line(true, '    mmproj', `${p.projectorType} (${p.modalities.join(', ')}), ${formatBytes(p.weightBytes)} · ${m.mmproj}`);
          } catch (err) {
            line(false, '    mmproj', (err as Error).message);
          }
        }
        if (m.draft) {
          try {
            const d = summarizeGguf(await readModelHeader(m.draft));
            line(true, '    draft', `${d.architecture}, ${d.layers} layers · ${m.draft}`);
          } catch (err) {
            line(false, '    draft', (err as Error).message);
          }
        }
      }
    } catch (err) {
      configBad = true;
      line(false, 'config', (err as Error).message);
    }
    try {
      const found = await findLlamaServer({ configured, env: ctx.env });
      line(!!found, 'llama-server', found ? `${found.path} (${found.source}) ${found.version ?? ''}` : 'not found — run `slotwise setup`');
      if (!found) {
        for (const tool of ['cmake', 'git', 'c++', 'npm']) {
          const p = await which(tool, ctx.env);
          line(!!p, `  ${tool}`, p ?? `not found — needed to build llama-server`);
        }
      }
    } catch (err) {
      line(false, 'llama-server', (err as Error).message);
    }
    const smi = await which('nvidia-smi', ctx.env);
    let gpus = '';
    if (smi) {
      gpus = await run(smi, ['-L'], { timeout: 5000 }).then((r) => r.stdout.trim().split('\n').length + ' GPU(s)', (e: Error) => `nvidia-smi failed: ${e.message.split('\n')[0]}`);
    }
    const rocm = await which('rocm-smi', ctx.env);
    line('info', 'GPU tools', [smi ? `nvidia-smi (${gpus})` : '', rocm ? 'rocm-smi' : ''].filter(Boolean).join(', ') || 'none: CPU-only host, per-process CPU/RSS shown instead');
    await checkStateDir(ctx.stateDir, line);
    try {
      const daemon = await findDaemon(ctx.stateDir);
      line('info', 'daemon', daemon ? `running at ${daemon.url} (pid ${daemon.info.pid}, version ${daemon.info.version})` : 'not running — `slotwise start`');
    } catch (err) {
      const e = toSlotwiseError(err);
      line('info', 'daemon', e.code === 'SW_ERR_STATE_DIR_UNUSABLE' ? 'not looked for: the state dir is unusable' : `cannot tell: ${e.message}`);
    }
    // A config the daemon would refuse is exit 2, as every other command gives for it.
    return configBad ? 2 : problems ? 1 : 0;
  },
};

type DoctorLine = (ok: boolean | 'info', what: string, detail: string) => void;

/**
 * The state dir's permissions, or whether it can be made. doctor only looks: a dir it created itself
 * (with the umask's 0755) would have been its own ✗ on a machine that never ran the daemon.
 */
async function checkStateDir(dir: string, line: DoctorLine): Promise<void> {
  try {
    const exists = await stat(dir).then(() => true, (err: NodeJS.ErrnoException) => (err.code === 'ENOENT' || err.code === 'ENOTDIR' ? false : Promise.reject(err)));
    if (!exists) {
      const { path: parent, isDir } = await nearestExisting(dirname(dir));
      const writable = isDir && (await access(parent, constants.W_OK).then(() => true, () => false));
      if (writable) line('info', 'state dir', `${dir}: not created yet (the daemon makes it, mode 0700, at its first start)`);
      else line(false, 'state dir', `${dir} cannot be created: ${parent} is ${isDir ? 'not writable' : 'not a directory'} — choose another with --state-dir or $SLOTWISE_STATE_DIR`);
      return;
    }
    await access(dir, constants.W_OK);
    const problems = await inspectStateDir(stateDirPaths(dir));
    line(problems.length === 0, 'state dir', problems.length ? `${dir}: ${problems.length} permission problem(s)` : dir);
    for (const p of problems) line(false, `  ${relative(dir, p.path) || '.'}`, `${p.problem} — ${p.fix}`);
  } catch (err) {
    // A state dir that is a file, or one we may not use: the line the daemon would fail with.
    const e = await stateDirError(dir, err, 'write');
    line(false, 'state dir', e instanceof SlotwiseError ? e.message : `${dir}: ${(err as Error).message}`);
  }
}

/** `dir` or its closest ancestor that exists (where a recursive mkdir would start), and whether it is a directory. */
async function nearestExisting(dir: string): Promise<{ path: string; isDir: boolean }> {
  for (let d = dir; ; d = dirname(d)) {
    const found = await stat(d).then((s) => s.isDirectory(), () => undefined);
    if (found !== undefined || dirname(d) === d) return { path: d, isDir: found ?? false };
  }
}
