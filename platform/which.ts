// Executable lookup on a given PATH, so callers (and tests) control the environment searched.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { errnoCode } from './errno';

/** Why a path cannot be run; undefined when it is an executable regular file. */
export async function executableProblem(path: string): Promise<'does not exist' | 'is not a file' | 'is not executable' | undefined> {
  try {
    if (!(await stat(path)).isFile()) return 'is not a file';
  } catch (err) {
    // ENOENT, ENOTDIR, ELOOP (dangling link): there is nothing to run there.
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENAMETOOLONG') return 'does not exist';
    if (code === 'EACCES') return 'is not executable'; // a parent dir we may not search
    throw err;
  }
  try {
    await access(path, constants.X_OK);
    return undefined;
  } catch (err) {
    // EACCES: the file is there but lacks the execute bit for us.
    if (errnoCode(err) === 'EACCES') return 'is not executable';
    throw err;
  }
}

/**
 * The first executable named `name` on `env.PATH`, or undefined. Empty and relative PATH entries are
 * skipped; a name with a slash is checked as a path, as a shell does.
 */
export async function which(name: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  if (name.includes('/')) return (await executableProblem(name)) === undefined ? name : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    // An empty entry means "the current directory" to a shell: never resolve tools from wherever we happen to run.
    if (!dir || !isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    if ((await executableProblem(candidate)) === undefined) return candidate;
  }
  return undefined;
}
