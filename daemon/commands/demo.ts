// `slotwise demo` (what `npm start` runs): set up llama-server if missing, write the tiny model,
// run a daemon with one model × 4 slots in this process, and show live status until Ctrl-C.
import { join } from 'node:path';
import { defaultConfig, type Config } from '../config';
import { RpcClient } from '../client/rpc-client';
import { runSetup } from '../llama/setup';
import { ensureCachedTinyModel } from '../llama/tiny-model';
import { startDaemon } from '../main';
import type { Snapshot } from '../protocol';
import { untilSignal, type Command } from './command';
import { renderStatus } from './render-status';

export const demoCommand: Command = {
  summary: 'the demo: a daemon with the embedded tiny model × 4 slots and a live status table',
  help: [
    'slotwise demo [--slots N] [--port N] [--state-dir DIR]',
    '',
    'Builds llama-server if needed, writes the tiny random-weight model into the cache, starts a daemon',
    '(default state dir: <state dir>/demo, any free port) and redraws the status on every change.',
    'Ctrl-C stops the daemon and its llama-server.',
  ].join('\n'),
  options: { slots: { type: 'string' }, 'exit-when-ready': { type: 'boolean' } },
  async run(ctx) {
    const slots = Number(ctx.values.slots ?? 4);
    await runSetup({ env: ctx.env, quietIfCached: true, stderr: ctx.stderr });
    const modelPath = await ensureCachedTinyModel({ env: ctx.env });
    const config: Config = {
      ...defaultConfig(),
      listen: { host: '127.0.0.1', port: ctx.port ?? 0, allowedOrigins: [] },
      models: [
        { name: 'tiny', path: modelPath, slots, ctxPerSlot: 1024, gpuLayers: 'auto', replicas: 1, maxReplicas: 1, autostart: true, args: [] },
      ],
    };
    const stateDir = ctx.values['state-dir'] ? ctx.stateDir : join(ctx.stateDir, 'demo');
    const daemon = await startDaemon({ stateDir, config, env: ctx.env });
    const client = new RpcClient({ url: daemon.url, token: daemon.token });
    const tty = ctx.stdout.isTTY === true;
    let lastPlain = '';
    const draw = (s: Snapshot): void => {
      const text = renderStatus(s, { color: tty && !ctx.env.NO_COLOR, slots: false });
      if (tty) ctx.stdout.write(`\x1b[H\x1b[2J${text}\n\n(Ctrl-C to stop · OpenAI API at ${daemon.url}/v1 · token in ${join(stateDir, 'token')})\n`);
      else {
        // Without a terminal, print a line only when an instance's state or slot use changed.
        const summary = s.models.map((m) => m.instances.map((i) => `${i.id} ${i.state} ${i.slots.filter((x) => x.busy).length}/${i.slots.length}`).join(', ')).join('; ');
        if (summary !== lastPlain) ctx.stdout.write(`${new Date().toISOString()} ${summary} · ${s.capacity.verdict}: ${s.capacity.reason}\n`);
        lastPlain = summary;
      }
    };
    let ready = false;
    const readyNow = (s: Snapshot): boolean => s.models.every((m) => m.instances.length > 0 && m.instances.every((i) => i.state === 'ready'));
    const readyPromise = new Promise<void>((resolve) => {
      client.on('status', ({ snapshot }) => {
        draw(snapshot);
        if (!ready && readyNow(snapshot)) {
          ready = true;
          resolve();
        }
      });
    });
    const first = await client.call('status.subscribe');
    draw(first);
    if (readyNow(first)) ready = true;
    try {
      if (ctx.values['exit-when-ready']) {
        if (!ready) await Promise.race([readyPromise, daemon.closed]);
        const s = await client.call('status.get');
        ctx.stdout.write(`${renderStatus(s, { slots: true })}\n`);
        return ready ? 0 : 1;
      }
      await Promise.race([untilSignal(), daemon.closed]);
      return 0;
    } finally {
      client.close();
      await daemon.shutdown('demo finished');
    }
  },
};
