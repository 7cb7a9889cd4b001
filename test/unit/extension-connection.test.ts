// The extension's connection against a real daemon (test/helpers/daemon.ts): find it through the state
// dir, subscribe, reconnect after a daemon restart, auto-start with the bundled CLI once per episode,
// and re-attach a running prompt job with no token lost. No vscode here: the core is vscode-free.
import { resolve } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Snapshot } from '../../shared/protocol';
import { backoffDelay } from '../../extension/core/backoff';
import { DaemonConnection, type ConnectionState } from '../../extension/core/connection';
import { startDaemonWithCli, stopDaemonWithCli, type CliRuntime } from '../../extension/core/daemon-cli';
import { LocateError, locateDaemon } from '../../extension/core/endpoint';
import { JobTracker } from '../../extension/core/job-tracker';
import { startTestDaemon, tempDir, waitUntil, writeConfig, isAlive } from '../helpers/daemon';

const quiet = { info: () => undefined, warn: () => undefined, debug: () => undefined };
const FAST = { initialMs: 50, maxMs: 400 };

function connectionFor(stateDir: string, extra: Partial<ConstructorParameters<typeof DaemonConnection>[0]> = {}) {
  const states: ConnectionState['kind'][] = [];
  const snapshots: Snapshot[] = [];
  let connects = 0;
  const conn = new DaemonConnection({ locate: () => locateDaemon({ stateDir, daemonUrl: '', tokenFile: '' }, {}), log: quiet, backoff: FAST, ...extra });
  conn.onState.on((s) => {
    if (states.at(-1) !== s.kind) states.push(s.kind);
  });
  conn.onSnapshot.on((s) => snapshots.push(s));
  conn.onConnected.on(() => connects++);
  onTestFinished(() => conn.close());
  return { conn, states, snapshots, connects: () => connects };
}

describe('backoffDelay', () => {
  it.each([
    [0, 0, 250],
    [0, 1, 125],
    [3, 0, 2000],
    [3, 0.5, 1500],
    [10, 0, 10_000],
    [50, 1, 5000],
  ])('attempt %i, random %f → %i ms', (attempt, r, want) => expect(backoffDelay(attempt, {}, () => r)).toBe(want));

  it('honours options', () => expect(backoffDelay(2, { initialMs: 100, factor: 3, maxMs: 500, jitter: 0 })).toBe(500));
});

