// Speculative decoding with a draft model, on the real llama-server: the daemon passes the draft and a
// speculative type, plans the draft's memory beside the model's as llama-server allocates it, and reports
// how many drafted tokens the model accepted. The tiny model drafts for itself here: greedy sampling then
// accepts most of what it proposes, so acceptance is a number a broken count could not reach.
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { readGgufHeader } from '../../gguf/gguf';
import { modelFacts } from '../../daemon/memory/model-facts';
import { loadTimeBytes, planMemory } from '../../daemon/memory/plan';
import { serverMemoryOptions } from '../../daemon/memory/server-args';
import { cli } from '../helpers/cli';
import { startTestDaemon } from '../helpers/daemon';
import { tinyModelPath } from '../helpers/tiny';

describe('a model with a draft model, on the real llama-server', () => {
  it('drafts with it, plans it as llama-server allocates it, and reports the share of drafted tokens accepted', async () => {
    const slow = await tinyModelPath('slow');
    const d = await startTestDaemon({ models: { spec: { size: 'slow', slots: 2, ctxPerSlot: 1024, draft: slow }, plain: { slots: 1, ctxPerSlot: 512 } } });
    const s = await d.waitFor((snap) => snap.models.every((m) => m.instances[0]?.state === 'ready' && m.memory?.actualBytes !== undefined), 'both ready with their buffers', 120_000);

    const cmdline = readFileSync(`/proc/${s.models.find((m) => m.name === 'spec')!.instances[0]!.pid!}/cmdline`, 'utf8').split('\0').join(' ');
    expect(cmdline).toContain(`--spec-draft-model ${slow} --spec-type draft-simple`);

    // The plan with the draft against llama-server's buffers of both models (its load log lists both).
    const facts = { ...modelFacts(await readGgufHeader(slow)), draft: modelFacts(await readGgufHeader(slow)) };
    const plan = planMemory(facts, { slots: 2, ctxPerSlot: 1024, gpuLayers: 'auto', server: serverMemoryOptions([]), promptCacheMiB: 'auto', hostBytes: totalmem() }, { host: 64 * 2 ** 30, gpus: [] });
    const host = plan.devices[0]!;
    const memory = s.models.find((m) => m.name === 'spec')!.memory!;
    expect(memory.planBytes).toBe(loadTimeBytes(host));
    const err = (memory.planBytes - memory.actualBytes!) / memory.actualBytes!;
    console.log(`with its draft: planned ${(memory.planBytes / 2 ** 20).toFixed(1)} MiB (draft ${(host.draft! / 2 ** 20).toFixed(1)}), llama-server ${(memory.actualBytes! / 2 ** 20).toFixed(1)} MiB`);
    expect(Math.abs(err)).toBeLessThanOrEqual(0.1);
    // Without the draft the same plan would be short by about half: the draft's share is real.
    expect(host.draft! / memory.actualBytes!).toBeGreaterThan(0.3);

    for (let i = 0; i < 3; i++) {
      const res = await d.fetch('/v1/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'spec', prompt: `Once upon a time ${i}`, max_tokens: 48, temperature: 0 }) });
      expect(res.status).toBe(200);
      await res.text();
    }
    const after = await d.status();
    const spec = after.models.find((m) => m.name === 'spec')!;
    expect(spec.draftTokens!.drafted).toBeGreaterThan(0);
    console.log(`draft acceptance: ${spec.draftTokens!.accepted}/${spec.draftTokens!.drafted}`);
    expect(spec.draftAcceptance).toBeGreaterThan(0.5);
    expect(after.models.find((m) => m.name === 'plain')!.draftTokens).toBeUndefined();

    const metrics = await (await d.fetch('/metrics')).text();
    expect(metrics).toContain(`slotwise_draft_tokens_total{model="spec",kind="accepted"} ${spec.draftTokens!.accepted}`);
    const status = await cli(['status', '--state-dir', d.stateDir]);
    expect(status.stdout).toMatch(new RegExp(`spec · .*draft ${Math.round(spec.draftAcceptance! * 100)} % accepted`));
  });
});
