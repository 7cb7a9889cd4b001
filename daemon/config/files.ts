// The files a config names must exist: a configured llama-server must be executable, model files readable.
import { accessSync, constants, statSync, type Stats } from 'node:fs';
import { errnoCode } from '../../platform/errno';
import { fail, type Ctx } from './report';
import type { Config } from './types';

interface FileProblems {
  missing: string;
  directory: string;
  denied: string;
}

export function checkFiles(ctx: Ctx, config: Config): void {
  for (const key of ['cert', 'key'] as const) {
    const file = config.listen.tls?.[key];
    if (file === undefined) continue;
    checkFile(ctx, `listen.tls.${key}`, file, constants.R_OK, {
      missing: `file not found: ${file} — fix the path or create it (e.g. with openssl req -x509)`,
      directory: `${file} is a directory — point it at the PEM file`,
      denied: `${file} is not readable — check its permissions`,
    });
  }
  if (config.llamaServer !== 'auto') {
    const file = config.llamaServer;
    checkFile(ctx, 'llamaServer', file, constants.X_OK, {
      missing: `llama-server not found: ${file} — fix the path or set it to "auto"`,
      directory: `${file} is a directory — point it at the llama-server binary (e.g. build/bin/llama-server)`,
      denied: `${file} is not executable — run chmod +x on it or set it to "auto"`,
    });
  }
  for (const m of config.models) {
    checkFile(ctx, `models.${m.name}.path`, m.path, constants.R_OK, {
      missing: `model file not found: ${m.path} — download a GGUF or fix the path`,
      directory: `${m.path} is a directory — point it at the .gguf file`,
      denied: `${m.path} is not readable — check its permissions`,
    });
    if (m.mmproj !== undefined) {
      checkFile(ctx, `models.${m.name}.mmproj`, m.mmproj, constants.R_OK, {
        missing: `projector file not found: ${m.mmproj} — download the mmproj-*.gguf published beside the model, or fix the path`,
        directory: `${m.mmproj} is a directory — point it at the mmproj .gguf file`,
        denied: `${m.mmproj} is not readable — check its permissions`,
      });
    }
    if (m.draft !== undefined) {
      checkFile(ctx, `models.${m.name}.draft`, m.draft, constants.R_OK, {
        missing: `draft model file not found: ${m.draft} — download a small model of the same family, or fix the path`,
        directory: `${m.draft} is a directory — point it at the draft model's .gguf file`,
        denied: `${m.draft} is not readable — check its permissions`,
      });
    }
  }
}

function checkFile(ctx: Ctx, key: string, file: string, mode: number, say: FileProblems): void {
  let stat: Stats | undefined;
  try {
    stat = statSync(file, { throwIfNoEntry: false });
  } catch (err) {
    // ENOTDIR: a parent of the path is a file, so the file is as missing as with ENOENT.
    if (errnoCode(err) !== 'ENOTDIR') fail(ctx, `${key}: ${say.denied}`, err);
  }
  if (!stat) fail(ctx, `${key}: ${say.missing}`);
  if (stat.isDirectory()) fail(ctx, `${key}: ${say.directory}`);
  try {
    accessSync(file, mode);
  } catch (err) {
    fail(ctx, `${key}: ${say.denied}`, err);
  }
}
