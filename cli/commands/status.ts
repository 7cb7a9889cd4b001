// `slotwise status [--json] [--watch] [--slots]`: the snapshot as a table, JSON, or a live view.
import { connect } from '../locate';
import type { Snapshot } from '../../shared/protocol';
import { untilSignal, type Command } from './command';
import { renderStatus } from './render-status';

export const statusCommand: Command = {
  summary: 'show models, instances, slots, queue and the capacity verdict',
  help: [
    'slotwise status [--json] [--watch] [--slots]',
    '',
    '  --json    print the snapshot as JSON (shape: shared/protocol.ts Snapshot; stable)',
    '  --watch   redraw live on every change until Ctrl-C (with --json: one snapshot per line)',
    '  --slots   one line per slot',
  ].join('\n'),
  options: { json: { type: 'boolean' }, watch: { type: 'boolean' }, slots: { type: 'boolean' } },
  async run(ctx) {
    const client = await connect(ctx.stateDir);
    const json = ctx.values.json === true;
    const color = !json && ctx.stdout.isTTY === true && !ctx.env.NO_COLOR;
    const print = (s: Snapshot, live: boolean): void => {
      if (json) ctx.stdout.write(`${JSON.stringify(s, null, live ? undefined : 2)}\n`);
      else ctx.stdout.write(`${live && ctx.stdout.isTTY ? '\x1b[H\x1b[2J' : ''}${renderStatus(s, { color, slots: ctx.values.slots === true })}\n`);
    };
    try {
      if (!ctx.values.watch) {
        print(await client.call('status.get'), false);
        return 0;
      }
      client.on('status', ({ snapshot }) => print(snapshot, true));
      print(await client.call('status.subscribe'), true);
      const closed = new Promise<string>((resolve) => client.onClose(resolve));
      const outcome = await Promise.race([untilSignal(), closed]);
      return outcome === 'SIGINT' || outcome === 'SIGTERM' ? 0 : 1;
    } finally {
      client.close();
    }
  },
};
