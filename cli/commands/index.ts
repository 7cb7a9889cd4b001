// The command table: name → command. Order is the order of `slotwise --help`.
import type { Command } from './command';
import { daemonCommand, startCommand, stopCommand } from './lifecycle';
import { downCommand, logsCommand, restartCommand, upCommand } from './models';
import { statusCommand } from './status';
import { attachCommand, cancelCommand, jobsCommand, promptCommand } from './prompt';
import { benchCommand } from './bench';
import { demoCommand } from './demo';
import { doctorCommand, setupCommand, tinyModelCommand } from './tools';
import { planCommand } from './plan';
import { envCommand } from './env';

export type { Command, CommandContext } from './command';

export const COMMANDS: Record<string, Command> = {
  demo: demoCommand,
  daemon: daemonCommand,
  start: startCommand,
  stop: stopCommand,
  status: statusCommand,
  up: upCommand,
  down: downCommand,
  restart: restartCommand,
  logs: logsCommand,
  prompt: promptCommand,
  jobs: jobsCommand,
  attach: attachCommand,
  cancel: cancelCommand,
  env: envCommand,
  bench: benchCommand,
  plan: planCommand,
  setup: setupCommand,
  'tiny-model': tinyModelCommand,
  doctor: doctorCommand,
};
