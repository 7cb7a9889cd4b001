// Daemon lifecycle hardening with real daemons and real llama-servers: process identity for `stop`
// and the orphan reaper, one daemon per state dir, a private state dir.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { findLlamaServer } from '../../toolchain/binary';
import { NONCE_ENV } from '../../platform/process-identity';
import { CLI, isAlive, killTree, llamaServersWith, recordedPids, startTestDaemon, tempDir, waitUntil, writeConfig } from '../helpers/daemon';
import { tinyModelPath } from '../helpers/tiny';

const run = promisify(execFile);

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 60_000, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A process that must survive: killed at the end of the test. */
function bystander(command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: 'ignore', detached: true });
  onTestFinished(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  return child;
}

function startTime(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A daemon process on the given state dir, not waited for (the lock test races two of them). */
function spawnDaemon(stateDir: string, configPath: string): { proc: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let out = '';
  const proc = spawn(process.execPath, [CLI, 'daemon', '--state-dir', stateDir, '--config', configPath, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  onTestFinished(() => killTree(proc, stateDir, stateDir));
  return { proc, output: () => out, exited };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('process identity', () => {
  it('stop with a stale daemon.json naming another live process leaves it alone, removes the record; start then works', async () => {
    const dir = tempDir('stale');
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    const victim = bystander('sleep', ['1000']);
    const port = await freePort();
    // Same pid and even the same start time: only the nonce (absent from sleep's environment) tells them apart.
    writeFileSync(
      join(stateDir, 'daemon.json'),
      JSON.stringify({ pid: victim.pid, port, url: `http://127.0.0.1:${port}`, version: '0', protocol: 1, startedAt: new Date().toISOString(), startTime: startTime(victim.pid!), nonce: 'c'.repeat(32) }),
      { mode: 0o600 },
    );
    const stop = await cli(['stop', '--state-dir', stateDir]);
    expect(stop.code).toBe(0);
    expect(stop.stderr).toBe(`removed a stale daemon.json (pid ${victim.pid} is not provably that daemon: its start time or nonce differ; left alone); no daemon was running\n`);
    await sleep(300);
    expect(isAlive(victim.pid!)).toBe(true);
    expect(existsSync(join(stateDir, 'daemon.json'))).toBe(false);

    const configPath = writeConfig(dir, { models: {} });
    const start = await cli(['start', '--state-dir', stateDir, '--config', configPath, '--port', '0']);
    expect(start.code).toBe(0);
    const info = JSON.parse(readFileSync(join(stateDir, 'daemon.json'), 'utf8')) as { pid: number; nonce: string; startTime: number };
    onTestFinished(() => void cli(['stop', '--state-dir', stateDir]));
    expect(readFileSync(`/proc/${info.pid}/environ`, 'utf8').split('\0')).toContain(`${NONCE_ENV}=${info.nonce}`);
    expect(info.startTime).toBe(startTime(info.pid));
    expect((await cli(['status', '--json', '--state-dir', stateDir])).code).toBe(0);
    const stopped = await cli(['stop', '--state-dir', stateDir]);
    expect(stopped.stderr).toBe('slotwise daemon stopped\n');
    expect(isAlive(info.pid)).toBe(false);
    expect(isAlive(victim.pid!)).toBe(true);
  });

  it('the reaper kills a real orphan of a SIGKILLed daemon, and leaves a hand-started llama-server and a sleep alone', async () => {
    // Parent-death signalling off, to leave a real orphan behind as a crash on a system without it would.
    const d1 = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 256 } }, env: { SLOTWISE_NO_PDEATHSIG: '1' } });
    const orphan = (await d1.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready', 'tiny ready')).models[0]!.instances[0]!.pid!;
    d1.proc.kill('SIGKILL');
    await waitUntil(() => d1.proc.exitCode !== null || d1.proc.signalCode !== null, 'daemon 1 dead');
    const record = JSON.parse(readFileSync(join(d1.stateDir, 'pids', 'tiny_1.json'), 'utf8')) as Record<string, unknown>;

    // A llama-server the user started by hand, and a sleep, each named by a record that claims the dead daemon's nonce.
    const binary = (await findLlamaServer({ env: process.env }))!.path;
    const hand = bystander(binary, ['-m', await tinyModelPath(), '--host', '127.0.0.1', '--port', String(await freePort()), '-c', '256']);
    const sleeper = bystander('sleep', ['1000']);
    for (const [name, pid] of [['hand', hand.pid!], ['sleep', sleeper.pid!]] as const) {
      writeFileSync(join(d1.stateDir, 'pids', `${name}.json`), JSON.stringify({ ...record, instance: name, pid, startTime: startTime(pid) }), { mode: 0o600 });
    }
    expect(isAlive(orphan)).toBe(true);

    const d2 = await startTestDaemon({ stateDir: d1.stateDir, models: {} });
    await waitUntil(() => !isAlive(orphan), `orphan ${orphan} reaped by the new daemon`, 15_000);
    expect(isAlive(hand.pid!)).toBe(true);
    expect(isAlive(sleeper.pid!)).toBe(true);
    expect(recordedPids(d2.stateDir)).toEqual([]);
    const log = readFileSync(join(d2.stateDir, 'logs', 'daemon.log'), 'utf8');
    expect(log).toContain(`reaping orphan llama-server pid ${orphan} (tiny#1`);
    expect(log).toContain(`pid record hand names pid ${hand.pid}, which is not a provable orphan of ours; left running, record removed`);
  });
});

describe('one daemon per state dir', () => {
  it('of two daemons started at the same moment exactly one runs; after kill -9 a new one starts', async () => {
    const dir = tempDir('lock');
    const stateDir = join(dir, 'state');
    const configPath = writeConfig(dir, { models: {} });
    const a = spawnDaemon(stateDir, configPath);
    const b = spawnDaemon(stateDir, configPath);
    const loser = await Promise.race([a.exited.then(() => a), b.exited.then(() => b)]);
    const winner = loser === a ? b : a;
    expect(await loser.exited).toBe(1);
    await waitUntil(() => existsSync(join(stateDir, 'daemon.json')) && readFileSync(join(stateDir, 'daemon.json'), 'utf8').includes(`"pid": ${winner.proc.pid}`), 'winner writes daemon.json');
    const info = JSON.parse(readFileSync(join(stateDir, 'daemon.json'), 'utf8')) as { port: number; url: string };
    expect(loser.output()).toMatch(new RegExp(`^slotwise: a daemon already runs for this state dir \\(pid ${winner.proc.pid}, (still starting|port ${info.port})\\) — use it, or \`slotwise stop\` first\\n$`));
    expect((await fetch(`${info.url}/healthz`)).status).toBe(200);
    expect(winner.proc.exitCode).toBeNull();

    winner.proc.kill('SIGKILL');
    await winner.exited;
    const next = await startTestDaemon({ stateDir, models: {} });
    expect((await fetch(`${next.url}/healthz`)).status).toBe(200);
  });
});

describe('one daemon per state dir (start)', () => {
  it('two `slotwise start` at the same moment both succeed against one daemon', async () => {
    const dir = tempDir('lock2');
    const stateDir = join(dir, 'state');
    const configPath = writeConfig(dir, { models: {} });
    onTestFinished(() => void cli(['stop', '--state-dir', stateDir]));
    const [a, b] = await Promise.all([0, 1].map(() => cli(['start', '--state-dir', stateDir, '--config', configPath, '--port', '0'])));
    expect([a!.code, b!.code]).toEqual([0, 0]);
    const info = JSON.parse(readFileSync(join(stateDir, 'daemon.json'), 'utf8')) as { pid: number; url: string };
    // One says where it started, the other that it is already running: the same daemon.
    expect([a!.stdout, b!.stdout].sort()).toEqual([`already running: ${info.url} (pid ${info.pid})\n`, `${info.url}\n`]);
    const stopped = await cli(['stop', '--state-dir', stateDir]);
    expect(stopped.stderr).toBe('slotwise daemon stopped\n');
  });
});

describe('state dir permissions', () => {
  it('a 0755 state dir, a 0644 token and a 0644 log are made private with a warning; doctor reports them before', async () => {
    const dir = tempDir('perms');
    const stateDir = join(dir, 'state');
    mkdirSync(join(stateDir, 'logs'), { recursive: true });
    chmodSync(stateDir, 0o755);
    const token = 'd'.repeat(64);
    writeFileSync(join(stateDir, 'token'), `${token}\n`);
    chmodSync(join(stateDir, 'token'), 0o644);
    writeFileSync(join(stateDir, 'logs', 'daemon.log'), '');
    chmodSync(join(stateDir, 'logs', 'daemon.log'), 0o644);

    const doctor = await cli(['doctor', '--state-dir', stateDir, '--config', writeConfig(dir, { models: {} })]);
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toContain(`✗ state dir     ${stateDir}: 4 permission problem(s)`);
    expect(doctor.stdout).toContain(`✗   .           mode 0755, should be 0700 — chmod 700 ${stateDir} (the daemon does this at start)`);
    expect(doctor.stdout).toContain(`✗   logs        mode 0755, should be 0700`);
    expect(doctor.stdout).toContain(`✗   token       mode 0644, should be 0600 — chmod 600 ${join(stateDir, 'token')} (the daemon does this at start)`);
    expect(doctor.stdout).toContain(`✗   logs/daemon.log mode 0644, should be 0600`);

    const d = await startTestDaemon({ stateDir, models: {} });
    expect(d.token).toBe(token); // the existing token is kept, only its mode changes
    const mode = (p: string) => statSync(join(stateDir, p)).mode & 0o777;
    expect([mode('.'), mode('logs'), mode('token'), mode('logs/daemon.log'), mode('daemon.json')]).toEqual([0o700, 0o700, 0o600, 0o600, 0o600]);
    expect(readFileSync(join(stateDir, 'logs', 'daemon.log'), 'utf8')).toContain(`state dir permissions: ${join(stateDir, 'token')}: mode 0644, should be 0600; set to 0600`);
    const after = await cli(['doctor', '--state-dir', stateDir, '--config', writeConfig(dir, { models: {} })]);
    expect(after.stdout).toContain(`✓ state dir     ${stateDir}\n`);
  });

  it('a symlinked token is refused with the path and the fix', async () => {
    const dir = tempDir('perms');
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { mode: 0o700 });
    writeFileSync(join(dir, 'elsewhere'), `${'e'.repeat(64)}\n`, { mode: 0o600 });
    symlinkSync(join(dir, 'elsewhere'), join(stateDir, 'token'));
    const d = spawnDaemon(stateDir, writeConfig(dir, { models: {} }));
    expect(await d.exited).toBe(1);
    const tokenPath = join(stateDir, 'token');
    expect(d.output()).toBe(`slotwise: ${tokenPath}: is a symlink — remove it (rm ${tokenPath}); Slotwise writes its own\n`);
    const doctor = await cli(['doctor', '--state-dir', stateDir]);
    expect(doctor.stdout).toContain(`✗   token       is a symlink — remove it (rm ${tokenPath}); Slotwise writes its own`);
  });

  it('doctor leaves a state dir that does not exist yet alone, and says whether it can be made', async () => {
    const dir = tempDir('perms');
    const stateDir = join(dir, 'not', 'yet');
    const config = writeConfig(dir, { models: {} });
    const doctor = await cli(['doctor', '--state-dir', stateDir, '--config', config]);
    expect(doctor.stdout).toContain(`· state dir     ${stateDir}: not created yet (the daemon makes it, mode 0700, at its first start)`);
    expect(doctor.stdout).not.toContain('✗ state dir');
    expect(existsSync(join(dir, 'not'))).toBe(false); // looking made nothing
    // Under a file it can never be made (a permission test would pass as root; this one holds for anyone).
    writeFileSync(join(dir, 'file'), 'x');
    const under = join(dir, 'file', 'state');
    const bad = await cli(['doctor', '--state-dir', under, '--config', config]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`✗ state dir     ${under} cannot be created: ${join(dir, 'file')} is not a directory — choose another with --state-dir or $SLOTWISE_STATE_DIR`);
  });
});

