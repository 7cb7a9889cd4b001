// Which GPU tool to sample with, decided once at start: nvidia-smi when it lists a GPU, else rocm-smi when on PATH.
import { execa } from 'execa';
import { firstLine } from '../../shared/errors';
import { which } from '../../platform/which';
import { listsGpu } from './nvidia-parse';

export type GpuTool =
  | { kind: 'nvidia'; binary: string }
  | { kind: 'rocm'; binary: string }
  /** `note` says why a tool that is present was not used (shown as a warning). */
  | { kind: 'none'; note?: string };

export async function detectGpuTool(env: NodeJS.ProcessEnv): Promise<GpuTool> {
  let note: string | undefined;
  const nvidia = await which('nvidia-smi', env);
  if (nvidia) {
    const listed = await execa(nvidia, ['-L'], { reject: false, timeout: 10_000, stdin: 'ignore', env, extendEnv: false });
    if (!listed.failed && listsGpu(String(listed.stdout))) return { kind: 'nvidia', binary: nvidia };
    // An installed driver whose GPU is missing or unreachable ("couldn't communicate with the NVIDIA driver").
    const said = firstLine(String(listed.stdout || listed.stderr || listed.shortMessage).trim());
    note = `nvidia-smi lists no GPU${said ? `: ${said}` : ''}`;
  }
  const rocm = await which('rocm-smi', env);
  if (rocm) return { kind: 'rocm', binary: rocm };
  return note ? { kind: 'none', note } : { kind: 'none' };
}
