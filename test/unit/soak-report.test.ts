// The soak's Markdown table: a row whose sample found no llama-server says so, not "0 MB".
import { describe, expect, it } from 'vitest';
import type { SoakInterval, SoakReport } from '../../bench/soak';
import { renderSoakMarkdown } from '../../bench/soak-report';

const row = (index: number, llamaServerRssMB: number | null): SoakInterval => ({
  index, endS: index * 5, requests: 10, completed: 9, aborted: 1, rejected: 0, errors: 0, p50Ms: 120, p99Ms: 300, daemonRssMB: 60, llamaServerRssMB,
});

describe('renderSoakMarkdown', () => {
  it('writes the llama-server RSS of each interval, and – where no llama-server ran at the sample', () => {
    const outcomes = { completed: 18, cancelled: 2, rejected: 0, failed: 0 };
    const report: SoakReport = {
      kind: 'soak',
      startedAt: '2026-11-28T08:00:00.000Z',
      options: { model: 'tiny', minutes: 0.2, clients: 6, intervalMs: 5000, seed: 1, ctxPerSlot: 9216 },
      intervals: [row(1, 42), row(2, null)],
      client: { sent: 20, ...outcomes },
      daemon: { requests: 20, ...outcomes },
      outcomesMatch: true,
      restarts: 1,
    };
    const rows = renderSoakMarkdown(report).split('\n').filter((l) => /^\| \d/.test(l));
    expect(rows).toEqual(['| 1 | 5 | 10 | 9 | 1 | 0 | 0 | 120 | 300 | 60 | 42 |', '| 2 | 10 | 10 | 9 | 1 | 0 | 0 | 120 | 300 | 60 | – |']);
  });
});