interface Streamed {
  /** Resolves with the status once the response head arrived. */
  head: Promise<number>;
  /** Resolves with the whole body and when it ended. */
  body: Promise<{ status: number; text: string; endedAt: number }>;
  /** Bytes so far. */
  sofar(): string;
}

function stream(url: string, token: string, body: Record<string, unknown>): Streamed {
  let text = '';
  let resolveHead!: (s: number) => void;
  const head = new Promise<number>((r) => (resolveHead = r));
  const done = (async () => {
    const res = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: JSON.stringify({ model: 'm', prompt: 'x', stream: true, ignore_eos: true, ...body }) });
    resolveHead(res.status);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    for (;;) {
      const { done: end, value } = await reader.read();
      if (end) break;
      text += decoder.decode(value, { stream: true });
    }
    return { status: res.status, text, endedAt: Date.now() };
  })();
  return { head, body: done, sofar: () => text };
}

/** The stream's JSON events. Parsed, not searched: the random-weight model can generate the text "error". */
const events = (sse: string): { choices?: { text: string }[]; error?: unknown }[] =>
  sse
    .split('\n\n')
    .filter((e) => e.startsWith('data: {'))
    .map((e) => JSON.parse(e.slice(6)) as { choices?: { text: string }[]; error?: unknown });
