// The config file: where it is, reading it, and its text → validated Config. Read errors and JSON
// syntax errors become one SW_ERR_CONFIG line with the path or `file:line:column`.
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { SlotwiseError, firstLine, oneLine } from '../../shared/errors';
import { errnoCode } from '../../platform/errno';
import { JsonTextError, lineCol, scanJson, type JsonScan } from './json-scan';
import { resolveConfigPath } from '../../shared/paths';
import { labelOf } from './report';
import type { Config } from './types';
import { defaultConfig, parseValue, type ParseOptions } from './validate';

/** Reads, parses and validates the config file; a missing default file gives defaults when `allowMissing`. */
export async function loadConfig(opts: {
  path?: string;
  env: NodeJS.ProcessEnv;
  checkFiles?: boolean;
  allowMissing?: boolean;
}): Promise<Config> {
  // A path the user named ($SLOTWISE_CONFIG included) must exist; only the implicit default may be absent.
  const named = opts.path || opts.env.SLOTWISE_CONFIG || undefined;
  const file = resolveConfigPath(opts.path, opts.env);
  let body: string;
  try {
    body = await readFile(file, 'utf8');
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' && named === undefined && opts.allowMissing) return defaultConfig();
    const reason = firstLine(err instanceof Error ? err.message : String(err));
    const message =
      code === 'EISDIR'
        ? `config path is a directory: ${file} — point it at a .json file`
        : code !== 'ENOENT'
          ? `cannot read config file ${file}: ${reason} — check its permissions`
          : named === undefined
            ? `config file not found: ${file} — create it or pass --config FILE`
            : `config file not found: ${file} — fix the path or create the file`;
    throw new SlotwiseError('SW_ERR_CONFIG', message, { cause: err });
  }
  return parseText(body, { baseDir: dirname(file), source: file, checkFiles: opts.checkFiles });
}

/** Config text → Config: syntax and duplicate keys first (with line:column), then validate.ts. */
function parseText(body: string, opts: ParseOptions): Config {
  const json = body.replace(/^\uFEFF/, ''); // editors on Windows add a BOM; JSON.parse rejects it
  const label = labelOf(opts.source);
  let scan: JsonScan;
  try {
    scan = scanJson(json);
  } catch (err) {
    if (!(err instanceof JsonTextError)) throw err;
    throw new SlotwiseError('SW_ERR_CONFIG', oneLine(`${label}:${lineCol(json, err.at)}: invalid JSON: ${err.message}`)); // the message quotes the text, newlines included
  }
  const dup = scan.duplicate;
  if (dup) {
    const what =
      dup.path.length === 1 && dup.path[0] === 'models'
        ? `duplicate model name "${dup.key}" in models — rename or remove one of them`
        : `duplicate key "${[...dup.path, dup.key].join('.')}" — remove one of them (JSON keeps only the last)`;
    throw new SlotwiseError('SW_ERR_CONFIG', oneLine(`${label}:${lineCol(json, dup.at)}: ${what}`));
  }
  const raw: unknown = JSON.parse(json);
  return parseValue(raw, opts, scan.modelKeys);
}
