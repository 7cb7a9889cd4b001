// The CLI against a real daemon and llama-server: up, status, prompt (stream, json, detach/attach), jobs, logs, down.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { tinyModelPath } from '../helpers/tiny';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli';
import { CLI, FAST_SUPERVISOR, startTestDaemon, tempDir, waitUntil, writeConfig } from '../helpers/daemon';
import type { Snapshot } from '../../shared/protocol';

describe('slotwise CLI (real daemon + llama-server)', () => {
  it('up, status, prompt, jobs, attach, logs, down', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 4, ctxPerSlot: 512, autostart: false } } });
    const sd = ['--state-dir', d.stateDir];

    // Before its first run a model has no log: said, not an empty answer.
    const none = await cli(['logs', 'tiny', ...sd]);
    expect(none).toMatchObject({ code: 0, stdout: '' });
    expect(none.stderr).toBe('no llama-server output yet for tiny: it has not run since this state dir was made — start it with `slotwise up tiny`\n');

    // `start` with a daemon running: nothing new starts, and a --port it would not get is named.
    const again = await cli(['start', ...sd, '--port', '1']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^already running: http:\/\/127\.0\.0\.1:\d+ \(pid \d+\)\n$/);
    expect(again.stderr).toMatch(/^slotwise: not applied to the running daemon, which keeps the settings it started with: --port 1 \(it listens on \d+\) — `slotwise stop`, then start again to use them\n$/);

    const up = await cli(['up', 'tiny', ...sd]);
    expect(up.code).toBe(0);
    expect(up.stdout).toBe('tiny: 1 instance(s) ready, 4 slots\n');
    expect(up.stderr).toMatch(/\[tiny#1\] (starting|loading)[\s\S]*\[tiny#1\] ready/);

    const status = await cli(['status', ...sd]);
    expect(status.stdout).toMatch(/tiny\s+tiny#1\s+ready\s+\d+\s+\d+\s+░░░░ 0\/4/);
    expect(status.stdout).toMatch(/tiny · llama, 2 layers, [\d.]+ MB · 4 slots × 512 ctx/);

    const streamed = await cli(['prompt', '-n', '12', 'Hello there', ...sd]);
    expect(streamed.code).toBe(0);
    expect(streamed.stdout.trim().length).toBeGreaterThan(0);
    expect(streamed.stderr).toMatch(/\[length · 12 tokens · queued \d+ ms · ttft \d+ ms/);

    const json = await cli(['prompt', '--chat', '--json', '-n', '5', 'Hi', ...sd]);
    expect(JSON.parse(json.stdout)).toMatchObject({ model: 'tiny', state: 'completed', usage: { completionTokens: 5 }, title: 'Hi' });

    const detached = await cli(['prompt', '--detach', '-n', '20', 'Later', ...sd]);
    const jobId = detached.stdout.trim();
    expect(jobId).toMatch(/^[0-9a-f-]{36}$/);
    const attached = await cli(['attach', jobId, ...sd]);
    expect(attached.code).toBe(0);
    expect(attached.stderr).toMatch(/\[length · 20 tokens/);

    const jobs = await cli(['jobs', ...sd]);
    expect(jobs.stdout.split('\n').filter(Boolean)).toHaveLength(3);
    expect(jobs.stdout).toContain(jobId);

    await new Promise((r) => setTimeout(r, 600)); // two /slots polls of the idle server
    const logs = await cli(['logs', 'tiny', '-n', '5', ...sd]);
    expect(logs.stdout.split('\n').filter(Boolean).length).toBe(5);
    // The trace line llama-server prints after each of the daemon's polls buries nothing.
    expect(logs.stdout).not.toContain('all slots are idle');
    expect(readFileSync(join(d.stateDir, 'logs', 'tiny_1.log'), 'utf8')).not.toContain('all slots are idle');

    const unknown = await cli(['up', 'ghost', ...sd]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('slotwise: unknown model "ghost" — configured models: tiny\n');

    const down = await cli(['down', 'tiny', ...sd]);
    expect(down.stdout).toBe('tiny: stopped\n');
    expect((await d.status()).models[0]!.instances[0]!.state).toBe('stopped');
  });

  it('up on a model that fails ends with its reason once, and a non-zero exit (stand-in binary: a missing library)', async () => {
    const dir = tempDir('up-fails');
    const binary = join(dir, 'llama-server');
    writeFileSync(binary, '#!/bin/sh\necho "error while loading shared libraries: libcuda.so.1: cannot open shared object file" >&2\nexit 127\n', { mode: 0o755 });
    const d = await startTestDaemon({
      models: { m: { slots: 1, autostart: false } },
      config: { llamaServer: binary, supervisor: { ...FAST_SUPERVISOR, backoffInitialMs: 100, backoffMaxMs: 200, maxCrashes: 2 } },
    });
    const up = await cli(['up', 'm', '--state-dir', d.stateDir]);
    expect(up.code).toBe(1);
    const lines = up.stderr.trim().split('\n');
    // The reason once at the end, not also on the state line just before it.
    expect(lines.at(-2)).toBe('[m#1] failed');
    expect(lines.at(-1)).toMatch(/^slotwise: \[m#1\] failed: .*libcuda\.so\.1/);
  });

  it('Ctrl-C on `slotwise prompt` cancels the job and frees the slot', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 4096, size: 'slow' } } });
    await d.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready', 'ready');
    const child = spawn(process.execPath, [CLI, 'prompt', '-n', '3000', 'Go on and on', '--state-dir', d.stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b));
    child.stderr.on('data', (b: Buffer) => (err += b));
    await waitUntil(() => out.length > 20, 'tokens streaming', 20_000);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(130);
    expect(err).toMatch(/cancelled [0-9a-f-]{36}/);
    await d.waitFor((s) => s.models[0]!.outcomes?.cancelled === 1 && (s.models[0]!.instances[0]!.inFlight ?? 0) === 0, 'job cancelled, slot free', 5000);
  });

  it('a closed stdout (`| head`) or SIGTERM on `slotwise prompt` cancels the job too, instead of generating for nobody', async () => {
    const d = await startTestDaemon({ models: { tiny: { slots: 1, ctxPerSlot: 4096, size: 'slow' } } });
    await d.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready', 'ready');
    const run = async (end: (child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; err: string }> => {
      const child = spawn(process.execPath, [CLI, 'prompt', '-n', '3000', 'Go on and on', '--state-dir', d.stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout!.on('data', (b: Buffer) => (out += b));
      child.stderr!.on('data', (b: Buffer) => (err += b));
      await waitUntil(() => out.length > 20, 'tokens streaming', 20_000);
      end(child);
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      return { code, err };
    };
    // The reader goes away, as `head` does once it has its lines: the next write fails with EPIPE.
    const piped = await run((child) => child.stdout!.destroy());
    expect(piped.code).toBe(141);
    expect(piped.err).toMatch(/^cancelled [0-9a-f-]{36} \(its output was closed\)\n$/);
    await d.waitFor((s) => s.models[0]!.outcomes?.cancelled === 1 && (s.models[0]!.instances[0]!.inFlight ?? 0) === 0, 'job cancelled, slot free', 5000);
    const terminated = await run((child) => child.kill('SIGTERM'));
    expect(terminated.code).toBe(143);
    expect(terminated.err).toMatch(/cancelled [0-9a-f-]{36}\n$/);
    await d.waitFor((s) => s.models[0]!.outcomes?.cancelled === 2 && (s.models[0]!.instances[0]!.inFlight ?? 0) === 0, 'second job cancelled, slot free', 5000);
  });

  it('a daemon without models names the file to add one to, in status, doctor, its log and a prompt', async () => {
    const dir = tempDir('nomodels');
    const sd = ['--state-dir', join(dir, 'state')];
    // No --config and no file at the default path: the daemon runs on defaults.
    const { SLOTWISE_CONFIG: _named, ...base } = process.env;
    const env = { ...base, XDG_CONFIG_HOME: dir };
    const defaultPath = join(dir, 'slotwise', 'config.json');
    const started = await cli(['start', ...sd, '--port', '0'], { env });
    expect(started.code).toBe(0);
    try {
      const snap = JSON.parse((await cli(['status', '--json', ...sd], { env })).stdout) as Snapshot;
      expect(snap.daemon.config).toEqual({ path: defaultPath, exists: false });
      const text = (await cli(['status', ...sd], { env })).stdout;
      expect(text).toContain(`No models configured. Add one under "models" in ${defaultPath} (no such file yet: create it), e.g.`);
      expect(text).toContain('then restart the daemon: slotwise stop && slotwise start');
      expect(started.stderr).toContain(`slotwise: warning: no models configured: add one under "models" in ${defaultPath}, then \`slotwise stop && slotwise start\``);
      const prompt = await cli(['prompt', 'hi', ...sd], { env });
      expect(prompt.code).toBe(1);
      expect(prompt.stderr).toBe('slotwise: prompt.submit: no model is configured — add one under "models" in the config file (`slotwise status` names it) and restart the daemon\n');
      const doctor = await cli(['doctor', ...sd], { env });
      expect(doctor.stdout).toContain(`· config        no file at ${defaultPath}: defaults, no models`);
      expect(readFileSync(join(dir, 'state', 'logs', 'daemon.log'), 'utf8')).toContain(`config: no file at ${defaultPath}, so no models`);
    } finally {
      await cli(['stop', ...sd], { env });
    }

    // A file with no models: named as read, and doctor says it has none.
    const file = writeConfig(dir, { models: {} });
    expect((await cli(['start', ...sd, '--config', file, '--port', '0'], { env })).code).toBe(0);
    try {
      const snap = JSON.parse((await cli(['status', '--json', ...sd], { env })).stdout) as Snapshot;
      expect(snap.daemon.config).toEqual({ path: file, exists: true });
      expect((await cli(['status', ...sd], { env })).stdout).toContain(`Add one under "models" in ${file}, e.g.`);
      expect((await cli(['doctor', ...sd, '--config', file], { env })).stdout).toContain(`· config        ${file} · no models — add one under "models"`);
    } finally {
      await cli(['stop', ...sd], { env });
    }
  });

  it('start warns of autostart models that cannot start: one over the memory budget, one whose llama-server exits at launch', async () => {
    const dir = tempDir('startwarn');
    const sd = ['--state-dir', join(dir, 'state')];
    const tiny = await tinyModelPath();
    // A flag llama-server does not know passes the daemon's checks; llama-server exits on it at launch.
    // `huge` alone is over the budget (about 50 MiB planned for `ok` and `bad`, about 184 MiB for it).
    const config = writeConfig(dir, {
      supervisor: FAST_SUPERVISOR,
      memoryBudgetMiB: 100,
      models: {
        ok: { path: tiny, slots: 1, ctxPerSlot: 256, gpuLayers: 0, autostart: false },
        bad: { path: tiny, slots: 1, ctxPerSlot: 256, gpuLayers: 0, args: ['--no-such-flag'] },
        huge: { path: tiny, slots: 16, ctxPerSlot: 4096, gpuLayers: 0 },
      },
    });
    const started = await cli(['start', ...sd, '--config', config, '--port', '0']);
    try {
      expect(started.code).toBe(0); // the daemon runs: `ok` can still be loaded
      const warnings = started.stderr.split('\n').filter((l) => l.startsWith('slotwise: warning:'));
      expect(warnings).toHaveLength(2);
      expect(warnings.find((l) => l.includes('huge'))).toMatch(/^slotwise: warning: huge not started: .*— `slotwise plan huge`$/);
      expect(warnings.find((l) => l.includes('bad'))).toMatch(/^slotwise: warning: \[bad#1\] (exited at launch|failed): .+ — `slotwise logs bad#1`$/);
    } finally {
      await cli(['stop', ...sd]);
    }
    // --no-watch (the extension's: its Models view shows the states) returns without looking.
    const quick = await cli(['start', '--no-watch', ...sd, '--config', config, '--port', '0']);
    try {
      expect(quick.code).toBe(0);
      expect(quick.stderr).toMatch(/^slotwise daemon started \(pid \d+\); logs in .*\n$/);
    } finally {
      await cli(['stop', ...sd]);
    }
  });

  it('up ends, naming why, when the model is stopped before it is ready (it waited out its timeout)', async () => {
    const d = await startTestDaemon({ models: { a: { size: 'long', slots: 1, ctxPerSlot: 4096, gpuLayers: 0, autostart: false } } });
    const up = cli(['up', 'a', '--state-dir', d.stateDir]);
    await d.waitFor((s) => s.models[0]!.replicas === 1, 'a starting');
    await (await d.client()).call('models.stop', { model: 'a' });
    const r = await up;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/slotwise: \[a\] was stopped before it was ready — `slotwise up a` to start it again\n$/);
  });
});
