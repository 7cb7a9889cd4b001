// Runs the built CLI (dist/cli.js) as a user would and returns its exit code and output, never throwing.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI } from './daemon';

const run = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function cli(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: opts.timeoutMs ?? 60_000, ...(opts.env ? { env: opts.env } : {}) });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
