// Paths written in the config: `~` is the home folder, relative paths start at the config file's folder.
import { resolve } from 'node:path';
import { expandHome } from '../../shared/paths';

export function resolvePath(value: string, baseDir: string): string {
  return resolve(baseDir, expandHome(value));
}
