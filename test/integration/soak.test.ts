// `slotwise bench --soak` for 20 seconds against the real llama-server (tiny model): the report has
// one row per interval with the measured figures, and the daemon counted every request exactly as
// the clients saw it (random aborts included).
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SoakReport } from '../../bench/soak';
import { CLI, tempDir } from '../helpers/daemon';

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('bench --soak (real llama-server)', () => {
  it('20 s, 6 clients: per-interval rows, and the daemon outcomes equal the client counts', async () => {
    const dir = tempDir('soak');
    const out = join(dir, 'out');
    const { code, stdout, stderr } = await run(['bench', '--soak', '0.33', '--interval', '5', '--state-dir', join(dir, 'state'), '--out', out], { ...process.env });
    expect(code, stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'soak.json'), 'utf8')) as SoakReport;
    expect(report.options).toMatchObject({ model: 'tiny', minutes: 0.33, clients: 6, intervalMs: 5000 });
    // 19.8 s in 5 s rows: 3 full ones and the partial last.
    expect(report.intervals.map((i) => i.index)).toEqual([1, 2, 3, 4]);
    for (const i of report.intervals.slice(0, 3)) {
      // A failing row names itself, the restarts and the first client error.
      const why = JSON.stringify({ interval: i, restarts: report.restarts, firstError: report.firstError });
      expect(i.requests, why).toBeGreaterThan(0);
      expect(i.requests, why).toBe(i.completed + i.aborted + i.rejected + i.errors);
      expect(i.p50Ms, why).toBeGreaterThan(0);
      expect(i.p99Ms!, why).toBeGreaterThanOrEqual(i.p50Ms!);
      expect(i.daemonRssMB, why).toBeGreaterThan(20);
      expect(i.llamaServerRssMB, why).toBeGreaterThan(10);
    }
    const c = report.client;
    expect(c.sent).toBe(report.intervals.reduce((a, i) => a + i.requests, 0));
    expect(c.sent).toBe(c.completed + c.cancelled + c.rejected + c.failed);
    expect(c.cancelled).toBeGreaterThan(0); // ~10% are aborted on purpose
    expect(c.failed).toBe(0);
    expect(report.daemon).toEqual({ requests: c.sent, completed: c.completed, cancelled: c.cancelled, rejected: c.rejected, failed: c.failed });
    expect(report.outcomesMatch).toBe(true);
    expect(report.restarts).toBe(0);
    // The same table on stdout and in soak.md.
    const md = readFileSync(join(out, 'soak.md'), 'utf8');
    expect(md).toContain('| interval | end (s) | requests | completed | aborted | rejected | errors | p50 ms | p99 ms | daemon RSS MB | llama-server RSS MB |');
    expect(md).toContain('Outcomes match');
    expect(stdout).toContain(md.trim().split('\n')[6]!); // the first data row
  });

  it('refuses options that do not fit a soak, in one usage line', async () => {
    const r = await run(['bench', '--soak', '1', '--concurrency', '4'], { ...process.env });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('slotwise: bench: --soak sets its own load; drop --concurrency — see `slotwise bench --help`');
  });
});