describe('locateDaemon', () => {
  it('says "absent" when no daemon.json exists', async () => {
    const dir = tempDir('ext-locate');
    const err = await locateDaemon({ stateDir: dir, daemonUrl: '', tokenFile: '' }, {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LocateError);
    expect(err).toMatchObject({ reason: 'absent', code: 'SW_ERR_DAEMON_UNREACHABLE', message: `no daemon running for ${dir} (no daemon.json)` });
  });
});

describe('DaemonConnection (real daemon)', () => {
  it('connects through the state dir, then reconnects and re-subscribes after the daemon restarts on a new port', async () => {
    const first = await startTestDaemon();
    const { conn, states, snapshots, connects } = connectionFor(first.stateDir);
    conn.start();
    await waitUntil(() => conn.state.kind === 'connected', 'first connect', 10_000);
    expect(conn.snapshot?.daemon.url).toBe(first.url);
    expect(conn.endpoint).toMatchObject({ url: first.url, token: first.token }); // what inline completions' HTTP requests use
    await expect(conn.call('status.get')).resolves.toMatchObject({ daemon: { url: first.url } });

    await first.stop();
    await waitUntil(() => conn.state.kind === 'disconnected', 'disconnect noticed', 10_000);
    await expect(conn.call('status.get')).rejects.toMatchObject({ code: 'SW_ERR_DAEMON_UNREACHABLE' });
    expect(conn.endpoint).toBeUndefined();

    const second = await startTestDaemon({ stateDir: first.stateDir });
    expect(second.url).not.toBe(first.url);
    await waitUntil(() => conn.state.kind === 'connected', 'reconnect', 10_000);
    expect(conn.snapshot?.daemon.url).toBe(second.url);
    expect(conn.endpoint?.url).toBe(second.url);
    expect(connects()).toBe(2);
    expect(snapshots.at(-1)?.daemon.pid).toBe(second.pid);
    expect(states.slice(0, 3)).toEqual(['connecting', 'connected', 'disconnected']);
    expect(states.at(-1)).toBe('connected');
  });

  it('refuses a wrong token with SW_ERR_UNAUTHORIZED and keeps retrying', async () => {
    const d = await startTestDaemon();
    const conn = new DaemonConnection({ locate: async () => ({ url: d.url, token: 'f'.repeat(64), stateDir: d.stateDir }), log: quiet, backoff: FAST });
    onTestFinished(() => conn.close());
    conn.start();
    await waitUntil(() => conn.state.kind === 'disconnected', 'refused', 10_000);
    expect(conn.state).toMatchObject({ kind: 'disconnected', code: 'SW_ERR_UNAUTHORIZED' });
    await waitUntil(() => conn.state.kind === 'disconnected' && conn.state.attempt >= 2, 'retries', 10_000);
  });

  it('auto-starts a daemon with the bundled CLI once per episode; after it stops, it stays stopped until asked', async () => {
    const dir = tempDir('ext-autostart');
    const stateDir = resolve(dir, 'state');
    const configPath = writeConfig(dir, { models: {} });
    const cli: CliRuntime = { execPath: process.execPath, cliPath: resolve(__dirname, '../../dist/cli.js'), env: process.env };
    let starts = 0;
    const { conn, states } = connectionFor(stateDir, {
      autoStart: () => true,
      startDaemon: async () => {
        starts++;
        await startDaemonWithCli(cli, { stateDir, configPath });
      },
    });
    onTestFinished(async () => {
      await stopDaemonWithCli(cli, { stateDir });
    });
    conn.start();
    await waitUntil(() => conn.state.kind === 'connected', 'auto-started and connected', 30_000);
    expect(starts).toBe(1);
    expect(states).toEqual(['connecting', 'connected']);
    const pid = conn.snapshot!.daemon.pid;

    await conn.call('daemon.stop');
    await waitUntil(() => !isAlive(pid), 'daemon gone', 20_000);
    await waitUntil(() => conn.state.kind === 'disconnected' && conn.state.attempt >= 3, 'a few retries', 10_000);
    expect(starts).toBe(1); // no restart behind the user's back

    conn.reconnectNow({ allowAutoStart: true });
    await waitUntil(() => conn.state.kind === 'connected', 'started again on request', 30_000);
    expect(starts).toBe(2);
  });

  it('re-attaches a running prompt job after the socket drops: the text equals the daemon\'s, no delta lost or doubled', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 2, ctxPerSlot: 2048, size: 'slow' } } });
    await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready', 'model ready', 90_000);
    const { conn, connects } = connectionFor(d.stateDir);
    const jobs = new JobTracker(conn, quiet);
    conn.onJobEvent.on((ev) => jobs.handle(ev));
    conn.onConnected.on(() => void jobs.reattachAll());
    conn.start();
    await waitUntil(() => conn.state.kind === 'connected', 'connected', 10_000);

    const job = await jobs.submit({ prompt: 'Once upon a time', maxTokens: 400, temperature: 0 });
    await waitUntil(() => job.lastSeq >= 5, 'first deltas', 30_000);
    const seenBeforeDrop = job.lastSeq;
    conn.reconnectNow({ dropCurrent: true }); // the socket goes; the job keeps running in the daemon
    await waitUntil(() => connects() === 2, 'reconnected', 10_000);
    await waitUntil(() => job.state === 'completed', 'job completed', 90_000);

    // The daemon's own record, read by a separate client from seq 0.
    const other = await d.client();
    const replay: string[] = [];
    other.on('job.delta', (p) => {
      if (p.jobId === job.jobId) replay[p.seq - 1] = p.text;
    });
    const summary = await other.call('prompt.attach', { jobId: job.jobId, fromSeq: 0 });
    expect(summary.state).toBe('completed');
    expect(seenBeforeDrop).toBeLessThan(summary.seq);
    expect(job.lastSeq).toBe(summary.seq);
    expect(job.text).toBe(replay.join(''));
    expect(job.usage?.completionTokens).toBeGreaterThan(0);
  });
});
