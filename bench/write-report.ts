// Writes a report's three files: bench.json (everything), bench.md (tables), bench.svg (chart).
import { access, constants, mkdir, writeFile } from 'node:fs/promises';
import { SlotwiseError } from '../shared/errors';
import { join, resolve } from 'node:path';
import { chartFromReport, renderChart } from './chart-svg';
import { renderMarkdown } from './report-md';
import type { BenchReport } from './types';

export interface ReportFiles {
  json: string;
  md: string;
  svg: string;
}

/**
 * Makes the report's directory before the run, so a path that cannot hold it (a file, a path under
 * a file, no write permission) is a usage error now, not after minutes of measuring.
 */
export async function prepareReportDir(dir: string): Promise<void> {
  const out = resolve(dir);
  try {
    await mkdir(out, { recursive: true });
    await access(out, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' || code === 'ENOTDIR' ? 'is a file, or is under one' : code === 'EACCES' || code === 'EPERM' ? 'is not writable' : `cannot be made (${code ?? (err as Error).message})`;
    throw new SlotwiseError('SW_ERR_USAGE', `--out ${out} ${why} — pass a directory the report can go in`);
  }
}

export async function writeReport(dir: string, report: BenchReport): Promise<ReportFiles> {
  const out = resolve(dir);
  await mkdir(out, { recursive: true });
  const files: ReportFiles = { json: join(out, 'bench.json'), md: join(out, 'bench.md'), svg: join(out, 'bench.svg') };
  await writeFile(files.json, `${JSON.stringify(report, null, 1)}\n`);
  await writeFile(files.md, renderMarkdown(report));
  await writeFile(files.svg, renderChart(chartFromReport(report)));
  return files;
}
