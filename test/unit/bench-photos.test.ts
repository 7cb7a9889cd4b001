// The photos scenario's goal check and its Markdown from a hand-made result (no daemon needed).
import { describe, expect, it } from 'vitest';
import { checkTargets } from '../../bench/targets';
import { renderMarkdown } from '../../bench/report-md';
import { summarize } from '../../bench/stats';
import type { BenchReport, PhotosMode, PhotosResult, PhotosRun } from '../../bench/types';
import { benchLevel } from './bench-fixtures';
import { expectRectangularTables } from '../helpers/markdown';

const run = (mode: PhotosMode, p99: number, lagMax: number): PhotosRun => ({
  mode,
  photos: mode === 'none' ? 0 : 20,
  failed: 0,
  gapMs: { ...summarize([3, 3.2, 3.1]), p99 },
  daemonLagMs: { p99: lagMax / 2, max: lagMax },
});

const photos = (daemonP99: number): PhotosResult => ({
  streams: 4,
  tokenMs: 3,
  phaseMs: 4000,
  rounds: 1,
  photoBytes: 4.5 * 2 ** 20,
  runs: [run('none', 5, 2), run('direct', 8, 4), run('daemon', daemonP99, 9.5)],
  gapP99Ms: { none: 5, direct: 8, daemon: daemonP99 },
  gapP99Ratio: daemonP99 / 8,
});

describe('photos goal', () => {
  const sweep: BenchReport['sweep'] = { options: { model: 'tiny', concurrency: [1], requests: 1, mix: [{ maxTokens: 8, weight: 1 }], direct: false, prompt: 'p' }, levels: [benchLevel('daemon', 1, 100)], comparisons: [], layout: { instances: 1, slotsPerInstance: 4 } };
  const find = (checks: ReturnType<typeof checkTargets>) => checks.find((c) => c.name.startsWith('photos uploaded'));

  it('sets the token-gap p99 through the daemon against straight to the upstream', () => {
    expect(find(checkTargets({ sweep, photos: photos(10) }))).toEqual({
      name: "photos uploaded: text streams' token-gap p99, through the daemon ÷ straight to the upstream",
      goal: '≤ 1.50×',
      measured: '1.25× (10.00 ms vs 8.00 ms; no photos 5.00 ms; daemon lag max 9.50 ms)',
      met: true,
    });
    expect(find(checkTargets({ sweep, photos: photos(70) }))).toMatchObject({ met: false });
    expect(find(checkTargets({ sweep }))).toMatchObject({ measured: 'not measured (--standard, from the CLI)', met: undefined });
  });

  it('renders its section with as many cells per row as the header', () => {
    const r = { schema: 1 as const, environment: { cpuModel: 'cpu', cores: 2, memoryGiB: 8, platform: 'linux-x64', node: 'v20', slotwise: '0.1.0', gpus: [], startedAt: 'now' }, run: { kind: 'standard' as const, model: 'tiny', routing: 'slot-aware' as const }, sweep, durationMs: 1, photos: photos(10) };
    const md = renderMarkdown({ ...r, targets: checkTargets(r) });
    expect(md).toContain('## Photos: text streams while images are uploaded');
    expect(md).toContain('| through the daemon | 1 | 20 | 3.10 | 10.00 | 3.2 | 4.75 | 9.5 |');
    expect(md).toContain('through the daemon 10.00: **1.25×** of straight.');
    expectRectangularTables(md);
  });
});
