// Which GPUs llama-server sees, and in what order. With CUDA_VISIBLE_DEVICES=2,3 (HIP_VISIBLE_DEVICES or
// ROCR_VISIBLE_DEVICES on AMD) its CUDA0 is the GPU nvidia-smi calls 2: the plan must place layers on
// those GPUs alone, in that order, and read its buffers back under their nvidia-smi index. Indices are
// nvidia-smi's because Slotwise runs llama-server with CUDA_DEVICE_ORDER=PCI_BUS_ID (instance.ts). Pure.

/**
 * The nvidia-smi indices of the GPUs llama-server may use, in its device order; undefined when no
 * variable limits them, or when one names GPUs by UUID or MIG id (not mapped: every GPU is planned,
 * as without it). As CUDA reads the list: an empty value or a negative index hides every GPU after it.
 */
export function visibleGpus(env: NodeJS.ProcessEnv): number[] | undefined {
  const value = env.CUDA_VISIBLE_DEVICES ?? env.HIP_VISIBLE_DEVICES ?? env.ROCR_VISIBLE_DEVICES;
  if (value === undefined) return undefined;
  const out: number[] = [];
  for (const entry of value.split(',').map((e) => e.trim())) {
    if (!/^-?\d+$/.test(entry)) {
      if (entry === '' && out.length === 0) return []; // CUDA_VISIBLE_DEVICES="": no GPU
      return entry === '' ? out : undefined;
    }
    const n = Number(entry);
    if (n < 0 || out.includes(n)) break; // CUDA stops at the first invalid entry
    out.push(n);
  }
  return out;
}

/** `gpus` as llama-server sees them: the visible ones in its order (all, in index order, when `visible` is undefined). */
export function inDeviceOrder<T extends { index: number }>(gpus: readonly T[], visible: readonly number[] | undefined): T[] {
  if (!visible) return [...gpus];
  return visible.map((i) => gpus.find((g) => g.index === i)).filter((g): g is T => g !== undefined);
}
