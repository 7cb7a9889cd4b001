// `slotwise plan MODEL|PATH`: the memory a llama-server of the model needs per device at several slot
// counts and contexts, against the memory free now, and the most slots that fit.
import { access } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { resolve } from 'node:path';
import { loadConfig } from '../../daemon/config/load';
import { DEFAULT_PROMPT_CACHE_MIB } from '../../daemon/config/rules';
import type { GpuLayers, ModelConfig } from '../../daemon/config/types';
import { readFreeMemory } from '../../daemon/memory/free-memory';
import { modelFacts } from '../../daemon/memory/model-facts';
import { readProjectorFile } from '../../daemon/memory/model-file';
import { serverMemoryOptions } from '../../daemon/memory/server-args';
import { readModelHeader } from '../../gguf/split';
import { SlotwiseError } from '../../shared/errors';
import { intValue } from '../args';
import type { Command, CommandContext } from './command';
import { buildPlanReport, renderPlanTable, type PlanTarget } from './render-plan';

const USAGE = 'slotwise plan MODEL|PATH [--ctx N] [--slots N] [--gpu-layers N|all|auto] [--prompt-cache MIB|auto] [--mmproj FILE] [--draft FILE] [--json] [--config F]';

export const planCommand: Command = {
  summary: 'memory a model needs per GPU and host RAM at each slots × context, and the most slots that fit',
  args: 'MODEL|PATH',
  maxArgs: 1,
  help: [
    USAGE,
    '',
    'Estimates what llama-server will allocate for the model on each device: weights, KV cache, compute',
    'buffer (and logits, the prompt cache and context checkpoints on the host), for 1, 2, 4, 8, 16 and the asked slots at half, the asked and double',
    'the context per slot; compares it with the memory free now (nvidia-smi or rocm-smi, else host RAM)',
    'and recommends the most slots that fit. Nothing is started.',
    '',
    'MODEL is a configured model (its path, slots, ctxPerSlot, gpuLayers and args come from the config);',
    'PATH is a GGUF file.',
    '',
    '  --ctx N           context tokens per slot (default: the model\'s ctxPerSlot, else 4096)',
    '  --slots N         slots to plan for (default: the model\'s slots, else 4)',
    '  --gpu-layers N    layers on the GPUs: a number, all or auto (default: the model\'s gpuLayers, else auto)',
    '  --prompt-cache M  llama-server\'s host prompt cache, MiB, auto or 0 for none (default: the model\'s promptCacheMiB, else auto)',
    '  --mmproj FILE     the model\'s multimodal projector, counted on the first GPU (default: the model\'s mmproj, else none)',
    '  --draft FILE      a draft model for speculative decoding, planned with the same slots and context (default: the model\'s draft, else none)',
    '  --json            the report as JSON',
    '',
    'Exit codes: 0 the asked plan fits, 1 it does not (the reason on stderr) or an error, 2 bad usage.',
  ].join('\n'),
  options: { ctx: { type: 'string' }, slots: { type: 'string' }, 'gpu-layers': { type: 'string' }, 'prompt-cache': { type: 'string' }, mmproj: { type: 'string' }, draft: { type: 'string' }, json: { type: 'boolean' } },
  async run(ctx) {
    const [arg, extra] = ctx.positionals;
    if (!arg || extra !== undefined) throw new SlotwiseError('SW_ERR_USAGE', `usage: ${USAGE}`);
    const target = await resolveTarget(ctx, arg);
    const header = await readModelHeader(target.path, { model: target.name });
    const facts = {
      ...modelFacts(header),
      ...(target.mmproj ? { projector: await readProjectorFile(target.mmproj) } : {}),
      ...(target.draft ? { draft: modelFacts(await readModelHeader(target.draft)) } : {}),
    };
    const reading = await readFreeMemory(ctx.env);
    const report = buildPlanReport({ target, facts, reading, server: serverMemoryOptions(target.args), hostBytes: totalmem() });
    if (ctx.values.json) ctx.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else ctx.stdout.write(renderPlanTable(report));
    if (!report.plan.fits) throw new SlotwiseError('SW_ERR_NOT_ENOUGH_MEMORY', report.plan.message ?? 'the plan does not fit');
    return 0;
  },
};

/** The model to plan: a configured name, else a file; flags override the config's numbers. */
async function resolveTarget(ctx: CommandContext, arg: string): Promise<PlanTarget> {
  // The flags first: a bad one is a usage error whatever the model.
  const flags = { slots: intFlag(ctx, 'slots', 1, 256), ctx: intFlag(ctx, 'ctx', 128), gpuLayers: gpuLayersFlag(ctx), promptCacheMiB: promptCacheFlag(ctx), mmproj: typeof ctx.values.mmproj === 'string' ? resolve(ctx.values.mmproj) : undefined, draft: typeof ctx.values.draft === 'string' ? resolve(ctx.values.draft) : undefined };
  const looksLikePath = arg.includes('/') || arg.toLowerCase().endsWith('.gguf');
  let model: ModelConfig | undefined;
  if (!looksLikePath) {
    const config = await loadConfig({ path: ctx.configPath, env: ctx.env, allowMissing: !ctx.configPath, checkFiles: false });
    model = config.models.find((m) => m.name === arg);
    if (!model && !(await exists(arg))) {
      const names = config.models.map((m) => m.name).join(', ') || 'none';
      throw new SlotwiseError('SW_ERR_MODEL_NOT_FOUND', `no model "${arg}" in the config (configured: ${names}) and no file of that name — give a configured model or a GGUF path`);
    }
  }
  return {
    name: model?.name,
    path: model?.path ?? resolve(arg),
    slots: flags.slots ?? (model?.slots === 'auto' ? model.maxSlots : model?.slots) ?? 4, // "auto": plan up to maxSlots; the table shows what fits
    ctxPerSlot: flags.ctx ?? model?.ctxPerSlot ?? 4096,
    gpuLayers: flags.gpuLayers ?? model?.gpuLayers ?? 'auto',
    args: model?.args ?? [],
    promptCacheMiB: flags.promptCacheMiB ?? model?.promptCacheMiB ?? DEFAULT_PROMPT_CACHE_MIB,
    ...(flags.mmproj ?? model?.mmproj ? { mmproj: flags.mmproj ?? model?.mmproj } : {}),
    ...(flags.draft ?? model?.draft ? { draft: flags.draft ?? model?.draft } : {}),
  };
}

function intFlag(ctx: CommandContext, name: string, min: number, max?: number): number | undefined {
  const raw = ctx.values[name];
  return raw === undefined ? undefined : intValue(`--${name}`, String(raw), min, max);
}

function promptCacheFlag(ctx: CommandContext): number | 'auto' | undefined {
  const raw = ctx.values['prompt-cache'];
  if (raw === undefined || raw === 'auto') return raw;
  const n = /^\d+$/.test(raw as string) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new SlotwiseError('SW_ERR_USAGE', `--prompt-cache must be an integer >= 0 (MiB) or auto, got "${String(raw)}"`);
  return n;
}

function gpuLayersFlag(ctx: CommandContext): GpuLayers | undefined {
  const raw = ctx.values['gpu-layers'];
  if (raw === undefined) return undefined;
  if (raw === 'all' || raw === 'auto') return raw;
  const n = /^\d+$/.test(raw as string) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new SlotwiseError('SW_ERR_USAGE', `--gpu-layers must be an integer >= 0, all or auto, got "${String(raw)}"`);
  return n;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
