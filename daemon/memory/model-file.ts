// What the daemon takes from a model's GGUF header, read once per version of the file. Status info
// (supervisor), the memory plan (loader, auto-slots preview) and every instance launch need it, and a
// real vocab costs the event loop 50-90 ms of CPU per read (Qwen2's 151k token strings, on 2 cores),
// which every launch of every replica paid again. Kept: what was derived, not the header itself.
import { stat } from 'node:fs/promises';
import { fimTokens } from '../../gguf/fim';
import { readGgufHeader, summarizeGguf, type GgufHeader, type GgufSummary } from '../../gguf/gguf';
import { readModelHeader } from '../../gguf/split';
import { modelFacts, type ModelFacts } from './model-facts';
import { projectorFacts, type ProjectorFacts } from './projector';

export interface ModelFile {
  fileBytes: number;
  /** An Error where the header is valid GGUF but not a model's (a vocab-only file has no architecture). */
  summary: GgufSummary | Error;
  /** An Error where the plan cannot be made from it (an unknown tensor type, say). */
  facts: ModelFacts | Error;
  /** The vocab has fill-in-the-middle tokens (/infill works). */
  canInfill: boolean;
}

export type ModelFileRead = (path: string, opts?: { model?: string }) => Promise<ModelFile>;

/**
 * A reader that keeps each file's result until the file changes (size, mtime or inode), so a model
 * swapped on disk is read again. Concurrent reads of one file share one. Failures are not kept: the
 * next call reads again and reports the file as it is then.
 */
export function cachedModelFileRead(read: typeof readModelHeader = readModelHeader): ModelFileRead {
  return cachedByVersion((path, opts: { model?: string } = {}) => read(path, opts).then(derive));
}

/** `read` with its result kept per path until the file's size, mtime or inode change (see cachedModelFileRead). */
function cachedByVersion<T, O>(read: (path: string, opts?: O) => Promise<T>): (path: string, opts?: O) => Promise<T> {
  const cache = new Map<string, { version: string; file: Promise<T> }>();
  return async (path, opts) => {
    const version = await stat(path).then(
      (s) => `${s.size}:${s.mtimeMs}:${s.ino}`,
      () => undefined, // the reader says what is wrong with the path, with the model's name
    );
    const hit = version === undefined ? undefined : cache.get(path);
    if (hit && hit.version === version) return hit.file;
    const file = read(path, opts);
    if (version !== undefined) {
      cache.set(path, { version, file });
      file.catch(() => {
        if (cache.get(path)?.file === file) cache.delete(path);
      });
    }
    return file;
  };
}

function derive(header: GgufHeader): ModelFile {
  return {
    fileBytes: header.fileSize,
    summary: attempt(() => summarizeGguf(header)),
    facts: attempt(() => modelFacts(header)),
    canInfill: fimTokens(header.metadata) !== undefined,
  };
}

function attempt<T>(fn: () => T): T | Error {
  try {
    return fn();
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/** The daemon's one reader. */
export const readModelFile: ModelFileRead = cachedModelFileRead();

/** A projector file's facts (projector.ts), kept until the file changes; fails with the reason, naming the file. */
export const readProjectorFile: (path: string) => Promise<ProjectorFacts> = cachedByVersion(async (path: string) => projectorFacts(await readGgufHeader(path), path));

/**
 * The plan's facts of a model file, with its projector's (`mmproj`) and its draft model's where it has
 * them, or null when a file cannot be read or planned from (the plan is then unknown, not an error).
 */
export async function readModelFacts(path: string, opts: { model?: string; mmproj?: string; draft?: string } = {}): Promise<ModelFacts | null> {
  try {
    const facts = (await readModelFile(path, { model: opts.model })).facts;
    if (facts instanceof Error) return null;
    const draft = opts.draft === undefined ? undefined : (await readModelFile(opts.draft, { model: opts.model })).facts;
    if (draft instanceof Error) return null;
    return {
      ...facts,
      ...(opts.mmproj !== undefined ? { projector: await readProjectorFile(opts.mmproj) } : {}),
      ...(draft ? { draft } : {}),
    };
  } catch {
    return null;
  }
}
