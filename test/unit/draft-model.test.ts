// A draft model for speculative decoding: the config key, its llama-server flags, and its share of the
// memory plan (planned as llama-server loads it: same slots and context, its own -ngld and cache types).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../daemon/config/validate';
import { calibrationKey } from '../../daemon/memory/calibration';
import { modelFacts } from '../../daemon/memory/model-facts';
import { planMemory, type FreeMemory } from '../../daemon/memory/plan';
import { serverMemoryOptions } from '../../daemon/memory/server-args';
import { llamaServerArgs } from '../../daemon/runtime/instance';
import type { LaunchModel } from '../../daemon/config/types';
import { shapeHeader } from '../helpers/gguf-shape';

const GIB = 2 ** 30;
const F16 = 1;

/** A llama shape with `layers` blocks of one f16 dim × dim tensor each. */
function llama(layers: number, dim: number) {
  const h = shapeHeader('llama', { block_count: layers, embedding_length: dim, feed_forward_length: 4 * dim, 'attention.head_count': dim / 128, 'attention.head_count_kv': dim / 128 });
  h.metadata.set('tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: ['a', 'b'] } as never);
  for (let i = 0; i < layers; i++) h.tensors.push({ name: `blk.${i}.attn_q.weight`, type: F16, dims: [dim, dim], offset: 0 });
  return modelFacts(h);
}

const MODEL = llama(32, 4096);
const DRAFT = llama(8, 1024);
const GPU: FreeMemory = { host: 64 * GIB, gpus: [{ index: 0, free: 24 * GIB }] };
const plan = (args: string[], free = GPU, draft = true) =>
  planMemory(draft ? { ...MODEL, draft: DRAFT } : MODEL, { slots: 4, ctxPerSlot: 4096, gpuLayers: 'all', server: serverMemoryOptions(args) }, free);

describe('the plan with a draft model', () => {
  it("adds the draft's own plan per device: on the GPU by default (-ngld auto), on the host with -ngld 0", () => {
    const alone = planMemory(DRAFT, { slots: 4, ctxPerSlot: 4096, gpuLayers: 'auto', server: serverMemoryOptions([]) }, GPU);
    const withDraft = plan([]);
    expect(withDraft.devices.map((d) => [d.device, d.draft])).toEqual([['host', alone.devices[0]!.total], ['gpu0', alone.devices[1]!.total]]);
    expect(withDraft.total).toBe(plan([], GPU, false).total + alone.total);
    const onHost = plan(['-ngld', '0']).devices;
    expect(onHost[1]!.draft).toBeUndefined();
    expect(onHost[0]!.draft).toBe(planMemory(DRAFT, { slots: 4, ctxPerSlot: 4096, gpuLayers: 0, server: serverMemoryOptions([]) }, GPU).devices[0]!.total);
  });

  it('types its KV cache by -ctkd/-ctvd, not by the model\'s -ctk/-ctv', () => {
    const kvOf = (args: string[]) => plan(args).devices[1]!.draft!;
    expect(kvOf(['-ctk', 'q8_0', '-ctv', 'q8_0'])).toBe(kvOf([]));
    expect(kvOf(['-ctkd', 'q8_0', '-ctvd', 'q8_0'])).toBeLessThan(kvOf([]));
    expect(serverMemoryOptions(['--gpu-layers-draft', 'all', '--cache-type-k-draft=q4_0']).draft).toEqual({ gpuLayers: 'all', cacheTypeK: 'q4_0', cacheTypeV: 'f16' });
  });

  it('leaves the model the GPU room the draft does not take: gpuLayers "auto" offloads fewer layers beside it', () => {
    const auto = (draft: boolean, free: FreeMemory) => planMemory(draft ? { ...MODEL, draft: DRAFT } : MODEL, { slots: 4, ctxPerSlot: 4096, gpuLayers: 'auto', server: serverMemoryOptions([]) }, free).gpuLayers;
    const whole = plan([], { host: 64 * GIB, gpus: [{ index: 0, free: 80 * GIB }] }, false).devices[1]!.total;
    const tight: FreeMemory = { host: 64 * GIB, gpus: [{ index: 0, free: whole + 64 * 2 ** 20 }] };
    expect(auto(false, tight)).toBe(33);
    expect(auto(true, tight)).toBeLessThan(33);
  });
});

describe('its llama-server flags and config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'slotwise-draft-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const launch = (fields: Partial<LaunchModel>) => ({ name: 'm', path: '/m.gguf', slots: 2, ctxPerSlot: 4096, gpuLayers: 'auto', args: [], promptCacheMiB: 'auto', kind: 'completion', ...fields }) as unknown as LaunchModel;

  it('passes the draft with draft-simple speculation, or with the type the args name', () => {
    const args = llamaServerArgs(launch({ draft: '/d.gguf' }), { port: 9000 }).join(' ');
    expect(args).toContain('--spec-draft-model /d.gguf --spec-type draft-simple');
    const own = llamaServerArgs(launch({ draft: '/d.gguf', args: ['--spec-type', 'draft-eagle3'] }), { port: 9000 });
    expect(own.filter((a) => a === '--spec-type')).toHaveLength(1);
    expect(llamaServerArgs(launch({}), { port: 9000 })).not.toContain('--spec-draft-model');
  });

  it('resolves it like path, refuses -md in args with the key to use, and keys the calibration by it', async () => {
    const config = parseConfig({ models: { m: { path: 'm.gguf', draft: 'small.gguf' } } }, { baseDir: '/cfg', checkFiles: false });
    expect(config.models[0]!.draft).toBe('/cfg/small.gguf');
    expect(() => parseConfig({ models: { m: { path: 'm.gguf', args: ['-md', 'x.gguf'] } } }, { baseDir: '/cfg', source: '/cfg/config.json', checkFiles: false })).toThrow(
      'config.json: models.m.args[0] "-md" is set by Slotwise — use models.m.draft instead',
    );
    writeFileSync(join(dir, 'm.gguf'), 'x');
    writeFileSync(join(dir, 'd.gguf'), 'y');
    const settings = { slots: 2, ctxPerSlot: 4096, gpuLayers: 'auto' as const, server: serverMemoryOptions([]) };
    const without = await calibrationKey(join(dir, 'm.gguf'), settings);
    const withDraft = await calibrationKey(join(dir, 'm.gguf'), { ...settings, draft: join(dir, 'd.gguf') });
    expect(withDraft).not.toBe(without);
    expect(withDraft).toContain(`draft=${join(dir, 'd.gguf')}:1:`);
  });
});
