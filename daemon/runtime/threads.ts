// CPU threads per llama-server. ggml's compute threads meet at a barrier every op; two servers
// with a thread per core each on the same cores preempt each other at those barriers, and both
// collapse (measured on 2 cores: two replicas of the 83 MB test model took 90 s for what one
// thread each did in 6 s). So when several instances may run at once, the cores are split.
import type { ModelConfig } from '../config/types';
import { setsFlag } from '../config/llama-args';

const THREAD_FLAGS = ['-t', '--threads'];

/** True when the user's own args choose the thread count. */
export function setsThreads(args: readonly string[]): boolean {
  return setsFlag(args, THREAD_FLAGS);
}

/** Most llama-server processes this config can run at once (every replica of every model). */
export function plannedInstances(models: readonly ModelConfig[]): number {
  return models.reduce((n, m) => n + (m.replicas === 'auto' ? m.maxReplicas : Math.max(m.replicas, m.maxReplicas)), 0);
}

/**
 * `--threads` for each instance, or undefined to keep llama-server's default (one per physical core).
 * Small hosts (≤ 4 cores) keep one core for the daemon, llama-server's HTTP thread and the clients:
 * with a compute thread on every core, requests there stalled for 0.5 s at a time.
 */
export function threadsPerInstance(cores: number, planned: number): number | undefined {
  const usable = cores <= 4 ? cores - 1 : cores;
  if (planned <= 1 && cores > 4) return undefined;
  return Math.max(1, Math.floor(usable / Math.max(1, planned)));
}

/** The model as launched: `--threads` added unless its args already set it. */
export function withThreads<M extends Pick<ModelConfig, 'args'>>(model: M, threads: number | undefined): M {
  if (threads === undefined || setsThreads(model.args)) return model;
  return { ...model, args: ['--threads', String(threads), ...model.args] };
}
