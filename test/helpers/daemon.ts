// Starts a real daemon process (dist/cli.js daemon) on port 0 with a temp state dir and config,
// and guarantees every process it or its llama-servers started is gone afterwards, even on failure.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, existsSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { onTestFinished } from 'vitest';
import { RpcClient } from '../../shared/rpc-client';
import type { DaemonInfo, Snapshot } from '../../shared/protocol';
import { tinyModelPath, type TestModelSize } from './tiny';
import type { TinyModelKind } from '../../gguf/tiny-model';

export const CLI = resolve(__dirname, '../../dist/cli.js');

export interface TestDaemon {
  proc: ChildProcess;
  pid: number;
  /** The test's temp dir; every llama-server of this daemon has it in its command line. */
  dir: string;
  url: string;
  token: string;
  stateDir: string;
  configPath: string;
  output: () => string;
  client(): Promise<RpcClient>;
  /** GET/POST with the token. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  status(): Promise<Snapshot>;
  waitFor(pred: (s: Snapshot) => boolean, what: string, timeoutMs?: number): Promise<Snapshot>;
  /** Every llama-server pid recorded in the state dir. */
  childPids(): number[];
  stop(): Promise<void>;
}

export interface ModelSpec {
  /** Defaults to the tiny test model, linked into the test's own dir so its llama-server is findable by path. */
  path?: string;
  /** Which generated model when `path` is not given (default tiny). */
  size?: TestModelSize;
  /** Which variant of it (default completion): 'fim', 'embedding', 'rerank'; the config's own `kind` is separate. */
  variant?: TinyModelKind;
  slots?: number | 'auto';
  ctxPerSlot?: number;
  replicas?: number | 'auto';
  autostart?: boolean;
  args?: string[];
  [key: string]: unknown;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `slotwise-${prefix}-`));
}

