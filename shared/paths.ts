// Where Slotwise keeps things, one lookup each, shared by the daemon, the CLI and the extension:
// the state dir (daemon.json, token, pid files, logs), the cache (rebuildable: the llama-server
// build, downloads) and the config file.
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

type Env = NodeJS.ProcessEnv;

/** `~` and `~/x` under `$HOME` (else the OS home); any other path unchanged. */
export function expandHome(path: string, env: Env = process.env): string {
  return path === '~' || path.startsWith('~/') ? join(env.HOME || homedir(), path.slice(1)) : path;
}

/** `--state-dir`/`slotwise.stateDir`, else `$SLOTWISE_STATE_DIR`, else `$XDG_STATE_HOME/slotwise`, else `~/.local/state/slotwise`. */
export function resolveStateDir(explicit: string | undefined, env: Env): string {
  return named(explicit, env) ?? named(env.SLOTWISE_STATE_DIR, env) ?? join(xdgHome(env, 'XDG_STATE_HOME', '.local/state'), 'slotwise');
}

/** `$SLOTWISE_CACHE_DIR`, else `$XDG_CACHE_HOME/slotwise`, else `~/.cache/slotwise`. */
export function cacheDir(env: Env = process.env): string {
  return named(env.SLOTWISE_CACHE_DIR, env) ?? join(xdgHome(env, 'XDG_CACHE_HOME', '.cache'), 'slotwise');
}

/** `--config`/`slotwise.configPath`, else `$SLOTWISE_CONFIG`, else `$XDG_CONFIG_HOME/slotwise/config.json`, else `~/.config/slotwise/config.json`. */
export function resolveConfigPath(explicit: string | undefined, env: Env): string {
  return named(explicit, env) ?? named(env.SLOTWISE_CONFIG, env) ?? join(xdgHome(env, 'XDG_CONFIG_HOME', '.config'), 'slotwise', 'config.json');
}

/** A path the user named (flag, setting, SLOTWISE_* variable): `~` expanded, made absolute; undefined when empty. */
function named(path: string | undefined, env: Env): string | undefined {
  return path ? resolve(expandHome(path, env)) : undefined;
}

/** `$XDG_*_HOME` when absolute, else `~/<fallback>`: the XDG spec says a relative value is invalid and must be ignored. */
function xdgHome(env: Env, name: 'XDG_STATE_HOME' | 'XDG_CACHE_HOME' | 'XDG_CONFIG_HOME', fallback: string): string {
  const value = env[name];
  return value && isAbsolute(value) ? value : join(env.HOME || homedir(), fallback);
}
