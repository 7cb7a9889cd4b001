// Starts code-server (from the E2E cache, see setup-e2e.mjs) in its own process group with a fresh
// user-data and extensions dir, installs the packaged .vsix, and kills the whole group afterwards
// (code-server leaves helper children behind when only the parent is killed).
import { spawn, execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { tempDir } from '../helpers/daemon';

export interface E2eTools {
  node: string;
  codeServer: string;
  chromium: string;
}

export interface CodeServer {
  url: string;
  pid: number;
  userDataDir: string;
  output(): string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export async function installExtension(tools: E2eTools, dirs: { userDataDir: string; extensionsDir: string }, vsix: string): Promise<string> {
  const { stdout, stderr } = await promisify(execFile)(
    tools.node,
    [tools.codeServer, '--user-data-dir', dirs.userDataDir, '--extensions-dir', dirs.extensionsDir, '--install-extension', vsix],
    { timeout: 120_000 },
  );
  return `${stdout}${stderr}`;
}

export async function startCodeServer(
  tools: E2eTools,
  opts: { root: string; folder: string; env: NodeJS.ProcessEnv; settings: Record<string, unknown>; vsix: string },
): Promise<CodeServer> {
  const userDataDir = join(opts.root, 'user-data');
  const extensionsDir = join(opts.root, 'extensions');
  mkdirSync(join(userDataDir, 'User'), { recursive: true });
  mkdirSync(extensionsDir, { recursive: true });
  writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify(opts.settings, null, 2));
  const configFile = join(opts.root, 'code-server.yaml');
  writeFileSync(configFile, 'auth: none\ncert: false\n');
  const installLog = await installExtension(tools, { userDataDir, extensionsDir }, opts.vsix);
  if (!/successfully installed/i.test(installLog)) throw new Error(`installing ${opts.vsix} failed:\n${installLog}`);

  const port = await freePort();
  const args = [
    tools.codeServer,
    '--config', configFile,
    '--auth', 'none',
    '--bind-addr', `127.0.0.1:${port}`,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--user-data-dir', userDataDir,
    '--extensions-dir', extensionsDir,
    opts.folder,
  ];
  const child = spawn(tools.node, args, { env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const pid = child.pid!;
  const stop = async (): Promise<void> => {
    for (const [sig, waitMs] of [['SIGTERM', 3000], ['SIGKILL', 2000]] as const) {
      try {
        process.kill(-pid, sig);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ESRCH') return; // the whole group is gone
        throw err;
      }
      const deadline = Date.now() + waitMs;
      while (Date.now() < deadline && groupAlive(pid)) await sleep(50);
      if (!groupAlive(pid)) return;
    }
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`code-server exited with ${child.exitCode}:\n${out}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return { url, pid, userDataDir, output: () => out, stop };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stop();
  throw new Error(`code-server did not answer /healthz within 60 s:\n${out}`);
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false; // ESRCH: no process left in the group
  }
}

/** Settings that keep code-server quiet and predictable in a test: no tours, tips, telemetry, updates or AI panels. */
export const QUIET_SETTINGS: Record<string, unknown> = {
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'extensions.ignoreRecommendations': true,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'chat.disableAIFeatures': true,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

/**
 * code-server on a fresh workspace holding `files`, with the packaged extension installed and pointed at
 * the daemon of `stateDir` (never starting one of its own); `settings` add to QUIET_SETTINGS.
 */
export async function startWorkspace(
  tools: E2eTools,
  opts: { vsix: string; stateDir: string; files: Record<string, string | Uint8Array>; settings: Record<string, unknown> },
): Promise<CodeServer> {
  const root = tempDir('e2e-cs');
  const folder = join(root, 'workspace');
  mkdirSync(folder, { recursive: true });
  for (const [name, content] of Object.entries(opts.files)) writeFileSync(join(folder, name), content);
  return startCodeServer(tools, {
    root,
    folder,
    vsix: opts.vsix,
    env: { ...process.env, SLOTWISE_STATE_DIR: opts.stateDir },
    settings: { ...QUIET_SETTINGS, 'slotwise.autoStartDaemon': false, ...opts.settings },
  });
}