export function writeConfig(dir: string, config: Record<string, unknown>): string {
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/** Supervisor timings short enough for tests (defaults are for people). */
export const FAST_SUPERVISOR = { healthTimeoutMs: 60_000, stopGraceMs: 5_000, backoffInitialMs: 500, backoffMaxMs: 2_000, healthyResetMs: 300_000, maxCrashes: 5, crashWindowMs: 600_000 };

export async function startTestDaemon(opts: {
  models?: Record<string, ModelSpec>;
  config?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  stateDir?: string;
  /** Started in beforeAll to serve a whole file: the caller stops it in afterAll (else: when the test finishes). */
  stopInAfterAll?: boolean;
} = {}): Promise<TestDaemon> {
  const dir = tempDir('d');
  const stateDir = opts.stateDir ?? join(dir, 'state');
  const models: Record<string, ModelSpec> = {};
  for (const [name, spec] of Object.entries(opts.models ?? {})) {
    let path = spec.path;
    if (path === undefined) {
      path = join(dir, `${name}.gguf`);
      symlinkSync(await tinyModelPath(spec.size, spec.variant), path);
    }
    const { size: _size, variant: _variant, ...rest } = spec;
    models[name] = { ...rest, path };
  }
  // A short shutdown grace: teardown SIGTERMs daemons that may still be streaming (tests of the grace set their own).
  const configPath = writeConfig(dir, { supervisor: FAST_SUPERVISOR, shutdownGraceMs: 1000, models, ...opts.config });
  let out = '';
  const proc = spawn(process.execPath, [CLI, 'daemon', '--state-dir', stateDir, '--config', configPath, '--port', '0'], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const clients: RpcClient[] = [];

  const daemon: TestDaemon = {
    proc,
    pid: proc.pid!,
    dir,
    url: '',
    token: '',
    stateDir,
    configPath,
    output: () => out,
    async client() {
      const c = new RpcClient({ url: daemon.url, token: daemon.token });
      clients.push(c);
      await c.opened;
      return c;
    },
    fetch(path, init = {}) {
      return fetch(`${daemon.url}${path}`, { ...init, headers: { Authorization: `Bearer ${daemon.token}`, ...(init.headers ?? {}) } });
    },
    async status() {
      const res = await daemon.fetch('/api/status');
      return (await res.json()) as Snapshot;
    },
    async waitFor(pred, what, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: Snapshot | undefined;
      while (Date.now() < deadline) {
        last = await daemon.status();
        if (pred(last)) return last;
        await sleep(100);
      }
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last status: ${JSON.stringify(last?.models, null, 1)}\n--- daemon output:\n${out.slice(-3000)}`);
    },
    childPids: () => recordedPids(stateDir),
    async stop() {
      for (const c of clients) c.close();
      await killTree(proc, stateDir, dir);
    },
  };
  if (!opts.stopInAfterAll) onTestFinished(() => daemon.stop());

  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`daemon exited with ${proc.exitCode}: ${out}`);
    const infoPath = join(stateDir, 'daemon.json');
    if (existsSync(infoPath)) {
      const info = JSON.parse(readFileSync(infoPath, 'utf8')) as DaemonInfo;
      if (info.pid === proc.pid) {
        daemon.url = info.url;
        daemon.token = readFileSync(join(stateDir, 'token'), 'utf8').trim();
        return daemon;
      }
    }
    await sleep(50);
  }
  throw new Error(`daemon did not write daemon.json within 30 s: ${out}`);
}

export function recordedPids(stateDir: string): number[] {
  const pids = join(stateDir, 'pids');
  if (!existsSync(pids)) return [];
  return readdirSync(pids)
    .filter((f) => f.endsWith('.json'))
    .map((f) => (JSON.parse(readFileSync(join(pids, f), 'utf8')) as { pid: number }).pid);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The API key a llama-server got from its daemon, read from its environment (`/proc/PID/environ`,
 * readable by its own user only): tests that talk to an instance directly need it, as `bench --direct` does.
 */
export function instanceKey(pid: number): string {
  const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  const key = env.find((e) => e.startsWith('LLAMA_API_KEY='))?.slice('LLAMA_API_KEY='.length);
  if (!key) throw new Error(`llama-server ${pid} has no LLAMA_API_KEY in its environment`);
  return key;
}

/** The `-lv` value on a running llama-server's command line (undefined when it has none). */
export function llamaVerbosity(pid: number): string | undefined {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const i = argv.indexOf('-lv');
  return i < 0 ? undefined : argv[i + 1];
}

/** Resolves once a load's placement is in the state dir's calibration.json (memory/calibration.ts): a later launch runs at -lv 3 on it. */
export function placementRecorded(stateDir: string): Promise<void> {
  return waitUntil(() => {
    try {
      return readFileSync(join(stateDir, 'calibration.json'), 'utf8').includes('"placement"');
    } catch {
      return false;
    }
  }, 'the placement in calibration.json');
}

/** `Authorization` for a direct request to an instance, e.g. `fetch(url, { headers: instanceAuth(inst.pid!) })`. */
export function instanceAuth(pid: number): Record<string, string> {
  return { authorization: `Bearer ${instanceKey(pid)}` };
}

/** Pids of every llama-server process on the machine whose command line mentions `needle`. */
export function llamaServersWith(needle: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (cmd.includes('llama-server') && cmd.includes(needle) && isAlive(Number(name))) out.push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

export async function waitUntil(pred: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await pred()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** SIGTERM the daemon, then SIGKILL whatever of it and its recorded children is left. */
export async function killTree(proc: ChildProcess, stateDir: string, dir: string): Promise<void> {
  const children = recordedPids(stateDir);
  if (proc.exitCode === null && proc.signalCode === null) {
    proc.kill('SIGTERM');
    const deadline = Date.now() + 15_000;
    while (proc.exitCode === null && proc.signalCode === null && Date.now() < deadline) await sleep(50);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
  for (const pid of [...children, ...llamaServersWith(dir)]) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
