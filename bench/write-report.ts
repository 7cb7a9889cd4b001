// Writes a report's three files: bench.json (everything), bench.md (tables), bench.svg (chart).
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { chartFromReport, renderChart } from './chart-svg';
import { renderMarkdown } from './report-md';
import type { BenchReport } from './types';

export interface ReportFiles {
  json: string;
  md: string;
  svg: string;
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
