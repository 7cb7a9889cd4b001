// The llama-server flags in a model's `args` that change how much memory it takes, with llama.cpp's
// defaults (common/common.h, common/arg.cpp of the pinned source). Pure.
import { SlotwiseError } from '../../shared/errors';
import { ggmlTypeId } from '../../gguf/gguf';

export interface ServerMemoryOptions {
  /** ggml type names of the KV cache (`--cache-type-k/-v`); default f16. */
  cacheTypeK: string;
  cacheTypeV: string;
  /** Physical batch (`-ub`), default 512: the compute buffer is sized for it. */
  ubatch: number;
  /** Logical batch (`-b`), default 2048; the ubatch never exceeds it. */
  batch: number;
  /** `-fa on|off|auto`; auto (the default) turns it on wherever the backend supports it, as CPU and CUDA do. */
  flashAttn: boolean;
  /** `-kvu`: one KV buffer shared by every slot instead of one per slot. */
  kvUnified: boolean;
  /** `-nkvo` keeps the KV cache of offloaded layers on the host. */
  kvOffload: boolean;
  /** `--swa-full`: sliding-window layers get a full-size KV cache (memory/sliding-window.ts). */
  swaFull: boolean;
  /**
   * Where tensors go instead of their layer's device, in the order given (the first match wins, as in
   * llama.cpp's loader): `-ot PATTERN=BUFFER,…`, `--cpu-moe` (every expert tensor on the host),
   * `--n-cpu-moe N` / `--n-cpu-ffn N` (the experts / dense FFN of the first N blocks). `device` is
   * `host` or `gpuN`; a buffer type this plan does not know of keeps the layer's device.
   */
  tensorOverrides: TensorOverride[];
  /** How a draft model (`draft`) is placed and cached: `-ngld` (default auto), `-ctkd`/`-ctvd` (default f16). */
  draft: { gpuLayers: number | 'auto' | 'all'; cacheTypeK: string; cacheTypeV: string };
  /** `--ctx-checkpoints N` per slot when the args set it (checkpoints.ts); undefined: Slotwise's bound. */
  ctxCheckpoints?: number;
  /** Where a projector (`mmproj`) goes: a GPU (llama.cpp's default: the first), or `host` with `--no-mmproj-offload` / `-mmdev none`. */
  mmproj: 'gpu' | 'host';
}

export interface TensorOverride {
  /** An ECMAScript regex searched in the tensor name (std::regex_search in llama.cpp). */
  pattern: RegExp;
  device?: string;
}

/** llama.cpp's patterns (common/common.h LLM_FFN_EXPS_REGEX, LLM_FFN_DENSE_REGEX). */
const EXPERTS = '\\.ffn_(up|down|gate|gate_up)_(ch|)exps';
const DENSE_FFN = '\\.ffn_(up|down|gate)\\.';

export const DEFAULT_SERVER_MEMORY_OPTIONS: Readonly<ServerMemoryOptions> = {
  cacheTypeK: 'f16',
  cacheTypeV: 'f16',
  ubatch: 512,
  batch: 2048,
  flashAttn: true,
  kvUnified: false,
  kvOffload: true,
  swaFull: false,
  tensorOverrides: [],
  mmproj: 'gpu',
  draft: { gpuLayers: 'auto', cacheTypeK: 'f16', cacheTypeV: 'f16' },
};

