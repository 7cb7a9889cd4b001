// Free memory right now, for a plan: host RAM (MemAvailable) and each GPU's VRAM from one nvidia-smi or
// rocm-smi reading, through the same parsers the status sampler uses (daemon/resources/); only the GPUs
// llama-server will see, in its order (CUDA_VISIBLE_DEVICES: resources/visible-gpus.ts).
import { execa } from 'execa';
import type { GpuStatus } from '../../shared/protocol';
import { detectGpuTool } from '../resources/detect-gpu-tool';
import { HostSampler } from '../resources/host';
import { GPU_QUERY_FIELDS, parseGpuLine } from '../resources/nvidia-parse';
import { parseRocmJson, ROCM_ARGS } from '../resources/rocm-parse';
import type { FreeMemory } from './plan';
import { inDeviceOrder, visibleGpus } from '../resources/visible-gpus';

const MIB = 1024 * 1024;

export interface FreeMemoryReading {
  free: FreeMemory;
  /** GPU names by index, for the table. */
  gpuNames: Map<number, string>;
  /** Why no GPU reading came back although a tool is present (shown, never fatal). */
  warnings: string[];
}

export async function readFreeMemory(env: NodeJS.ProcessEnv): Promise<FreeMemoryReading> {
  const [host, gpus] = await Promise.all([new HostSampler().sample(), readGpus(env)]);
  return {
    free: {
      host: host.memoryAvailableBytes,
      gpus: inDeviceOrder(gpus.gpus, visibleGpus(env)).map((g) => ({ index: g.index, free: Math.max(0, g.memoryTotalMiB - g.memoryUsedMiB) * MIB })),
    },
    gpuNames: new Map(gpus.gpus.map((g) => [g.index, g.name])),
    warnings: gpus.warnings,
  };
}

/** The GPUs nvidia-smi or rocm-smi reports now, and why none came back when a tool is there. */
export async function readGpus(env: NodeJS.ProcessEnv): Promise<{ gpus: GpuStatus[]; warnings: string[] }> {
  const tool = await detectGpuTool(env);
  if (tool.kind === 'none') return { gpus: [], warnings: tool.note ? [tool.note] : [] };
  const args = tool.kind === 'nvidia' ? [`--query-gpu=${GPU_QUERY_FIELDS.join(',')}`, '--format=csv,noheader,nounits'] : ROCM_ARGS;
  const res = await execa(tool.binary, args, { reject: false, timeout: 10_000, stdin: 'ignore', env, extendEnv: false });
  const name = tool.kind === 'nvidia' ? 'nvidia-smi' : 'rocm-smi';
  if (res.failed) return { gpus: [], warnings: [`${name} failed (${(res.shortMessage ?? 'no output').split('\n')[0]}): planning for the host only`] };
  if (tool.kind === 'rocm') return parseRocmJson(String(res.stdout));
  const gpus: GpuStatus[] = [];
  for (const line of String(res.stdout).split('\n')) {
    if (!line.trim()) continue;
    const parsed = parseGpuLine(line);
    if (parsed.ok) gpus.push(parsed.gpu);
  }
  return { gpus, warnings: gpus.length ? [] : [`${name} printed no GPU line: planning for the host only`] };
}
