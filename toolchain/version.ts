// What `llama-server --version` says. It prints to stderr, e.g. (v0.5.0 as shipped in node-llama-cpp 3.22.1):
//   0.00.000.311 I srv  llama_server: initializing ...
//   version: 0.5.0-dev (build 1, commit de3ff81)
//   built with GNU 12.2.0 for Linux x86_64
// Older builds print `version: 4325 (abc1234)`.
import { stat } from 'node:fs/promises';
import { execa } from 'execa';
import { errnoCode } from '../platform/errno';

export interface LlamaServerVersion {
  /** The text after `version:`, e.g. `0.5.0-dev (build 1, commit de3ff81)`. */
  version: string;
  /** Short commit hash, when printed. */
  commit?: string;
  build?: number;
  /** The `built with ...` line. */
  builtWith?: string;
}

export interface VersionRun {
  ok: boolean;
  /** stdout and stderr together. */
  output: string;
  parsed?: LlamaServerVersion;
}

/** Parses `--version` output; undefined when there is no `version:` line. */
export function parseVersionOutput(text: string): LlamaServerVersion | undefined {
  const line = /^version:\s*(.+?)\s*$/m.exec(text)?.[1];
  if (!line) return undefined;
  const out: LlamaServerVersion = { version: line };
  const modern = /\(build (\d+), commit ([0-9a-f]+)\)/.exec(line);
  const legacy = /^(\d+) \(([0-9a-f]+)\)$/.exec(line);
  if (modern) {
    out.build = Number(modern[1]);
    out.commit = modern[2];
  } else if (legacy) {
    out.build = Number(legacy[1]);
    out.commit = legacy[2];
  }
  const builtWith = /^built with (.+?)\s*$/m.exec(text)?.[1];
  if (builtWith) out.builtWith = builtWith;
  return out;
}

/** Runs `<bin> --version` once (10 s limit). */
export async function runVersion(bin: string, env: NodeJS.ProcessEnv): Promise<VersionRun> {
  const res = await execa(bin, ['--version'], { env, extendEnv: false, reject: false, timeout: 10_000, all: true, stdin: 'ignore' });
  const output = res.all ?? '';
  const parsed = parseVersionOutput(output);
  return { ok: !res.failed && parsed !== undefined, output: output || res.shortMessage || '', parsed };
}

// Keyed by path + inode + mtime + size, so a rebuilt binary at the same path is probed again.
const memo = new Map<string, Promise<LlamaServerVersion | undefined>>();

/** The version of the binary at `bin`, probed once per file identity; undefined when it does not run or says nothing. */
export async function llamaServerVersion(bin: string, env: NodeJS.ProcessEnv): Promise<LlamaServerVersion | undefined> {
  let key: string;
  try {
    const s = await stat(bin);
    key = `${bin}\0${s.ino}\0${s.mtimeMs}\0${s.size}`;
  } catch (err) {
    // ENOENT: removed since it was found; nothing to ask.
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  let pending = memo.get(key);
  if (!pending) {
    pending = runVersion(bin, env).then((r) => (r.ok ? r.parsed : undefined));
    memo.set(key, pending);
  }
  return pending;
}
