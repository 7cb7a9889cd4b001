// Where llama-server actually put the model: layers offloaded and buffer sizes per device, read from
// its load log (format strings of llama.cpp src/llama-model.cpp, llama-kv-cache.cpp, llama-context.cpp).
// Printed at verbosity 4, which Slotwise passes unless the user chose a verbosity.

export interface Offload {
  layersOnGpu?: number;
  layersTotal?: number;
  /** `"<kind> <device>"` → MiB, e.g. `"model CUDA0": 3891.2`, `"kv CPU": 64`. */
  buffers: Record<string, number>;
}

const OFFLOADED = /load_tensors: offloaded (\d+)\/(\d+) layers to GPU/;
const BUFFER = /(?:load_tensors|llama_kv_cache|llama_context|sched_reserve|graph_reserve):\s+(\S+)\s+(model|KV|compute|output) buffer size =\s+([\d.]+) MiB/;
const N_LAYER = /print_info: n_layer\s+=\s+(\d+)/;

/** Folds one log line into `acc`; returns true when the line carried placement information. */
export function parseLoadLine(line: string, acc: Offload): boolean {
  let m = OFFLOADED.exec(line);
  if (m) {
    acc.layersOnGpu = Number(m[1]);
    acc.layersTotal = Number(m[2]);
    return true;
  }
  m = BUFFER.exec(line);
  if (m) {
    const key = `${m[2]!.toLowerCase()} ${m[1]}`;
    acc.buffers[key] = (acc.buffers[key] ?? 0) + Number(m[3]);
    return true;
  }
  m = N_LAYER.exec(line);
  if (m) {
    acc.layersTotal ??= Number(m[1]);
    return true;
  }
  return false;
}

/** True when the user's extra args already choose a log verbosity. */
export function setsVerbosity(args: readonly string[]): boolean {
  return args.some((a) => /^(-lv|--verbosity|--log-verbosity|-v|--verbose|--log-disable)(=|$)/.test(a));
}
