// Pure parsers for nvidia-smi's CSV (`--format=csv,noheader,nounits`), kept apart from the process handling
// so the recorded outputs in test/fixtures/gpu can be checked line by line.
import type { GpuStatus } from '../../shared/protocol';
import { parseReading, type Reading } from './reading';

/** The fields of one `--query-gpu` line, in the order asked for. */
export const GPU_QUERY_FIELDS = ['index', 'name', 'utilization.gpu', 'memory.used', 'memory.total', 'temperature.gpu', 'power.draw'] as const;

/** Arguments for the long-running sampler: one line per GPU every `intervalMs`. */
export function gpuQueryArgs(intervalMs: number): string[] {
  return [`--query-gpu=${GPU_QUERY_FIELDS.join(',')}`, '--format=csv,noheader,nounits', '-lms', String(Math.max(1, Math.round(intervalMs)))];
}

export const COMPUTE_APPS_ARGS = ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'];

export type GpuLine = { ok: true; gpu: GpuStatus } | { ok: false };

const MIB = 1024 * 1024;
const NUMERIC_FIELDS = GPU_QUERY_FIELDS.length - 2;

/**
 * One `--query-gpu` line → a GpuStatus. Placeholders (`[N/A]`, `[Not Supported]`) leave optional fields out
 * and read as 0 for the required ones; anything else that is not a number makes the whole line unparsable.
 */
export function parseGpuLine(line: string): GpuLine {
  const parts = line.split(',');
  if (parts.length < GPU_QUERY_FIELDS.length) return { ok: false };
  // A product name could contain a comma: the index is first and the numbers are last, the name is what is between.
  const index = parseReading(parts[0]);
  const name = parts.slice(1, parts.length - NUMERIC_FIELDS).join(',').trim();
  const [util, used, total, temp, power] = parts.slice(-NUMERIC_FIELDS).map(parseReading) as [Reading, Reading, Reading, Reading, Reading];
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || !name) return { ok: false };
  if ([util, used, total, temp, power].includes('invalid')) return { ok: false };
  const gpu: GpuStatus = {
    index,
    name,
    utilizationPct: typeof util === 'number' ? util : 0,
    memoryUsedMiB: typeof used === 'number' ? used : 0,
    memoryTotalMiB: typeof total === 'number' ? total : 0,
  };
  if (typeof temp === 'number') gpu.temperatureC = temp;
  if (typeof power === 'number') gpu.powerW = power;
  return { ok: true, gpu };
}

export interface ComputeApps {
  /** pid → VRAM bytes, summed over GPUs (a process may hold memory on several). */
  vram: Map<number, number>;
  /** Lines that were neither a process nor empty. */
  bad: string[];
}

/** `--query-compute-apps=pid,used_memory` output (MiB) → VRAM per pid. `[N/A]` memory (WDDM, some MIG setups) is skipped. */
export function parseComputeApps(text: string): ComputeApps {
  const vram = new Map<number, number>();
  const bad: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    // Old drivers print this instead of nothing when no process uses the GPU.
    if (!line || /^no running (compute )?processes found/i.test(line)) continue;
    const [pidText, memText, ...extra] = line.split(',');
    const pid = parseReading(pidText);
    const mem = parseReading(memText);
    if (extra.length > 0 || typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || mem === 'invalid') {
      bad.push(line);
      continue;
    }
    if (mem === 'missing') continue;
    vram.set(pid, (vram.get(pid) ?? 0) + mem * MIB);
  }
  return { vram, bad };
}

/** True when `nvidia-smi -L` output lists at least one GPU (`GPU 0: NVIDIA H100 … (UUID: …)`). */
export function listsGpu(text: string): boolean {
  return /^GPU \d+:/m.test(text);
}
