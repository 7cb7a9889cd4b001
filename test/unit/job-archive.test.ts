// Prompt jobs on disk: bounded, ordered writes, interrupted after a crash, torn files dropped.
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JobSummary } from '../../shared/protocol';
import { JobArchive, type StoredJob } from '../../daemon/api/job-archive';

const job = (n: number, state: JobSummary['state'] = 'completed', deltas: string[] = [`text ${n}`]): StoredJob => ({
  summary: { jobId: `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`, model: 'm', state, createdAt: 1000 + n, title: `job ${n}`, seq: deltas.length },
  deltas,
});
const tmp = (): string => mkdtempSync(join(tmpdir(), 'slotwise-jobs-'));

describe('job archive', () => {
  it('keeps the newest maxJobs jobs, 0600, and reads them back oldest first', async () => {
    const dir = tmp();
    const a = new JobArchive({ dir, maxJobs: 3 });
    for (let n = 1; n <= 5; n++) a.save(job(n));
    await a.flush();
    expect(readdirSync(dir).sort()).toEqual([3, 4, 5].map((n) => `${job(n).summary.jobId}.json`));
    expect(statSync(join(dir, `${job(5).summary.jobId}.json`)).mode & 0o777).toBe(0o600);
    const loaded = await new JobArchive({ dir }).load();
    expect(loaded.map((j) => j.deltas[0])).toEqual(['text 3', 'text 4', 'text 5']);
  });

  it('drops the oldest jobs beyond maxBytes', async () => {
    const dir = tmp();
    const a = new JobArchive({ dir, maxBytes: 2500 });
    for (let n = 1; n <= 4; n++) a.save(job(n, 'completed', ['x'.repeat(1000)]));
    await a.flush();
    expect(readdirSync(dir).sort()).toEqual([3, 4].map((n) => `${job(n).summary.jobId}.json`));
  });

  it('a job saved at once when accepted and again when done ends up done on disk', async () => {
    const dir = tmp();
    const a = new JobArchive({ dir });
    a.save(job(1, 'queued', []), { sync: true });
    expect(JSON.parse(readFileSync(join(dir, `${job(1).summary.jobId}.json`), 'utf8')).summary.state).toBe('queued'); // already there
    a.save(job(1, 'running', ['a']));
    a.save(job(1, 'completed', ['a', 'b']));
    await a.flush();
    expect(JSON.parse(readFileSync(join(dir, `${job(1).summary.jobId}.json`), 'utf8'))).toMatchObject({ summary: { state: 'completed' }, deltas: ['a', 'b'] });
  });

  it('after a crash: queued/running jobs load as interrupted, torn and temp files are removed', async () => {
    const dir = tmp();
    const a = new JobArchive({ dir });
    a.save(job(1, 'running', ['partial']));
    a.save(job(2, 'completed'));
    await a.flush();
    writeFileSync(join(dir, 'ffffffff-0000-0000-0000-000000000000.json'), '{"summary": {"jobId"');
    writeFileSync(join(dir, `${job(3).summary.jobId}.json.123.tmp`), '{}');
    const b = new JobArchive({ dir });
    const loaded = await b.load();
    expect(loaded.map((j) => [j.summary.state, j.summary.error?.code])).toEqual([
      ['interrupted', 'SW_ERR_JOB_INTERRUPTED'],
      ['completed', undefined],
    ]);
    expect(loaded[0]!.deltas).toEqual(['partial']);
    await b.flush();
    expect(readdirSync(dir).sort()).toEqual([1, 2].map((n) => `${job(n).summary.jobId}.json`));
    expect(JSON.parse(readFileSync(join(dir, `${job(1).summary.jobId}.json`), 'utf8')).summary.state).toBe('interrupted');
  });
});
