// The machine a benchmark ran on, recorded beside its numbers (figures mean nothing without it).
import { cpus, totalmem } from 'node:os';
import { version } from '../package.json';
import { getProps } from '../daemon/runtime/llama-client';
import type { Snapshot } from '../shared/protocol';
import type { Environment } from './types';

/** CPU, memory, Node, Slotwise; llama-server's build from `/props` of the first ready instance. */
export async function describeEnvironment(snapshot: Snapshot | undefined, apiKeys: Record<string, string> = {}): Promise<Environment> {
  const list = cpus();
  const env: Environment = {
    cpuModel: list[0]?.model.trim() || 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
    slotwise: version,
    gpus: (snapshot?.gpus ?? []).map((g) => `${g.name} (${Math.round(g.memoryTotalMiB / 1024)} GiB)`),
    startedAt: new Date().toISOString(),
  };
  const inst = snapshot?.models.flatMap((m) => m.instances).find((i) => i.state === 'ready' && i.port !== undefined);
  // A placement recorded by an earlier load: this process runs at -lv 3 (daemon/memory/calibration.ts recordedPlacement).
  if (inst?.offload) env.llamaLogLevel = inst.offload.recordedAt !== undefined ? 3 : 4;
  if (inst?.port !== undefined) {
    try {
      // /props needs the instance's key: known to a daemon this process hosts, else "unknown".
      const props = await getProps(`http://127.0.0.1:${inst.port}`, { timeoutMs: 3000, apiKey: apiKeys[inst.id] });
      if (props.buildInfo) env.llamaServer = props.buildInfo;
    } catch (err) {
      // The report says "unknown" instead; a missing version must not sink a finished run.
      void err;
    }
  }
  return env;
}
