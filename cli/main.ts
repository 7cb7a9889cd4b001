// `slotwise` — thin: parse arguments, call a command, print. Exit codes: 0 ok, 1 failure, 2 bad usage/config.
import type { ParseArgsConfig } from 'node:util';
import { version } from '../package.json';
import { SlotwiseError, quote, toSlotwiseError } from '../shared/errors';
import { reportInternalError } from '../platform/internal-errors';
import { resolveStateDir } from '../shared/paths';
import { COMMANDS, type Command, type CommandContext } from './commands/index';
import { intValue, parseOptions } from './args';

const GLOBAL_OPTIONS = {
  'state-dir': { type: 'string' },
  config: { type: 'string' },
  port: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  verbose: { type: 'boolean', short: 'v' },
} as const satisfies ParseArgsConfig['options'];

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length + (COMMANDS[n]!.args?.length ?? 0)));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${`${name} ${c.args ?? ''}`.padEnd(width + 3)}${c.summary}`);
  return [
    `slotwise ${version} — run llama.cpp servers with visible slots, a fair queue and a capacity verdict`,
    '',
    'Usage: slotwise [options] <command> [options]',
    '',
    'Commands:',
    ...lines,
    '',
    'Options for every command:',
    '  --state-dir DIR   daemon state (default $SLOTWISE_STATE_DIR or ~/.local/state/slotwise)',
    '  --config FILE     config file (default $SLOTWISE_CONFIG or ~/.config/slotwise/config.json)',
    '  --port N          daemon port, 0 = any free port (default from config, 7373)',
    '  -v, --verbose     show error detail',
    '  -h, --help        help for a command: slotwise <command> --help',
  ].join('\n');
}

/**
 * The command and its arguments, with the options for every command that came before the command
 * (`slotwise --state-dir D status`, as `git -C` or `docker --config` take them) moved after it.
 * Stops at the first word that is not one of them: `--help` or `--version` first, or anything unknown,
 * is left for main to answer.
 */
export function commandLine(argv: readonly string[]): { name: string | undefined; rest: string[] } {
  const leading: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const word = argv[i]!;
    const flag = /^--([a-z-]+)(=.*)?$/.exec(word);
    const option = flag ? GLOBAL_OPTIONS[flag[1] as keyof typeof GLOBAL_OPTIONS] : Object.values(GLOBAL_OPTIONS).find((o) => 'short' in o && `-${o.short}` === word);
    if (!option || option === GLOBAL_OPTIONS.help) break;
    const takesValue = option.type === 'string' && !flag?.[2];
    // A value missing at the end stays with its option, so parseArgs names it.
    leading.push(...argv.slice(i, takesValue ? i + 2 : i + 1));
    i += takesValue ? 2 : 1;
  }
  const [name, ...rest] = argv.slice(i);
  return { name, rest: [...rest, ...leading] };
}

/** `slotwise <name> --help`, and `slotwise help <name>`. */
function commandHelp(name: string, command: Command): string {
  return command.help ?? `${`slotwise ${name} ${command.args ?? ''}`.trimEnd()}\n\n${command.summary}`;
}

/** The command of that name; not one of Object's own properties (`slotwise constructor`). */
function commandNamed(name: string | undefined): Command | undefined {
  return name !== undefined && Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

export async function main(argv: string[]): Promise<number> {
  const { name, rest } = commandLine(argv);
  // `slotwise help status`: as `slotwise status --help`.
  if (name === 'help' && rest[0] !== undefined && !rest[0].startsWith('-')) return main([rest[0], '--help', ...rest.slice(1)]);
  if ((!name && !rest.length) || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const command = commandNamed(name);
  const verbose = rest.includes('--verbose') || rest.includes('-v');
  try {
    if (name === undefined) throw new SlotwiseError('SW_ERR_USAGE', `no command after "${rest.join(' ')}" — run \`slotwise --help\` for the list`);
    if (name.startsWith('-')) throw new SlotwiseError('SW_ERR_USAGE', `unknown option "${name}" before the command — the options for every command are ${everyCommandOptions()}`);
    if (!command) throw new SlotwiseError('SW_ERR_USAGE', `unknown command "${name}" — run \`slotwise --help\` for the list`);
    const parsed = parseOptions(name, { ...GLOBAL_OPTIONS, ...command.options }, rest);
    const values = parsed.values;
    if (values.help) {
      process.stdout.write(`${commandHelp(name, command)}\n`);
      return 0;
    }
    // Every command says how many arguments it takes: more are a mistake, never silently dropped.
    const maxArgs = command.maxArgs ?? (command.args ? Number.POSITIVE_INFINITY : 0);
    if (parsed.positionals.length > maxArgs) {
      const takes = maxArgs === 0 ? `"${name}" takes no arguments` : `usage: slotwise ${name} ${command.args}`;
      throw new SlotwiseError('SW_ERR_USAGE', `unexpected argument ${quote(parsed.positionals[maxArgs]!)} — ${takes}; see \`slotwise ${name} --help\``);
    }
    const port = values.port === undefined ? undefined : intValue('--port', values.port as string, 0, 65535);
    const ctx: CommandContext = {
      values,
      positionals: parsed.positionals,
      env: process.env,
      stateDir: resolveStateDir(values['state-dir'] as string | undefined, process.env),
      configPath: (values.config as string | undefined) ?? process.env.SLOTWISE_CONFIG,
      port,
      stdout: process.stdout,
      stderr: process.stderr,
      verbose,
    };
    return (await command.run(ctx)) ?? 0;
  } catch (err) {
    const e = toSlotwiseError(err);
    process.stderr.write(`slotwise: ${e.message}\n`);
    if (verbose && e.detail) process.stderr.write(`${e.detail}\n`);
    else if (e.detail) process.stderr.write('(run again with --verbose for detail)\n');
    return e.exitCode;
  }
}

/** `--state-dir, --config, --port and --verbose`: GLOBAL_OPTIONS but --help, for an error line. */
function everyCommandOptions(): string {
  const names = Object.keys(GLOBAL_OPTIONS).filter((n) => n !== 'help').map((n) => `--${n}`);
  return `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/**
 * Last resort: never a stack trace to a user. A short-lived command exits with one line; the daemon
 * (which must not die for one bad request) keeps running, and main.ts logs the detail to daemon.log.
 */
function installLastResort(longRunning: boolean): void {
  const onError = (err: unknown): void => {
    const e = toSlotwiseError(err);
    if (longRunning && reportInternalError(e)) return;
    process.stderr.write(`slotwise: ${e.message}\n`);
    if (process.argv.includes('--verbose') && e.detail) process.stderr.write(`${e.detail}\n`);
    process.exit(1);
  };
  process.on('unhandledRejection', onError);
  process.on('uncaughtException', onError);
}

/**
 * `slotwise jobs | head`, `status --watch | head -3`: the reader left. Exit quietly with SIGPIPE's
 * status, as a Unix tool does, instead of an internal error line. A command with a listener of its
 * own (`prompt`, which cancels its job first) handles it; the daemon's foreground log is not a place
 * to die of a closed pipe, so this is for short-lived commands only.
 */
function exitOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (process.stdout.listenerCount('error') === 1) process.exit(141);
  });
}

if (require.main === module) {
  const longRunning = ['daemon', 'demo'].includes(commandLine(process.argv.slice(2)).name ?? '');
  installLastResort(longRunning);
  if (!longRunning) exitOnClosedStdout();
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`slotwise: ${toSlotwiseError(err).message}\n`);
      process.exitCode = 1;
    },
  );
}