const deltas = (sse: string): string[] => events(sse).flatMap((e) => (e.error === undefined && e.choices ? [e.choices[0]!.text] : []));
const errors = (sse: string): unknown[] => events(sse).flatMap((e) => (e.error === undefined ? [] : [e.error]));

describe('graceful shutdown', () => {
  it('SIGTERM: queued requests get 503, a short stream completes, a long one and a WS job end with SW_ERR_SHUTTING_DOWN; exit 0, no llama-server left', async () => {
    const d = await startTestDaemon({ models: { m: { size: 'slow', slots: 3, ctxPerSlot: 4096 } }, config: { shutdownGraceMs: 8000 } });
    await d.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready', 'm ready');
    const client = await d.client();
    const jobEvents: { method: string; params: { code?: string } }[] = [];
    client.on('job.error', (p) => jobEvents.push({ method: 'job.error', params: p }));
    client.on('job.end', () => jobEvents.push({ method: 'job.end', params: {} }));

    // Short: a few seconds (about 100 tokens/s per slot here), so it runs at SIGTERM and ends within the grace; long: minutes.
    const short = stream(d.url, d.token, { max_tokens: 300 });
    const long = stream(d.url, d.token, { max_tokens: 3500 });
    const { jobId } = await client.call('prompt.submit', { model: 'm', prompt: 'x', maxTokens: 3500 });
    await waitUntil(() => short.sofar().includes('data: {') && long.sofar().includes('data: {'), 'both streams under way');
    const queued = [stream(d.url, d.token, { max_tokens: 5 }), stream(d.url, d.token, { max_tokens: 5 })];
    await d.waitFor((s) => s.models[0]!.queue.waiting === 2, '2 requests queued', 10_000);
    expect(short.sofar()).not.toContain('[DONE]'); // still running when the signal comes

    const sigtermAt = Date.now();
    d.proc.kill('SIGTERM');
    for (const q of queued) {
      const r = await q.body;
      expect(r.status).toBe(503);
      expect(JSON.parse(r.text)).toMatchObject({ error: { code: 'SW_ERR_SHUTTING_DOWN' } });
      expect(JSON.parse(r.text).error.message).toMatch(/^daemon is shutting down \(received SIGTERM\); request for "m" was not started — retry once a daemon runs again$/);
    }
    const late = await d.fetch('/v1/completions', { method: 'POST', body: JSON.stringify({ model: 'm', prompt: 'x', max_tokens: 1 }) });
    expect(late.status).toBe(503);
    expect(((await late.json()) as { error: { code: string } }).error.code).toBe('SW_ERR_SHUTTING_DOWN');

    const s = await short.body;
    expect(s.status).toBe(200);
    expect(s.text).toContain('data: [DONE]');
    expect(errors(s.text)).toEqual([]);
    expect(deltas(s.text).length).toBeGreaterThan(0);
    expect(s.endedAt).toBeGreaterThan(sigtermAt);

    const l = await long.body;
    expect(l.status).toBe(200);
    expect(deltas(l.text).length).toBeGreaterThan(0);
    expect(l.text).not.toContain('[DONE]');
    const last = l.text.trim().split('\n\n').pop()!;
    expect(JSON.parse(last.slice(6))).toMatchObject({ error: { code: 'SW_ERR_SHUTTING_DOWN', message: 'daemon is shutting down (received SIGTERM); the response was ended after shutdownGraceMs (8000 ms)' } });
    expect(l.endedAt - sigtermAt).toBeGreaterThanOrEqual(7900);

    await waitUntil(() => d.proc.exitCode !== null || d.proc.signalCode !== null, `daemon exit; output:\n${d.output().slice(-2000)}`, 20_000);
    expect(d.proc.exitCode, d.output().slice(-2000)).toBe(0);
    expect(jobEvents).toEqual([{ method: 'job.error', params: expect.objectContaining({ jobId, code: 'SW_ERR_SHUTTING_DOWN' }) }]);
    expect(llamaServersWith(d.dir)).toEqual([]);
  }, 90_000);
});

