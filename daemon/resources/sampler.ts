// The one resource sampler the daemon runs: GPUs through whichever tool the host has, plus per-process CPU/RSS
// and host memory from the OS. It implements the status ResourceView and emits 'change' when readings move.
// Nothing here throws from a timer: every failure becomes a line in `warnings`.
import { EventEmitter } from 'node:events';
import { firstLine } from '../../shared/errors';
import { silentLogger, type Logger } from '../../platform/log';
import type { ProcessUsage } from '../../shared/protocol';
import type { ResourceView } from '../status/hub';
import { detectGpuTool, type GpuTool } from './detect-gpu-tool';
import type { GpuSource } from './gpu-source';
import { HostSampler, type HostStatus } from './host';
import { NvidiaSource } from './nvidia';
import { ProcessTracker } from './process-tracker';
import { RocmSource } from './rocm';
import { WarningBoard } from './warning-board';

export interface ResourceSamplerOptions {
  /** Sampling period in ms (config `gpu.sampleIntervalMs`). */
  intervalMs: number;
  /** The pids to report CPU/RSS/VRAM for, asked at every sample (the supervisor's running llama-servers). */
  pids: () => Iterable<number>;
  /** Environment whose PATH is searched for nvidia-smi / rocm-smi and given to them. Default process.env. */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Per-process VRAM poll period in ms (nvidia-smi --query-compute-apps). Default max(5000, intervalMs). */
  appsIntervalMs?: number;
  /** First restart delay of a dead nvidia-smi sampler in ms, doubling per failure. Default 1000. */
  restartBaseMs?: number;
  /** Silence in ms after which nvidia-smi counts as hung and is restarted. Default max(30000, 10 × intervalMs). */
  stallMs?: number;
  /** Shortest rocm-smi poll period in ms. Default 2000. */
  rocmMinIntervalMs?: number;
  /** Root of procfs; tests only. Default /proc. */
  procRoot?: string;
}

export type SamplerTool = GpuTool['kind'];

export class ResourceSampler extends EventEmitter<{ change: [] }> {
  #opts: ResourceSamplerOptions;
  #logger: Logger;
  #tool: SamplerTool | undefined;
  #source: GpuSource | undefined;
  #procs: ProcessTracker;
  #hostSampler: HostSampler;
  #host: HostStatus | undefined;
  #board = new WarningBoard();
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;
  #started: Promise<void> | undefined;
  #closed = false;
  #lastKey = '';

  constructor(opts: ResourceSamplerOptions) {
    super();
    this.#opts = opts;
    this.#logger = opts.logger ?? silentLogger;
    this.#procs = new ProcessTracker(opts.procRoot);
    this.#hostSampler = new HostSampler(opts.procRoot);
  }

  /** Which GPU tool is in use; undefined until start() detected it. */
  get tool(): SamplerTool | undefined {
    return this.#tool;
  }

  /** Detects the GPU tool, takes a first sample and starts the timers. Idempotent; never rejects. */
  start(): Promise<void> {
    this.#started ??= this.#start();
    return this.#started;
  }

  /** The latest readings, in the shape daemon/status/hub.ts merges into the snapshot. */
  view(): ResourceView {
    const source = this.#source;
    return {
      gpus: source?.gpus() ?? [],
      ...(this.#host ? { host: { ...this.#host } } : {}),
      warnings: [...this.#board.list(), ...(source?.warnings() ?? [])],
      usage: (pid) => this.usage(pid),
    };
  }

  usage(pid: number): ProcessUsage | undefined {
    const u = this.#procs.usage(pid);
    if (!u) return undefined;
    const vram = this.#source?.vramBytes(pid);
    return vram === undefined ? { ...u } : { ...u, vramBytes: vram };
  }

  /** Takes one sample of processes and host now (tests; the timer calls it too). Never rejects. */
  async sampleNow(): Promise<void> {
    if (this.#ticking || this.#closed) return;
    this.#ticking = true;
    try {
      const pids = [...this.#opts.pids()];
      if (process.platform === 'linux') {
        try {
          await this.#procs.update(pids);
          this.#clear('procfs');
        } catch (err) {
          this.#warn('procfs', `process CPU/memory unavailable: ${firstLine((err as Error).message)}`);
        }
      }
      try {
        this.#host = await this.#hostSampler.sample();
        this.#clear('host');
      } catch (err) {
        this.#warn('host', `host memory/CPU unavailable: ${firstLine((err as Error).message)}`);
      }
      this.#emitIfChanged(pids);
    } catch (err) {
      // The pids callback belongs to the caller; a bug there must not kill the timer.
      this.#warn('sample', `resource sampling failed: ${firstLine((err as Error).message)}`);
    } finally {
      this.#ticking = false;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#started;
    await this.#source?.close();
  }

  async #start(): Promise<void> {
    let tool: GpuTool;
    try {
      tool = await detectGpuTool(this.#opts.env ?? process.env);
    } catch (err) {
      // which() only throws on unexpected fs errors; carry on CPU-only and say why.
      tool = { kind: 'none', note: `GPU detection failed: ${firstLine((err as Error).message)}` };
    }
    if (this.#closed) return;
    this.#tool = tool.kind;
    if (tool.kind === 'none' && tool.note) this.#warn('detect', tool.note);
    this.#logger.info(tool.kind === 'none' ? 'no GPU tool found: sampling CPU and memory only' : `sampling GPUs with ${tool.binary}`);
    this.#source = this.#createSource(tool);
    this.#source?.on('change', () => this.emit('change'));
    this.#source?.start();
    if (process.platform !== 'linux') this.#warn('procfs', `per-process CPU/memory needs /proc (Linux); not available on ${process.platform}`);
    await this.sampleNow();
    if (this.#closed) return;
    this.#timer = setInterval(() => void this.sampleNow(), this.#opts.intervalMs);
    this.#timer.unref();
  }

  #createSource(tool: GpuTool): GpuSource | undefined {
    const common = { intervalMs: this.#opts.intervalMs, logger: this.#logger, ...(this.#opts.env ? { env: this.#opts.env } : {}) };
    if (tool.kind === 'nvidia') {
      return new NvidiaSource({
        ...common,
        binary: tool.binary,
        ...(this.#opts.appsIntervalMs !== undefined ? { appsIntervalMs: this.#opts.appsIntervalMs } : {}),
        ...(this.#opts.restartBaseMs !== undefined ? { restartBaseMs: this.#opts.restartBaseMs } : {}),
        ...(this.#opts.stallMs !== undefined ? { stallMs: this.#opts.stallMs } : {}),
      });
    }
    if (tool.kind === 'rocm') {
      return new RocmSource({ ...common, binary: tool.binary, ...(this.#opts.rocmMinIntervalMs !== undefined ? { minIntervalMs: this.#opts.rocmMinIntervalMs } : {}) });
    }
    return undefined;
  }

  /** Emits when host or process readings moved (GPU sources emit on their own). */
  #emitIfChanged(pids: number[]): void {
    const key = JSON.stringify({ host: this.#host, procs: pids.map((p) => this.#procs.usage(p)) });
    if (key === this.#lastKey) return;
    this.#lastKey = key;
    this.emit('change');
  }

  #warn(key: string, text: string): void {
    if (this.#board.set(key, text)) {
      this.#logger.warn(text);
      this.emit('change');
    }
  }

  #clear(key: string): void {
    if (this.#board.clear(key)) this.emit('change');
  }
}
