// `up MODEL`, `down MODEL`, `restart MODEL`, `logs [MODEL]`.
import { modelSlots } from '../../shared/slots';
import { SlotwiseError, toSlotwiseError } from '../../shared/errors';
import { intValue, numberValue } from '../args';
import { LOGS_TAIL_MAX_LINES } from '../../daemon/server/rpc';
import { withDaemon } from '../locate';
import { tailLogFiles } from '../log-files';
import { stateDirPaths } from '../../shared/state-dir';
import type { RpcClient } from '../../shared/rpc-client';
import type { ModelStatus } from '../../shared/protocol';
import type { Command, CommandContext } from './command';

function modelArg(ctx: CommandContext, verb: string): string {
  const [model, extra] = ctx.positionals;
  if (!model || extra !== undefined) throw new SlotwiseError('SW_ERR_USAGE', `usage: slotwise ${verb} MODEL`);
  return model;
}

/** Waits until every instance of the model is ready, printing each state change; fails on `failed`, or when the model is stopped meanwhile. */
async function waitReady(client: RpcClient, model: string, ctx: CommandContext, timeoutMs: number): Promise<ModelStatus> {
  const seen = new Map<string, string>();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new SlotwiseError('SW_ERR_HEALTH_TIMEOUT', `[${model}] not ready after ${timeoutMs / 1000} s — see \`slotwise logs ${model}\``)), timeoutMs);
    const check = (models: ModelStatus[]): void => {
      const m = models.find((x) => x.name === model);
      if (!m) return;
      for (const i of m.instances) {
        // A failed one's reason is the error up ends with: not printed twice.
        if (seen.get(i.id) !== i.state) ctx.stderr.write(`[${i.id}] ${i.state}${i.lastError && i.state !== 'ready' && i.state !== 'failed' ? `: ${i.lastError}` : ''}\n`);
        seen.set(i.id, i.state);
      }
      const failed = m.instances.find((i) => i.state === 'failed');
      // Stopped meanwhile (`slotwise down`, or unloaded for another model): nothing more will come.
      if (m.replicas === 0) {
        const why = m.load?.reason === 'evicted' ? ' to make room for another model' : m.load?.reason === 'no-memory' || m.load?.reason === 'failed' ? `: ${m.load.error?.message ?? m.load.reason}` : '';
        finish(new SlotwiseError('SW_ERR_NO_INSTANCE', `[${model}] was stopped before it was ready${why} — \`slotwise up ${model}\` to start it again`));
      } else if (failed) finish(new SlotwiseError('SW_ERR_INSTANCE_FAILED', `[${failed.id}] failed: ${failed.lastError ?? 'see logs'}`));
      else if (m.instances.length > 0 && m.instances.every((i) => i.state === 'ready')) finish(undefined, m);
    };
    const off = client.on('status', ({ snapshot }) => check(snapshot.models));
    const finish = (err: Error | undefined, m?: ModelStatus): void => {
      clearTimeout(timer);
      off();
      if (err) reject(err);
      else resolve(m!);
    };
    client.call('status.subscribe').then((s) => check(s.models), reject);
  });
}

export const upCommand: Command = {
  summary: 'start a configured model and wait until its slots are ready',
  args: 'MODEL',
  maxArgs: 1,
  help: [
    'slotwise up MODEL [--no-wait] [--timeout SECONDS]',
    '',
    'Starts the model\'s instances and waits until every one is ready, printing each state change.',
    '  --no-wait           return once the start is asked for',
    '  --timeout SECONDS   how long to wait for ready (default 600)',
  ].join('\n'),
  options: { 'no-wait': { type: 'boolean' }, timeout: { type: 'string' } },
  async run(ctx) {
    const model = modelArg(ctx, 'up');
    const timeoutS = ctx.values.timeout === undefined ? 600 : numberValue('--timeout', ctx.values.timeout as string, 1, 86_400);
    return withDaemon(ctx.stateDir, async (client) => {
      await client.call('models.start', { model });
      if (ctx.values['no-wait']) return 0;
      const m = await waitReady(client, model, ctx, timeoutS * 1000);
      const slots = modelSlots(m).total;
      ctx.stdout.write(`${model}: ${m.instances.length} instance(s) ready, ${slots} slots\n`);
      return 0;
    });
  },
};

export const downCommand: Command = {
  summary: 'stop every instance of a model',
  args: 'MODEL',
  maxArgs: 1,
  async run(ctx) {
    const model = modelArg(ctx, 'down');
    return withDaemon(ctx.stateDir, async (client) => {
      await client.call('models.stop', { model });
      ctx.stdout.write(`${model}: stopped\n`);
      return 0;
    });
  },
};

export const restartCommand: Command = {
  summary: 'restart every instance of a model',
  args: 'MODEL',
  maxArgs: 1,
  async run(ctx) {
    const model = modelArg(ctx, 'restart');
    return withDaemon(ctx.stateDir, async (client) => {
      await client.call('models.restart', { model });
      await waitReady(client, model, ctx, 600_000);
      ctx.stdout.write(`${model}: restarted\n`);
      return 0;
    });
  },
};

export const logsCommand: Command = {
  summary: 'print the last lines of a model\'s llama-server output',
  args: '[MODEL|INSTANCE]',
  maxArgs: 1,
  help: [
    `slotwise logs [MODEL|INSTANCE] [-n N]`,
    '',
    'The last lines of llama-server\'s output: of one instance (coder#1), of a model\'s instances or of all.',
    'With no daemon running, they are read from the log files in the state dir.',
    `  -n, --lines N   how many lines, 1 to ${LOGS_TAIL_MAX_LINES} (default 100)`,
  ].join('\n'),
  options: { lines: { type: 'string', short: 'n' } },
  async run(ctx) {
    const target = ctx.positionals[0];
    const lines = ctx.values.lines === undefined ? 100 : intValue('-n', ctx.values.lines as string, 1, LOGS_TAIL_MAX_LINES);
    const fromDaemon = await withDaemon(ctx.stateDir, async (client) => {
      const params = target?.includes('#') ? { instance: target, lines } : { model: target, lines };
      return (await client.call('logs.tail', params)).lines;
    }).catch((err: unknown) => {
      if (toSlotwiseError(err).code === 'SW_ERR_DAEMON_UNREACHABLE') return undefined;
      throw err;
    });
    if (fromDaemon) {
      for (const line of fromDaemon) ctx.stdout.write(`${line}\n`);
      // Nothing at all would read as a silent failure: say why (stderr, so a pipe of the log gets only the log).
      if (fromDaemon.length === 0) ctx.stderr.write(`no llama-server output yet${target ? ` for ${target}` : ''}: it has not run since this state dir was made — start it with \`slotwise up${target ? ` ${target.split('#')[0]}` : ' MODEL'}\`\n`);
      return 0;
    }
    // No daemon: the files it left. A model that failed and took the daemon down is the case this is for.
    const dir = stateDirPaths(ctx.stateDir);
    const files = await tailLogFiles(dir, target, lines);
    if (files.files.length === 0) {
      ctx.stderr.write(`no daemon running, and no llama-server log${target ? ` for ${target}` : ''} in ${dir.logs} — start one with \`slotwise start\`\n`);
      return 1;
    }
    ctx.stderr.write(`no daemon running: from ${files.files.length === 1 ? files.files[0] : `${files.files.length} files in ${dir.logs}`}\n`);
    for (const line of files.lines) ctx.stdout.write(`${line}\n`);
    return 0;
  },
};
