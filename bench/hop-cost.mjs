#!/usr/bin/env node
// The daemon's cost per proxied request and per streamed chunk, as CPU time and bytes allocated, not
// wall-clock time: on a shared machine timings swing with other work, CPU time and allocations much
// less. A daemon of this checkout (dist/cli.js, build it first) runs in its own process against the
// stand-in upstream (1 × 8 slots, 3 ms a token); two loads of streamed completions go through it
// from this process (no status polls, unlike `bench`, so nothing else runs in the daemon): many
// 1-token streams, then fewer 128-token ones. Cost = requests × per-request + chunks × per-chunk,
// solved from the two loads (the daemon's idle cost, its polls, taken off first). CPU is the sum of
// its threads' /proc schedstat (ns). With --alloc, allocation instead: the sum of V8's `allocated=` over the GCs
// (--trace-gc-nvp), with a 1 MB young generation so a GC, which is when allocation shows, is never
// far from a phase's end (that changes the GC's own CPU cost: measure CPU without --alloc).
//
// --floor measures the bare Node proxy of the sweeps (bench/floor-proxy.ts) the same way instead, in
// front of a stand-in of its own reached over its UNIX socket as the daemon reaches its instance: the
// floor any proxy pays on this machine, for the daemon's figures to be read against (CPU only).
//
// --node-flags passes node flags to the daemon child only, for example to profile it:
// --node-flags='--cpu-prof --cpu-prof-dir=/tmp/prof' (with '=': the value starts with a dash; the profile is
// written when the daemon exits). --perf-basic-prof also leaves isolate-*-v8.log files in the working directory.
//
//   node bench/hop-cost.mjs [--alloc | --floor] [--checkout DIR] [--short N] [--long N] [--concurrency C] [--node-flags=FLAGS] [--warmup N]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const { values: v } = parseArgs({ options: { alloc: { type: 'boolean', default: false }, floor: { type: 'boolean', default: false }, checkout: { type: 'string', default: resolve(import.meta.dirname, '..') }, short: { type: 'string', default: '1200' }, long: { type: 'string', default: '100' }, concurrency: { type: 'string', default: '4' }, 'node-flags': { type: 'string', default: '' }, warmup: { type: 'string', default: '64' } } });
const root = resolve(v.checkout);
const cli = join(root, 'dist/cli.js');
const standIn = join(root, 'test/fixtures/fake-llama-server.mjs');
const dir = mkdtempSync(join(tmpdir(), 'slotwise-hop-cost-'));
const state = join(dir, 'state');
const model = join(dir, 'tiny.gguf');
execFileSync(process.execPath, [cli, 'tiny-model', model], { stdio: 'ignore' });
const STAND_IN_ARGS = ['--parallel', '8', '--fake-token-ms', '3'];
writeFileSync(join(dir, 'config.json'), JSON.stringify({ llamaServer: standIn, models: { s: { path: model, slots: 8, replicas: 1, args: STAND_IN_ARGS.slice(2) } } }));

const v8Flags = [...(v.alloc ? ['--trace-gc-nvp', '--max-semi-space-size=1'] : []), ...v['node-flags'].split(' ').filter(Boolean)];
/** The process measured: the daemon, or with --floor the bare proxy (bench/floor-proxy.ts) in front of a stand-in of its own. */
const target = v.floor ? await startFloor() : startDaemon();
let allocated = 0;
let pending = '';
target.stdout?.setEncoding('utf8').on('data', (text) => {
  pending += text;
  for (let nl; (nl = pending.indexOf('\n')) >= 0; pending = pending.slice(nl + 1)) {
    const m = / allocated=(\d+)/.exec(pending.slice(0, nl));
    if (m) allocated += Number(m[1]);
  }
});

