// The host prompt cache's size (`promptCacheMiB: "auto"`), its place in the memory plan, and the
// --cache-ram flag it becomes.
import { describe, expect, it } from 'vitest';
import type { ModelFacts } from '../../daemon/memory/model-facts';
import { checkFit, kvBytesPerToken, mostSlotsThatFit, planMemory } from '../../daemon/memory/plan';
import { calibrated } from '../../daemon/memory/calibration';
import { DEFAULT_SERVER_MEMORY_OPTIONS, serverMemoryOptions } from '../../daemon/memory/server-args';
import {
  autoPromptCacheMiB,
  PROMPT_CACHE_MAX_MIB,
  PROMPT_CACHE_MIN_MIB,
  promptCacheTokens,
  resolvePromptCacheMiB,
} from '../../daemon/memory/prompt-cache';
import { llamaServerArgs } from '../../daemon/runtime/instance';
import type { LaunchModel } from '../../daemon/config/types';

const MIB = 2 ** 20;
const GIB = 2 ** 30;

/** The H200 run's random-weight llama: dim 2048 × 8 layers, 16 KV heads of 128, f16 cache. */
const H200_MODEL: ModelFacts = {
  architecture: 'llama',
  layers: 8,
  layerBytes: new Array<number>(8).fill(300 * MIB),
  layerTensors: new Array<number>(8).fill(0).map(() => [{ name: 'blk.N.ffn_up.weight', bytes: 300 * MIB }]),
  inputBytes: 250 * MIB,
  outputBytes: 250 * MIB,
  tiedOutputBytes: 0,
  headCountKv: new Array<number>(8).fill(16),
  headCount: 16,
  keyLength: 128,
  valueLength: 128,
  embeddingLength: 2048,
  feedForwardLength: 5632,
  vocabSize: 32000,
  contextLength: 4096,
};

describe('prompt cache size', () => {
  it('counts the KV bytes of one token over all layers, in the cache type', () => {
    expect(kvBytesPerToken(H200_MODEL, DEFAULT_SERVER_MEMORY_OPTIONS)).toBe(64 * 1024); // 8 layers × (K + V) × 2048 × 2 B
    expect(kvBytesPerToken(H200_MODEL, serverMemoryOptions(['-ctk', 'q8_0', '-ctv', 'q8_0']))).toBeLessThan(40 * 1024);
  });

  it('"auto" holds four full contexts per slot: 2 GiB for the H200 model at 8 × 1024, where 32 MiB held ~500 tokens', () => {
    const perToken = kvBytesPerToken(H200_MODEL, DEFAULT_SERVER_MEMORY_OPTIONS);
    expect(promptCacheTokens(32, perToken)).toBe(512);
    const mib = autoPromptCacheMiB(perToken, 8, 1024, 128 * GIB);
    expect(mib).toBe(2048);
    expect(promptCacheTokens(mib, perToken)).toBe(4 * 8 * 1024);
  });

  it('stays within [32 MiB, min(4 GiB, host RAM / 8)]', () => {
    expect(autoPromptCacheMiB(512, 4, 2048)).toBe(PROMPT_CACHE_MIN_MIB); // the tiny test model: 16 MiB wanted
    expect(autoPromptCacheMiB(256 * 1024, 16, 8192, 1024 * GIB)).toBe(PROMPT_CACHE_MAX_MIB);
    expect(autoPromptCacheMiB(64 * 1024, 8, 1024, 8 * GIB)).toBe(1024); // an 8 GiB host: 1 GiB at most
    expect(autoPromptCacheMiB(64 * 1024, 8, 1024, 64 * MIB)).toBe(PROMPT_CACHE_MIN_MIB); // never below the minimum
  });

  it('an explicit number overrides; "auto" without a readable header falls back to the minimum', () => {
    expect(resolvePromptCacheMiB(64, 64 * 1024, 8, 1024)).toBe(64);
    expect(resolvePromptCacheMiB(0, 64 * 1024, 8, 1024)).toBe(0);
    expect(resolvePromptCacheMiB('auto', undefined, 8, 1024)).toBe(PROMPT_CACHE_MIN_MIB);
    expect(promptCacheTokens(0, 512)).toBe(0);
    expect(promptCacheTokens(32, undefined)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('prompt cache in the memory plan', () => {
  const settings = { slots: 8, ctxPerSlot: 1024, gpuLayers: 0 as const };
  const free = { host: 64 * GIB, gpus: [] };

  it('adds the cache at its limit to the host figure, and a host too small for it does not fit', () => {
    const without = planMemory(H200_MODEL, settings, free);
    const withCache = planMemory(H200_MODEL, { ...settings, promptCacheMiB: 'auto', hostBytes: 128 * GIB }, free);
    const host = withCache.devices[0]!;
    expect(host.promptCache).toBe(2 * GIB);
    expect(host.total - without.devices[0]!.total).toBe(2 * GIB);
    expect(withCache.total - without.total).toBe(2 * GIB);
    expect(without.devices[0]!.promptCache).toBeUndefined();
    const justEnough = { host: without.devices[0]!.total + GIB, gpus: [] };
    expect(checkFit(without, justEnough).fits).toBe(true);
    expect(checkFit(withCache, justEnough).fits).toBe(false);
    expect(planMemory(H200_MODEL, { ...settings, promptCacheMiB: 64 }, free).devices[0]!.promptCache).toBe(64 * MIB);
    expect(planMemory(H200_MODEL, { ...settings, promptCacheMiB: 0 }, free).devices[0]!.promptCache).toBeUndefined();
  });

  it('"auto" slots count the cache of each candidate slot count', () => {
    const base = { ctxPerSlot: 1024, gpuLayers: 0 as const };
    const room = { host: planMemory(H200_MODEL, { ...base, slots: 4 }, free).devices[0]!.total + GIB / 2, gpus: [] };
    expect(mostSlotsThatFit(H200_MODEL, base, room, 16)).toBeGreaterThanOrEqual(4);
    // 4 slots want a 1 GiB cache: they no longer fit in half a GiB more than their plan without it
    expect(mostSlotsThatFit(H200_MODEL, { ...base, promptCacheMiB: 'auto', hostBytes: 128 * GIB }, room, 16)).toBeLessThan(4);
  });

  it("keeps the cache when calibrated: llama-server's load-time buffers do not include it", () => {
    const p = planMemory(H200_MODEL, { ...settings, promptCacheMiB: 2048 }, free);
    const c = calibrated(p, { planBytes: p.total, actual: { host: 3 * GIB }, at: 0 });
    expect(c.devices[0]!.total).toBe(5 * GIB);
  });
});

describe('--cache-ram', () => {
  const model = (promptCacheMiB: number | 'auto'): LaunchModel => ({
    name: 'm', path: '/m.gguf', slots: 2, ctxPerSlot: 1024, gpuLayers: 'auto', replicas: 1, maxReplicas: 1, autostart: true, args: [], affinity: true, kind: 'completion', reservedSlots: 0, promptCacheMiB, load: 'always', idleUnloadMs: 0, pinned: false, maxSlots: 16,
  });
  const cacheRam = (args: string[]): string | undefined => args[args.indexOf('--cache-ram') + 1];

  it('is the resolved size for "auto", the configured one otherwise', () => {
    expect(cacheRam(llamaServerArgs(model('auto'), { port: 9000 }, 2048))).toBe('2048');
    expect(cacheRam(llamaServerArgs(model('auto'), { port: 9000 }))).toBe(String(PROMPT_CACHE_MIN_MIB));
    expect(cacheRam(llamaServerArgs(model(64), { port: 9000 }, 2048))).toBe('64');
  });
});
