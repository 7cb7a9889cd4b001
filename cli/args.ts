// Reading the command line: its options and their values, one usage error (exit 2) per mistake,
// naming the option as typed and the command, in our words rather than util.parseArgs's.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SlotwiseError } from '../shared/errors';

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * `args` read against `options` (those of the command `command`, and of every command). As strict as
 * util.parseArgs's strict mode, with these differences: a negative number is an option's value
 * (`--port -1`, `-n -5`: the command range-checks it), not an ambiguity; an empty value is an error,
 * never the default.
 */
export function parseOptions(command: string, options: NonNullable<ParseArgsConfig['options']>, args: string[]): ParsedArgs {
  const { values, positionals, tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  const usage = (message: string): SlotwiseError => new SlotwiseError('SW_ERR_USAGE', `${message} — see \`slotwise ${command} --help\``);
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    const typed = token.rawName;
    if (!option) throw usage(`unknown option ${typed} for "${command}"`);
    if (option.type === 'boolean') {
      if (token.value !== undefined) throw usage(`${typed} takes no value, got ${typed}=${token.value}`);
      continue;
    }
    if (token.value === undefined) throw usage(`${typed} needs a value`);
    // Would mean "the default" further on (`--state-dir ""`: the default state dir).
    if (token.value === '') throw usage(`${typed} needs a value, got an empty one`);
    // `--config -v`: the value was forgotten. A negative number is a value (range-checked by the command).
    if (!token.inlineValue && token.value.startsWith('-') && !/^-(\d|\.\d)/.test(token.value)) {
      throw usage(`${typed} needs a value, got the option ${token.value} (for a value that starts with "-", write ${typed}=${token.value})`);
    }
  }
  return { values: values as ParsedArgs['values'], positionals };
}

/**
 * A whole number given in plain decimal (`-5` included), from min to max: `0x1EEF`, `1e3`, `1.0` and
 * an empty value are not numbers here, as they are to Number().
 */
export function intValue(option: string, raw: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new SlotwiseError('SW_ERR_USAGE', `${option} needs ${range('an integer', min, max)}, got ${shown(raw)}`);
  return n;
}

/** A decimal number (`0.7`, `-1`, `.5`), from min to max; no hex, exponent or blank. */
export function numberValue(option: string, raw: string, min: number, max: number): number {
  const n = /^-?(\d+\.?\d*|\.\d+)$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max) throw new SlotwiseError('SW_ERR_USAGE', `${option} needs ${range('a number', min, max)}, got ${shown(raw)}`);
  return n;
}

function range(kind: string, min: number, max: number): string {
  return max === Number.MAX_SAFE_INTEGER ? `${kind} of at least ${min}` : `${kind} from ${min} to ${max}`;
}

/** The value as typed: bare when it is a plain word or number, else quoted (so an empty one shows). */
function shown(raw: string): string {
  return /^[\w.+-]+$/.test(raw) ? raw : JSON.stringify(raw);
}
