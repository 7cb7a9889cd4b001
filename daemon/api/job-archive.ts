// Prompt jobs kept on disk (state dir `jobs/`, one JSON file per job) so `slotwise jobs`, `attach` and
// the extension still find them after a daemon restart. A job is written when accepted and again
// when it ends; a file still saying queued/running at the next start belonged to a daemon that died
// (crash, kill -9) and is marked `interrupted`. Bounded: the newest maxJobs files within maxBytes.
import { renameSync, writeFileSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { JobSummary } from '../../shared/protocol';
import { writeFileAtomic } from '../../shared/state-dir';

export interface StoredJob {
  summary: JobSummary;
  /** Every delta, seq = index + 1 (prompt.attach replays them). */
  deltas: string[];
}

export interface JobArchiveOptions {
  dir: string;
  maxJobs?: number;
  maxBytes?: number;
  /** Write failures (disk full): logged, never fatal to the job. */
  onError?: (err: Error) => void;
}

export const INTERRUPTED_MESSAGE = 'the daemon stopped (crash or kill -9) while this job was queued or running — submit it again';

export class JobArchive {
  #opts: Required<JobArchiveOptions>;
  /** Bytes and creation time per stored job, for the bounds. */
  #files = new Map<string, { bytes: number; createdAt: number }>();
  /** Per-job write chain: a job's later state never loses a race against its earlier one. */
  #writes = new Map<string, Promise<void>>();

  constructor(opts: JobArchiveOptions) {
    this.#opts = { maxJobs: 200, maxBytes: 20 * 1024 * 1024, onError: () => undefined, ...opts };
  }

  /** Every stored job, oldest first; those a dead daemon left queued or running come back `interrupted`. */
  async load(): Promise<StoredJob[]> {
    let all: string[];
    try {
      all = await readdir(this.#opts.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    for (const n of all.filter((n) => n.endsWith('.tmp'))) await rm(join(this.#opts.dir, n), { force: true }); // a write the dead daemon never finished
    const names = all.filter((n) => n.endsWith('.json'));
    const jobs: StoredJob[] = [];
    for (const name of names) {
      const file = join(this.#opts.dir, name);
      try {
        const text = await readFile(file, 'utf8');
        const job = JSON.parse(text) as StoredJob;
        if (typeof job.summary?.jobId !== 'string' || `${job.summary.jobId}.json` !== name || !Array.isArray(job.deltas)) throw new Error('not a job');
        jobs.push(job);
        this.#files.set(job.summary.jobId, { bytes: Buffer.byteLength(text), createdAt: job.summary.createdAt });
      } catch {
        await rm(file, { force: true }); // torn or foreign file: nothing to show for it
      }
    }
    for (const job of jobs) {
      if (job.summary.state === 'queued' || job.summary.state === 'running') {
        job.summary.state = 'interrupted';
        job.summary.error = { code: 'SW_ERR_JOB_INTERRUPTED', type: 'server_error', message: INTERRUPTED_MESSAGE };
        this.save(job);
      }
    }
    this.#enforceBounds();
    return jobs.filter((j) => this.#files.has(j.summary.jobId)).sort((a, b) => a.summary.createdAt - b.summary.createdAt);
  }

  /**
   * Writes the job's current state (a snapshot taken now), then drops the oldest jobs beyond the bounds.
   * `sync` (a job just accepted, nothing pending for it): on disk before the caller answers, so a
   * daemon killed a moment later still leaves the record that makes the job show as interrupted.
   */
  save(job: StoredJob, { sync = false } = {}): void {
    const id = job.summary.jobId;
    const text = JSON.stringify(job);
    this.#files.set(id, { bytes: Buffer.byteLength(text), createdAt: job.summary.createdAt });
    if (sync && !this.#writes.has(id)) {
      try {
        writeFileAtomicSync(this.#file(id), text);
      } catch (err) {
        this.#opts.onError(err as Error);
      }
    } else {
      this.#chain(id, () => writeFileAtomic(this.#file(id), text, 0o600));
    }
    this.#enforceBounds();
  }

  remove(jobId: string): void {
    if (!this.#files.delete(jobId)) return;
    this.#chain(jobId, () => rm(this.#file(jobId), { force: true }));
  }

  has(jobId: string): boolean {
    return this.#files.has(jobId);
  }

  /** Resolves once every write so far reached the disk (shutdown). */
  async flush(): Promise<void> {
    while (this.#writes.size > 0) await Promise.allSettled([...this.#writes.values()]);
  }

  #enforceBounds(): void {
    let total = [...this.#files.values()].reduce((a, f) => a + f.bytes, 0);
    const oldestFirst = [...this.#files.entries()].sort((a, b) => a[1].createdAt - b[1].createdAt);
    let count = oldestFirst.length;
    for (const [id, f] of oldestFirst) {
      if (count <= this.#opts.maxJobs && total <= this.#opts.maxBytes) break;
      this.remove(id);
      count--;
      total -= f.bytes;
    }
  }

  #chain(jobId: string, write: () => Promise<void>): void {
    const next = (this.#writes.get(jobId) ?? Promise.resolve())
      .then(write)
      .catch((err: Error) => this.#opts.onError(err))
      .finally(() => {
        if (this.#writes.get(jobId) === next) this.#writes.delete(jobId);
      });
    this.#writes.set(jobId, next);
  }

  #file(jobId: string): string {
    return join(this.#opts.dir, `${jobId}.json`);
  }
}

function writeFileAtomicSync(path: string, data: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, path);
}
