// How a config problem reaches the user: one SW_ERR_CONFIG line, prefixed with the config's file name.
import { basename } from 'node:path';
import { SlotwiseError, oneLine } from '../../shared/errors';

export interface Ctx {
  /** File name used as the message prefix (`config.json`). */
  label: string;
  /** Folder that relative paths are resolved against: the config file's folder. */
  baseDir: string;
}

export function fail(ctx: Ctx, message: string, cause?: unknown): never {
  // Messages echo keys and values from the file, which may hold newlines: escape them to keep one line.
  throw new SlotwiseError('SW_ERR_CONFIG', oneLine(`${ctx.label}: ${message}`), { cause });
}

/** The message prefix: the file's name, or `config` when the config did not come from a file. */
export function labelOf(source: string | undefined): string {
  return source === undefined ? 'config' : basename(source);
}

/** `listen` + `port` → `listen.port`; the top level has the empty prefix. */
export function joinKey(prefix: string, key: string): string {
  return prefix ? `${prefix}.${key}` : key;
}
