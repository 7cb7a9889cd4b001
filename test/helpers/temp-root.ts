// Vitest global setup: the whole run's temporary files go under one directory, removed when the run
// ends. Tests make their directories with tmpdir() as any program does (daemons, llama-server,
// code-server and Chromium included) and leave them; a run used to leave about 140 of them in /tmp,
// 100 MB and more. The short name keeps UNIX socket paths below them within sun_path.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'sw-test-'));
  // Read by os.tmpdir() in every worker and child process started from here on.
  process.env.TMPDIR = root;
  return () => {
    rmSync(root, { recursive: true, force: true });
  };
}
