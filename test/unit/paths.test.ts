import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cacheDir, expandHome, resolveConfigPath, resolveStateDir } from '../../shared/paths';

type Env = NodeJS.ProcessEnv;
const H = '/home/u';

describe('resolveStateDir', () => {
  it.each<[string, string | undefined, Env, string]>([
    ['explicit flag wins', '/x/state', { SLOTWISE_STATE_DIR: '/s', XDG_STATE_HOME: '/xdg', HOME: H }, '/x/state'],
    ['explicit flag with ~', '~/st', { SLOTWISE_STATE_DIR: '/s', HOME: H }, `${H}/st`],
    ['relative flag is made absolute', 'rel/st', { HOME: H }, resolve('rel/st')],
    ['empty flag is not set', '', { SLOTWISE_STATE_DIR: '/s', HOME: H }, '/s'],
    ['SLOTWISE_STATE_DIR', undefined, { SLOTWISE_STATE_DIR: '/s', XDG_STATE_HOME: '/xdg', HOME: H }, '/s'],
    ['SLOTWISE_STATE_DIR with ~', undefined, { SLOTWISE_STATE_DIR: '~/s', HOME: H }, `${H}/s`],
    ['absolute XDG_STATE_HOME', undefined, { XDG_STATE_HOME: '/xdg', HOME: H }, '/xdg/slotwise'],
    ['relative XDG_STATE_HOME ignored', undefined, { XDG_STATE_HOME: 'xdg', HOME: H }, `${H}/.local/state/slotwise`],
    ['HOME fallback', undefined, { HOME: H }, `${H}/.local/state/slotwise`],
    ['no HOME: the OS home', undefined, {}, `${homedir()}/.local/state/slotwise`],
  ])('%s', (_name, explicit, env, want) => {
    expect(resolveStateDir(explicit, env)).toBe(want);
  });
});

describe('cacheDir', () => {
  // No flag names the cache: the variable is the explicit choice.
  it.each<[string, Env, string]>([
    ['SLOTWISE_CACHE_DIR', { SLOTWISE_CACHE_DIR: '/x/cache', XDG_CACHE_HOME: '/xdg', HOME: H }, '/x/cache'],
    ['SLOTWISE_CACHE_DIR with ~', { SLOTWISE_CACHE_DIR: '~/c', HOME: H }, `${H}/c`],
    ['absolute XDG_CACHE_HOME', { XDG_CACHE_HOME: '/xdg', HOME: H }, '/xdg/slotwise'],
    ['relative XDG_CACHE_HOME ignored', { XDG_CACHE_HOME: 'relative/ignored', HOME: H }, `${H}/.cache/slotwise`],
    ['HOME fallback', { HOME: H }, `${H}/.cache/slotwise`],
  ])('%s', (_name, env, want) => {
    expect(cacheDir(env)).toBe(want);
  });
});

describe('resolveConfigPath', () => {
  it.each<[string, string | undefined, Env, string]>([
    ['explicit --config wins', '/x/c.json', { SLOTWISE_CONFIG: '/y/c.json', XDG_CONFIG_HOME: '/xdg', HOME: H }, '/x/c.json'],
    ['explicit with ~', '~/c.json', { HOME: H }, `${H}/c.json`],
    ['SLOTWISE_CONFIG', undefined, { SLOTWISE_CONFIG: '/y/c.json', XDG_CONFIG_HOME: '/xdg', HOME: H }, '/y/c.json'],
    ['SLOTWISE_CONFIG with ~', undefined, { SLOTWISE_CONFIG: '~/c.json', HOME: '/h' }, '/h/c.json'],
    ['empty SLOTWISE_CONFIG is not set', undefined, { SLOTWISE_CONFIG: '', XDG_CONFIG_HOME: '/xdg', HOME: H }, '/xdg/slotwise/config.json'],
    ['absolute XDG_CONFIG_HOME', undefined, { XDG_CONFIG_HOME: '/xdg', HOME: H }, '/xdg/slotwise/config.json'],
    ['relative XDG_CONFIG_HOME ignored', undefined, { XDG_CONFIG_HOME: 'relative', HOME: H }, `${H}/.config/slotwise/config.json`],
    ['HOME fallback', undefined, { HOME: H }, `${H}/.config/slotwise/config.json`],
  ])('%s', (_name, explicit, env, want) => {
    expect(resolveConfigPath(explicit, env)).toBe(want);
  });
});

describe('expandHome', () => {
  it.each<[string, string]>([
    ['~', H],
    ['~/m/a.gguf', `${H}/m/a.gguf`],
    ['~user/x', '~user/x'],
    ['/abs/~/x', '/abs/~/x'],
    ['rel', 'rel'],
  ])('%s → %s', (path, want) => {
    expect(expandHome(path, { HOME: H })).toBe(want);
  });
});
