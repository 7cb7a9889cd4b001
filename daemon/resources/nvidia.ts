// NVIDIA GPUs through one long-running `nvidia-smi --query-gpu … -lms N` (NVML sampled in-process, no fork
// per sample) plus a `--query-compute-apps` poll every few seconds for per-process VRAM.
import { EventEmitter } from 'node:events';
import { execa, type ResultPromise } from 'execa';
import { firstLine } from '../../shared/errors';
import { silentLogger, type Logger } from '../../platform/log';
import { signalGroup, terminate } from '../../platform/process-group';
import type { GpuStatus } from '../../shared/protocol';
import type { GpuSource } from './gpu-source';
import { COMPUTE_APPS_ARGS, gpuQueryArgs, parseComputeApps, parseGpuLine } from './nvidia-parse';
import { quote, WarningBoard } from './warning-board';

export interface NvidiaSourceOptions {
  /** Absolute path of nvidia-smi. */
  binary: string;
  /** GPU sampling period in ms (`-lms`). */
  intervalMs: number;
  /** Period of the per-process VRAM poll in ms. Default max(5000, intervalMs). */
  appsIntervalMs?: number;
  /** First restart delay after the sampler died, doubled per failure up to restartMaxMs. Default 1000. */
  restartBaseMs?: number;
  /** Default 60000. */
  restartMaxMs?: number;
  /** Silence after which a running nvidia-smi counts as hung and is killed. Default max(30000, 10 × intervalMs). */
  stallMs?: number;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

type Child = ResultPromise<{ stdin: 'ignore'; stdout: 'pipe'; stderr: 'pipe'; detached: true; reject: false; buffer: false; cleanup: false }>;

interface Seen {
  gpu: GpuStatus;
  at: number;
}

export class NvidiaSource extends EventEmitter<{ change: [] }> implements GpuSource {
  readonly tool = 'nvidia-smi';
  #opts: Required<Omit<NvidiaSourceOptions, 'env' | 'logger'>>;
  #env: NodeJS.ProcessEnv | undefined;
  #logger: Logger;
  #seen = new Map<number, Seen>();
  #vram = new Map<number, number>();
  #board = new WarningBoard();
  #child: Child | undefined;
  #exited: Promise<void> | undefined;
  /** When the running child was started or last printed a good line (Date.now()). */
  #heardAt = 0;
  #failures = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #appsTimer: NodeJS.Timeout | undefined;
  #appsRunning = false;
  #closed = false;

  constructor(opts: NvidiaSourceOptions) {
    super();
    this.#opts = {
      binary: opts.binary,
      intervalMs: opts.intervalMs,
      appsIntervalMs: opts.appsIntervalMs ?? Math.max(5000, opts.intervalMs),
      restartBaseMs: opts.restartBaseMs ?? 1000,
      restartMaxMs: opts.restartMaxMs ?? 60_000,
      stallMs: opts.stallMs ?? Math.max(30_000, 10 * opts.intervalMs),
    };
    this.#env = opts.env;
    this.#logger = opts.logger ?? silentLogger;
  }

  start(): void {
    if (this.#closed || this.#child) return;
    this.#spawn();
    void this.#pollApps();
    this.#appsTimer = setInterval(() => {
      this.#checkStalled();
      void this.#pollApps();
    }, this.#opts.appsIntervalMs);
    this.#appsTimer.unref();
  }

  gpus(): GpuStatus[] {
    // A GPU that fell off the bus stops getting lines: drop it rather than show its last reading forever.
    const staleBefore = Date.now() - Math.max(5000, 3 * this.#opts.intervalMs);
    return [...this.#seen.values()]
      .filter((s) => s.at >= staleBefore)
      .map((s) => ({ ...s.gpu }))
      .sort((a, b) => a.index - b.index);
  }

  vramBytes(pid: number): number | undefined {
    return this.#vram.get(pid);
  }

  warnings(): string[] {
    return this.#board.list();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#restartTimer);
    clearInterval(this.#appsTimer);
    const child = this.#child;
    if (child?.pid !== undefined) {
      await terminate({ pid: child.pid, exited: this.#exited }, { graceMs: 2000, onError: (err) => this.#logger.warn(err.message) });
    }
  }

  #spawn(): void {
    const child: Child = execa(this.#opts.binary, gpuQueryArgs(this.#opts.intervalMs), {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: 'pipe',
      // Own process group so close() can signal it and anything it forks. execa's exit cleanup does not apply to
      // detached children; if the daemon is SIGKILLed, nvidia-smi dies of SIGPIPE on its next write instead.
      detached: true,
      reject: false,
      buffer: false,
      cleanup: false,
      ...(this.#env ? { env: this.#env, extendEnv: false } : {}),
    });
    this.#child = child;
    const startedAt = Date.now();
    this.#heardAt = startedAt;
    let pending = '';
    let stderrTail = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        this.#onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      if (pending.length > 65_536) pending = ''; // no newline in 64 KiB: not CSV; drop it rather than grow
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-2000);
    });
    this.#exited = child.then(
      (result) => {
        if (pending.trim()) this.#onLine(pending);
        const how = result.signal ? `killed by ${result.signal}` : result.exitCode !== undefined ? `exit code ${result.exitCode}` : firstLine(result.shortMessage ?? 'could not start');
        const said = firstLine(stderrTail.trim());
        this.#onExit(`${how}${said ? `: ${said}` : ''}`, Date.now() - startedAt);
      },
      // reject: false makes execa resolve even on spawn errors; this is a last resort so a bug cannot go unhandled.
      (err: Error) => this.#onExit(`could not run: ${firstLine(err.message)}`, Date.now() - startedAt),
    );
  }