function startDaemon() {
  const child = spawn(process.execPath, [...v8Flags, cli, 'daemon', '--state-dir', state, '--config', join(dir, 'config.json'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return {
    pid: child.pid,
    stdout: child.stdout,
    async endpoint() {
      while (!existsSync(join(state, 'daemon.json'))) await sleep(100);
      return { url: JSON.parse(readFileSync(join(state, 'daemon.json'), 'utf8')).url, token: readFileSync(join(state, 'token'), 'utf8').trim() };
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
    },
  };
}

/** The floor: the stand-in on a port and a UNIX socket, the bare proxy reaching it over the socket as the daemon does. */
async function startFloor() {
  if (v.alloc || v8Flags.length) throw new Error('--floor measures CPU only (no --alloc or --node-flags)');
  const { buildSync } = await import('esbuild');
  const entry = "export { startFloorProxy } from './bench/floor-proxy'; export { freePort } from './daemon/runtime/instance';";
  const built = buildSync({ stdin: { contents: entry, resolveDir: root, loader: 'ts' }, bundle: true, platform: 'node', format: 'cjs', write: false, logLevel: 'error' });
  const mod = { exports: {} };
  new Function('module', 'exports', 'require', built.outputFiles[0].text)(mod, mod.exports, createRequire(import.meta.url));
  const port = await mod.exports.freePort();
  const socket = join(dir, 's.sock');
  const upstream = spawn(process.execPath, [standIn, '-m', model, '--host', `127.0.0.1,${socket}`, '--port', String(port), ...STAND_IN_ARGS], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise((res, rej) => {
    upstream.stderr.setEncoding('utf8').on('data', (t) => (log += t).includes('listening') && res());
    upstream.once('exit', (code) => rej(new Error(`the stand-in exited with ${code}: ${log}`)));
  });
  const floor = await mod.exports.startFloorProxy(`http://127.0.0.1:${port}`, socket);
  return {
    pid: floor.pid,
    endpoint: async () => ({ url: floor.url, token: 'none' }),
    async stop() {
      await floor.close();
      upstream.kill('SIGTERM');
      await new Promise((r) => upstream.on('exit', r));
    },
  };
}

/** The measured process's CPU ms so far: its threads' schedstat (ns), as bench/process-cpu.ts reads it (/proc/PID/stat's 10 ms ticks are coarse for phases of 1–2 s). */
const cpuMs = () => {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${target.pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${target.pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e6;
};
/** CPU ms and bytes allocated (--alloc) by the daemon while `work` runs. */
async function cost(work) {
  const [c0, a0, t0] = [cpuMs(), allocated, Date.now()];
  const result = await work();
  const wallMs = Date.now() - t0;
  return { cpuMs: cpuMs() - c0, bytes: allocated - a0, wallMs, result };
}
/** `requests` streamed completions of `maxTokens`, `concurrency` at a time; resolves with the chunks the daemon relayed. */
async function load(maxTokens, requests) {
  const { url, token } = await target.endpoint();
  const body = JSON.stringify({ model: 's', prompt: 'Write a short story about a lighthouse keeper.', max_tokens: maxTokens, stream: true });
  let next = 0;
  let chunks = 0;
  const worker = async () => {
    while (next++ < requests) {
      const res = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      const text = await res.text();
      chunks += text.split('\n\n').filter(Boolean).length; // one SSE event per upstream chunk
    }
  };
  await Promise.all(Array.from({ length: Number(v.concurrency) }, worker));
  return chunks;
}

try {
  await target.endpoint();
  await sleep(2000);
  await load(16, Number(v.warmup)); // warm up (V8 still optimizes after 64: --warmup 2000 measures steady state)
  const idle = await cost(() => sleep(4000));
  const runs = [];
  for (const [maxTokens, requests] of [[1, Number(v.short)], [128, Number(v.long)]]) {
    const c = await cost(() => load(maxTokens, requests));
    runs.push({ ...c, requests, chunks: c.result });
  }
  const solve = (key, idleRate) => {
    const [a, b] = runs.map((r) => ({ ...r, net: r[key] - idleRate * r.wallMs }));
    const det = a.requests * b.chunks - b.requests * a.chunks;
    return { perRequest: (a.net * b.chunks - b.net * a.chunks) / det, perChunk: (a.requests * b.net - b.requests * a.net) / det };
  };
  const cpu = solve('cpuMs', idle.cpuMs / idle.wallMs);
  const mem = solve('bytes', 0); // idle allocation is small and shows only at a GC
  if (v.alloc) console.log(`allocated: ${(mem.perRequest / 1024).toFixed(1)} KiB per request, ${mem.perChunk.toFixed(0)} B per chunk`);
  else console.log(`${v.floor ? 'bare proxy' : 'daemon'} CPU: ${(cpu.perRequest * 1000).toFixed(0)} µs per request, ${(cpu.perChunk * 1000).toFixed(1)} µs per chunk (idle ${(idle.cpuMs / (idle.wallMs / 1000)).toFixed(1)} ms/s)`);
  console.log(JSON.stringify({ idle, runs: runs.map(({ result: _r, ...r }) => r) }));
} finally {
  await target.stop();
  rmSync(dir, { recursive: true, force: true });
}
