// Tracked jobs → Jobs tree rows as plain data. Pure.
import { formatDuration } from '../../shared/format';
import { isFinished, type TrackedJob } from './job-tracker';
import type { IconSpec } from './slots-tree-model';

export interface JobRow {
  id: string;
  jobId: string;
  label: string;
  description: string;
  tooltip: string;
  icon: IconSpec;
  /** `slotwise.job.active` gets an inline Cancel. */
  contextValue: 'slotwise.job.active' | 'slotwise.job.done';
}

export function buildJobRows(jobs: TrackedJob[], now = Date.now()): JobRow[] {
  return jobs.map((j) => ({
    id: `job:${j.jobId}`,
    jobId: j.jobId,
    label: j.title,
    description: [j.model, jobStatusText(j, now)].filter(Boolean).join(' · '),
    tooltip: jobTooltip(j),
    icon: jobIcon(j),
    contextValue: isFinished(j.state) ? 'slotwise.job.done' : 'slotwise.job.active',
  }));
}

export function jobStatusText(j: TrackedJob, now: number): string {
  const tokens = j.usage?.completionTokens ?? (j.lastSeq || j.seq);
  switch (j.state) {
    case 'queued':
      if (j.position === undefined) return 'queued';
      return `queued #${j.position}${j.etaMs !== undefined ? ` · ~${Math.max(1, Math.round(j.etaMs / 1000))} s` : ''}`;
    case 'running':
      return `running · ${tokens} tok · ${formatDuration(now - j.createdAt)}`;
    case 'completed': {
      const parts = [`done · ${tokens} tok`];
      if (j.timings) parts.push(formatDuration(j.timings.totalMs));
      if (j.timings?.tokensPerSecond) parts.push(`${j.timings.tokensPerSecond.toFixed(1)} tok/s`);
      return parts.join(' · ');
    }
    case 'cancelled':
      return `cancelled · ${tokens} tok`;
    case 'failed':
      return `failed: ${j.error?.message ?? 'unknown error'}`;
    case 'interrupted':
      return `interrupted · ${tokens} tok (the daemon stopped)`;
  }
}

function jobTooltip(j: TrackedJob): string {
  const lines = [`${j.jobId} · ${j.state}${j.instance ? ` on ${j.instance}` : ''}`, j.title];
  if (j.error) lines.push(`${j.error.code}: ${j.error.message}`);
  if (j.timings) {
    const t = j.timings;
    lines.push(`queued ${formatDuration(t.queuedMs)}${t.ttftMs !== undefined ? ` · first token ${formatDuration(t.ttftMs)}` : ''} · total ${formatDuration(t.totalMs)}`);
  }
  if (j.usage) lines.push(`${j.usage.promptTokens} prompt + ${j.usage.completionTokens} completion tokens`);
  return lines.join('\n');
}

function jobIcon(j: TrackedJob): IconSpec {
  switch (j.state) {
    case 'queued':
      return { id: 'clock', color: 'charts.yellow' };
    case 'running':
      return { id: 'loading~spin' };
    case 'completed':
      return { id: 'pass', color: 'charts.green' };
    case 'cancelled':
      return { id: 'circle-slash', color: 'disabledForeground' };
    case 'failed':
      return { id: 'error', color: 'errorForeground' };
    case 'interrupted':
      return { id: 'debug-disconnect', color: 'charts.orange' };
  }
}