  #onLine(line: string): void {
    if (!line.trim()) return;
    const parsed = parseGpuLine(line);
    if (!parsed.ok) {
      this.#warn('parse', `nvidia-smi: could not parse line ${quote(line)}`, Math.max(10_000, 5 * this.#opts.intervalMs));
      return;
    }
    this.#heardAt = Date.now();
    this.#seen.set(parsed.gpu.index, { gpu: parsed.gpu, at: this.#heardAt });
    this.#board.clear('exit');
    this.#board.clear('stall');
    this.emit('change');
  }

  #onExit(why: string, ranMs: number): void {
    this.#child = undefined;
    if (this.#closed) return;
    // A sampler that ran a good while before dying starts over from the shortest delay; one that dies right after
    // its first lines (a flapping driver) keeps backing off, so it cannot cost a fork every second.
    if (ranMs > 30_000) this.#failures = 0;
    const delay = Math.min(this.#opts.restartMaxMs, this.#opts.restartBaseMs * 2 ** this.#failures);
    this.#failures++;
    this.#warn('exit', `nvidia-smi sampler stopped (${why}); restarting in ${formatDelay(delay)}`);
    this.#restartTimer = setTimeout(() => {
      if (!this.#closed) this.#spawn();
    }, delay);
    this.#restartTimer.unref();
  }

  /**
   * A driver hang can leave nvidia-smi alive but silent. Past the stall limit (generous: NVML start-up without
   * persistence mode takes seconds) the group is killed, and the exit handler restarts it with backoff.
   */
  #checkStalled(): void {
    const child = this.#child;
    const limitMs = this.#opts.stallMs;
    if (child?.pid === undefined || Date.now() - this.#heardAt < limitMs) return;
    this.#warn('stall', `nvidia-smi printed nothing for ${formatDelay(Date.now() - this.#heardAt)}; restarting it`, 2 * limitMs);
    this.#heardAt = Date.now(); // one kill per stall, not one per tick while it dies
    const result = signalGroup(child.pid, 'SIGKILL');
    if (result instanceof Error) this.#logger.warn(result.message);
  }

  async #pollApps(): Promise<void> {
    if (this.#appsRunning || this.#closed) return;
    this.#appsRunning = true;
    try {
      const result = await execa(this.#opts.binary, COMPUTE_APPS_ARGS, {
        reject: false,
        timeout: 10_000,
        stdin: 'ignore',
        ...(this.#env ? { env: this.#env, extendEnv: false } : {}),
      });
      if (this.#closed) return;
      if (result.failed) {
        const why = result.timedOut ? 'timed out after 10 s' : firstLine(String(result.stderr || result.stdout || result.shortMessage));
        this.#warn('apps', `nvidia-smi --query-compute-apps failed: ${why}`);
        return;
      }
      const apps = parseComputeApps(String(result.stdout));
      const first = apps.bad[0];
      if (first !== undefined) this.#warn('apps', `nvidia-smi: could not parse compute-apps line ${quote(first)}`);
      else if (this.#board.clear('apps')) this.emit('change');
      if (!sameMap(apps.vram, this.#vram)) {
        this.#vram = apps.vram;
        this.emit('change');
      }
    } catch (err) {
      // execa with reject:false only throws on invalid options; report it like a failed poll, never from the timer.
      this.#warn('apps', `nvidia-smi --query-compute-apps failed: ${firstLine((err as Error).message)}`);
    } finally {
      this.#appsRunning = false;
    }
  }

  #warn(key: string, text: string, ttlMs?: number): void {
    if (this.#board.set(key, text, ttlMs)) {
      this.#logger.warn(text);
      this.emit('change');
    }
  }
}

function sameMap(a: Map<number, number>, b: Map<number, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

export function formatDelay(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${+(ms / 1000).toFixed(1)} s`;
}
