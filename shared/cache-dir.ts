// Where Slotwise keeps things that can be rebuilt (the llama-server build, downloads): docs/architecture.md#files-on-disk.
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/** `$SLOTWISE_CACHE_DIR`, else `$XDG_CACHE_HOME/slotwise`, else `~/.cache/slotwise`. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SLOTWISE_CACHE_DIR) return resolve(env.SLOTWISE_CACHE_DIR);
  // The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
  if (env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME)) return join(env.XDG_CACHE_HOME, 'slotwise');
  return join(env.HOME || homedir(), '.cache', 'slotwise');
}
