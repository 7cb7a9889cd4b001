// Paths written in the config: `~` is the home folder, relative paths start at the config file's folder.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function resolvePath(value: string, baseDir: string): string {
  return resolve(baseDir, expandHome(value, homedir()));
}

export function expandHome(value: string, home: string): string {
  return value === '~' ? home : value.startsWith('~/') ? join(home, value.slice(2)) : value;
}
