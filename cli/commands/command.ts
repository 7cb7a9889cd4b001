// The shape every CLI command has; cli/main.ts parses, commands run.
import type { ParseArgsConfig } from 'node:util';

export interface CommandContext {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
  env: NodeJS.ProcessEnv;
  stateDir: string;
  configPath: string | undefined;
  port: number | undefined;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  verbose: boolean;
}

export interface Command {
  summary: string;
  /** Positional arguments, for help text: `MODEL`, `[TEXT|-]`. */
  args?: string;
  /** The most positional arguments it takes, more being a usage error; default: none without `args`, any number with. */
  maxArgs?: number;
  help?: string;
  options?: ParseArgsConfig['options'];
  run(ctx: CommandContext): Promise<number | void>;
}

/** Resolves on SIGINT/SIGTERM (Ctrl-C); used by foreground commands. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
