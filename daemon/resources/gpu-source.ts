// What every GPU backend (nvidia-smi, rocm-smi) offers the sampler: latest readings, per-pid VRAM, its problems.
import type { EventEmitter } from 'node:events';
import type { GpuStatus } from '../../shared/protocol';

export interface GpuSource extends EventEmitter<{ change: [] }> {
  /** `nvidia-smi` or `rocm-smi`: prefixes its warnings and names it in status. */
  readonly tool: string;
  /** Starts sampling; never throws (failures become warnings). */
  start(): void;
  /** Latest reading per GPU, by index; GPUs not heard from for a while are left out. */
  gpus(): GpuStatus[];
  /** VRAM held by the process, when the tool reports per-process memory. */
  vramBytes(pid: number): number | undefined;
  warnings(): string[];
  /** Stops sampling and ends any child process; resolves once it exited. */
  close(): Promise<void>;
}