/** Reads the memory-relevant flags out of extra llama-server args (`-ub 256`, `--cache-type-k=q8_0`, …). */
export function serverMemoryOptions(args: readonly string[]): ServerMemoryOptions {
  const o: ServerMemoryOptions = { ...DEFAULT_SERVER_MEMORY_OPTIONS, tensorOverrides: [], draft: { ...DEFAULT_SERVER_MEMORY_OPTIONS.draft } };
  for (let i = 0; i < args.length; i++) {
    const [flag, inline] = splitFlag(args[i]!);
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined) throw bad(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '-ctk': case '--cache-type-k': o.cacheTypeK = cacheType(flag, value()); break;
      case '-ctv': case '--cache-type-v': o.cacheTypeV = cacheType(flag, value()); break;
      case '-ub': case '--ubatch-size': o.ubatch = positive(flag, value()); break;
      case '-b': case '--batch-size': o.batch = positive(flag, value()); break;
      case '-kvu': case '--kv-unified': o.kvUnified = true; break;
      case '-no-kvu': case '--no-kv-unified': o.kvUnified = false; break;
      case '-nkvo': case '--no-kv-offload': o.kvOffload = false; break;
      case '--swa-full': o.swaFull = true; break;
      case '-ctxcp': case '--ctx-checkpoints': case '--swa-checkpoints': o.ctxCheckpoints = count(flag, value()); break;
      case '--no-mmproj-offload': o.mmproj = 'host'; break;
      case '-ngld': case '--gpu-layers-draft': case '--n-gpu-layers-draft': case '--spec-draft-ngl': {
        const v = value();
        o.draft.gpuLayers = v === 'auto' || v === 'all' ? v : count(flag, v);
        break;
      }
      case '-ctkd': case '--cache-type-k-draft': case '--spec-draft-type-k': o.draft.cacheTypeK = cacheType(flag, value()); break;
      case '-ctvd': case '--cache-type-v-draft': case '--spec-draft-type-v': o.draft.cacheTypeV = cacheType(flag, value()); break;
      case '--mmproj-offload': o.mmproj = 'gpu'; break;
      case '-mmdev': case '--mmproj-device': o.mmproj = value() === 'none' ? 'host' : 'gpu'; break;
      case '-ot': case '--override-tensor': o.tensorOverrides.push(...overrides(flag, value())); break;
      case '-cmoe': case '--cpu-moe': o.tensorOverrides.push({ pattern: new RegExp(EXPERTS), device: 'host' }); break;
      case '-ncmoe': case '--n-cpu-moe': o.tensorOverrides.push(...firstBlocks(count(flag, value()), EXPERTS)); break;
      case '-ncffn': case '--n-cpu-ffn': o.tensorOverrides.push(...firstBlocks(count(flag, value()), DENSE_FFN)); break;
      case '-fa': case '--flash-attn': {
        // Older llama.cpp took -fa without a value; take the next word only when it is one of the values.
        const next = inline ?? args[i + 1];
        if (next !== undefined && /^(on|off|auto|enabled|disabled|true|false|1|0)$/i.test(next)) {
          if (inline === undefined) i++;
          o.flashAttn = !/^(off|disabled|false|0)$/i.test(next);
        } else o.flashAttn = true;
        break;
      }
      default:
    }
  }
  return o;
}

/** `PATTERN=BUFFER,…` as llama.cpp's parse_tensor_buffer_overrides splits it. */
function overrides(flag: string, text: string): TensorOverride[] {
  return text.split(',').map((entry) => {
    const eq = entry.indexOf('=');
    if (eq < 0) throw bad(`${flag} takes PATTERN=BUFFER pairs separated by commas, e.g. "\\.ffn_.*_exps\\.=CPU", got "${entry}"`);
    let pattern: RegExp;
    try {
      pattern = new RegExp(entry.slice(0, eq));
    } catch (err) {
      throw bad(`${flag} pattern "${entry.slice(0, eq)}" is not a regular expression (${(err as Error).message})`);
    }
    const device = bufferDevice(entry.slice(eq + 1));
    return device === undefined ? { pattern } : { pattern, device };
  });
}

/**
 * A device's buffer type name, spelled exactly as llama.cpp lists it (common/arg.cpp takes no other), as a
 * plan device: `CPU` the host, `CUDA0`/`ROCm1`/`Vulkan0`/`MTL0`… that GPU. Another name plans nothing
 * (llama-server refuses it at launch, naming the types it has).
 */
function bufferDevice(name: string): string | undefined {
  if (name === 'CPU') return 'host';
  const gpu = /^(?:CUDA|ROCm|Vulkan|SYCL|MUSA|CANN|MTL)(\d+)$/.exec(name);
  return gpu ? `gpu${gpu[1]}` : undefined;
}

/** llama.cpp's llm_add_n_cpu_ffn_overrides: one pattern per block `blk.I<ffn>`, I < n, to the host. */
function firstBlocks(n: number, ffn: string): TensorOverride[] {
  return Array.from({ length: n }, (_, i) => ({ pattern: new RegExp(`blk\\.${i}${ffn}`), device: 'host' }));
}

function count(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw bad(`${flag} must be an integer >= 0, got "${text}"`);
  return n;
}

function splitFlag(arg: string): [string, string | undefined] {
  const eq = arg.indexOf('=');
  return arg.startsWith('-') && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
}

function cacheType(flag: string, name: string): string {
  if (ggmlTypeId(name) === undefined) throw bad(`${flag} ${name} is not a ggml type — use f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0 or q5_1`);
  return name.toLowerCase();
}

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw bad(`${flag} must be a positive integer, got "${text}"`);
  return n;
}

function bad(message: string): SlotwiseError {
  return new SlotwiseError('SW_ERR_CONFIG', `llama-server args: ${message}`);
}
