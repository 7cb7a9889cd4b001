// AMD GPUs through `rocm-smi --json`, polled. rocm-smi is a Python script that costs a few hundred ms of CPU per
// run and has no loop mode, so it is polled no more often than every 2 s whatever the configured interval.
import { EventEmitter } from 'node:events';
import { execa } from 'execa';
import { firstLine } from '../../shared/errors';
import { silentLogger, type Logger } from '../../platform/log';
import type { GpuStatus } from '../../shared/protocol';
import type { GpuSource } from './gpu-source';
import { parseRocmJson, ROCM_ARGS } from './rocm-parse';
import { WarningBoard } from './warning-board';

export interface RocmSourceOptions {
  /** Absolute path of rocm-smi. */
  binary: string;
  intervalMs: number;
  /** Shortest poll period in ms. Default 2000. */
  minIntervalMs?: number;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

export class RocmSource extends EventEmitter<{ change: [] }> implements GpuSource {
  readonly tool = 'rocm-smi';
  #opts: RocmSourceOptions;
  #periodMs: number;
  #logger: Logger;
  #gpus: GpuStatus[] = [];
  #at = 0;
  #board = new WarningBoard();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(opts: RocmSourceOptions) {
    super();
    this.#opts = opts;
    this.#periodMs = Math.max(opts.minIntervalMs ?? 2000, opts.intervalMs);
    this.#logger = opts.logger ?? silentLogger;
  }

  start(): void {
    if (this.#closed || this.#timer) return;
    this.#tick();
    this.#timer = setInterval(() => this.#tick(), this.#periodMs);
    this.#timer.unref();
  }

  gpus(): GpuStatus[] {
    if (Date.now() - this.#at > 3 * this.#periodMs + 10_000) return []; // the tool stopped answering: no stale readings
    return this.#gpus.map((g) => ({ ...g }));
  }

  vramBytes(): number | undefined {
    return undefined; // rocm-smi --showpids has no stable per-process VRAM column across releases
  }

  warnings(): string[] {
    return this.#board.list();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#running;
  }

  #tick(): void {
    if (this.#running || this.#closed) return; // a slow rocm-smi is never run twice at once
    this.#running = this.#poll().finally(() => (this.#running = undefined));
  }

  async #poll(): Promise<void> {
    let changed = false;
    try {
      const result = await execa(this.#opts.binary, ROCM_ARGS, {
        reject: false,
        timeout: Math.max(10_000, this.#periodMs),
        stdin: 'ignore',
        ...(this.#opts.env ? { env: this.#opts.env, extendEnv: false } : {}),
      });
      if (this.#closed) return;
      const stdout = String(result.stdout);
      // rocm-smi exits non-zero when one of many flags is unsupported yet still prints the rest: parse what came.
      const parsed = parseRocmJson(stdout);
      if (parsed.gpus.length > 0) {
        changed = JSON.stringify(parsed.gpus) !== JSON.stringify(this.#gpus);
        this.#gpus = parsed.gpus;
        this.#at = Date.now();
      }
      const problem =
        parsed.gpus.length === 0 && result.failed
          ? `rocm-smi failed: ${result.timedOut ? 'timed out' : firstLine(String(result.stderr || stdout || result.shortMessage))}`
          : parsed.warnings.join('; ');
      changed = (problem ? this.#set(problem) : this.#board.clear('poll')) || changed;
    } catch (err) {
      // execa with reject:false only throws on invalid options; report it like a failed poll, never from the timer.
      changed = this.#set(`rocm-smi failed: ${firstLine((err as Error).message)}`) || changed;
    }
    if (changed) this.emit('change');
  }

  #set(text: string): boolean {
    const changed = this.#board.set('poll', text);
    if (changed) this.#logger.warn(text);
    return changed;
  }
}