describe('shutdown with a silent WebSocket client', () => {
  it('a client that never answers the close frame does not hold the daemon: it exits within a second or two, not ws\'s 30 s close timeout', async () => {
    const d = await startTestDaemon();
    const u = new URL(d.url);
    // A raw upgrade, then silence: no close frame is ever answered.
    const sock = connect(Number(u.port), u.hostname);
    await new Promise((r) => sock.once('connect', r));
    sock.write(`GET /ws HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer ${d.token}\r\n\r\n`);
    let got = '';
    sock.on('data', (b: Buffer) => (got += b.toString('latin1')));
    await waitUntil(() => got.startsWith('HTTP/1.1 101'), 'upgraded');
    const closed = new Promise((r) => sock.once('close', r));
    const stopAt = Date.now();
    d.proc.kill('SIGTERM');
    await waitUntil(() => d.proc.exitCode !== null, 'daemon exit', 20_000);
    const exitMs = Date.now() - stopAt;
    await closed;
    expect(d.proc.exitCode).toBe(0);
    expect(exitMs).toBeLessThan(10_000); // was about 30 s, ws's closeTimeout, with this client connected
  });
});

describe('jobs kept on disk', () => {
  it('a finished job is listed with its text after a restart; a job running at kill -9 shows interrupted', async () => {
    const d1 = await startTestDaemon({ models: { m: { slots: 1, ctxPerSlot: 512 } } });
    await d1.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready', 'm ready');
    const c1 = await d1.client();
    const text: string[] = [];
    c1.on('job.delta', (p) => text.push(p.text));
    const ended = new Promise((r) => c1.on('job.end', r));
    const { jobId: done } = await c1.call('prompt.submit', { model: 'm', prompt: 'Hello', maxTokens: 8 });
    await ended;
    expect(text.length).toBeGreaterThan(0);
    await d1.stop();
    const file = join(d1.stateDir, 'jobs', `${done}.json`);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const d2 = await startTestDaemon({ stateDir: d1.stateDir, models: { m: { size: 'slow', slots: 1, ctxPerSlot: 4096 } } });
    await d2.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready', 'm ready');
    const c2 = await d2.client();
    const firstDelta = new Promise((r) => c2.on('job.delta', r));
    const { jobId: running } = await c2.call('prompt.submit', { model: 'm', prompt: 'x', maxTokens: 3500 });
    await firstDelta;
    d2.proc.kill('SIGKILL');
    await waitUntil(() => d2.proc.signalCode !== null, 'daemon 2 killed');

    const d3 = await startTestDaemon({ stateDir: d1.stateDir, models: {} });
    const jobs = await cli(['jobs', '--json', '--state-dir', d3.stateDir]);
    expect(jobs.code).toBe(0);
    const list = JSON.parse(jobs.stdout) as { jobId: string; state: string; error?: { code: string } }[];
    expect(list.map((j) => [j.jobId, j.state])).toEqual([
      [running, 'interrupted'],
      [done, 'completed'],
    ]);
    expect(list[0]!.error).toMatchObject({ code: 'SW_ERR_JOB_INTERRUPTED' });
    const attached = await cli(['attach', done, '--state-dir', d3.stateDir]);
    expect(attached.code).toBe(0);
    expect(attached.stdout).toBe(`${text.join('')}\n`); // the CLI ends the text with a newline
    const interrupted = await cli(['attach', running, '--state-dir', d3.stateDir]);
    expect(interrupted.code).toBe(1);
    expect(interrupted.stderr).toContain('the daemon stopped (crash or kill -9) while this job was queued or running — submit it again');
  });
});
