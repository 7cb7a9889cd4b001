// The config file: types, defaults and validation. Everything is checked once, here, so the rest of
// the daemon can trust each field; every error is one line naming the file, the key and the fix.
// Phases: JSON text (syntax, duplicate keys) → shape and types with defaults → cross-field → files.
import { accessSync, constants, statSync, type Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { SlotwiseError, describeValue, firstLine } from '../../shared/errors';

/** `'auto'` leaves layer placement to llama-server (`--fit`); `'all'` or a count is passed as `-ngl`. */
export type GpuLayers = number | 'auto' | 'all';

/** One configured model; each replica is one llama-server process with `slots` parallel slots. */
export interface ModelConfig {
  /** The key in `models`: 1–64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit. */
  name: string;
  /** Absolute path of the GGUF file (`~` expanded, relative paths resolved against the config file's folder). */
  path: string;
  /** Parallel requests per replica (`-np`). Default 4, 1–256. */
  slots: number;
  /** Context tokens per slot; Slotwise passes `-c slots × ctxPerSlot`. Default 4096, >= 128. */
  ctxPerSlot: number;
  /** Default `'auto'`; a number is an integer >= 0 (0 = CPU only). */
  gpuLayers: GpuLayers;
  /** llama-server processes to run. Default 1; 0 = configured but not started. */
  replicas: number | 'auto';
  /** Most replicas this model may run. Default: `replicas` (at least 1) when a number, else 4. */
  maxReplicas: number;
  /** Start the replicas with the daemon. Default true. */
  autostart: boolean;
  /** Extra llama-server flags, passed as given after Slotwise's own. Default []. */
  args: string[];
  /**
   * llama-server's prompt cache in host RAM (`--cache-ram`), MiB; 0 = off. Default 32: llama-server's
   * own 8192 grew a soak to 522 MB, and its cost per request grows with the number of cached prompts
   * (10-min tiny-model soaks: 256 MiB ≈ 3,000 prompts fell from 1,402 to ~520 requests/min; 32 MiB
   * held ~2,400/min with a lower p99 than 0).
   */
  promptCacheMiB: number;
}

/** The validated config with every default applied. */
export interface Config {
  /** Where the daemon listens. Defaults: 127.0.0.1, port 7373 (0 = any free port), no extra browser origins. */
  listen: { host: string; port: number; allowedOrigins: string[] };
  /** `'auto'` (find or build llama-server) or an absolute path to the binary. Default `'auto'`. */
  llamaServer: string;
  /** Requests waiting for a free slot. Defaults: 256 waiting, 120000 ms each. */
  queue: { maxWaiting: number; timeoutMs: number };
  /** Largest accepted request body in bytes. Default 1 MiB. */
  limits: { maxBodyBytes: number };
  /** How a request picks a replica. Default `'slot-aware'` (fewest busy slots). */
  routing: 'slot-aware' | 'round-robin';
  /** Child process lifecycle, all in ms except maxCrashes. Defaults 600000, 10000, 1000, 60000, 300000, 5, 600000. */
  supervisor: {
    healthTimeoutMs: number;
    stopGraceMs: number;
    backoffInitialMs: number;
    backoffMaxMs: number;
    healthyResetMs: number;
    maxCrashes: number;
    crashWindowMs: number;
    /** A ready instance with requests in flight and no progress, or no /health answer, for this long is killed and restarted. */
    stallTimeoutMs: number;
  };
  /** GPU sampling period in ms. Default 1000. */
  gpu: { sampleIntervalMs: number };
  /** Scale-out of models with `replicas: "auto"`. Defaults: 30000 ms saturated to add, 300000 ms idle to remove, saturated = all slots busy and the oldest request waiting 2000 ms. */
  autoscale: { saturatedForMs: number; idleForMs: number; saturatedWaitMs: number };
  /** In the order of the file. */
  models: ModelConfig[];
  /** Absolute path the config was read from; undefined when defaults were used (no file). */
  source?: string;
}

interface ParseOptions {
  /** Folder that relative paths are resolved against: the config file's folder. */
  baseDir: string;
  source?: string;
  /** Check that model files and a configured llama-server exist. Default true. */
  checkFiles?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Rules: one generic checker driven by these tables instead of a branch per key.

interface Rule<T> {
  ok(value: unknown): value is T;
  /** What a valid value looks like (`an integer >= 1`); may depend on the bad value. */
  expected(value: unknown): string;
  /** For arrays: checked per element so the message names `key[i]`. */
  item?: Rule<unknown>;
}

interface Field<T> {
  rule: Rule<T>;
  def: T;
  /** The fix, appended after "—". */
  hint: string;
}

type Fields<T> = { [K in keyof T]-?: Field<T[K]> };

// setTimeout treats larger delays as 1 ms, so no duration may exceed it.
const MAX_TIMER_MS = 2_147_483_647;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const isInt = (v: unknown): v is number => Number.isInteger(v);
const list = (items: string[]): string =>
  items.length < 2 ? items.join('') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;

function int(min: number, max?: number): Rule<number> {
  return {
    ok: (v): v is number => isInt(v) && v >= min && (max === undefined || v <= max),
    // Name the bound that was crossed; for a non-integer, the whole range.
    expected: (v) => {
      if (isInt(v) && v > min) return `an integer <= ${max}`;
      return isInt(v) || max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    },
  };
}

function text(expected: string, pattern = /\S/): Rule<string> {
  return { ok: (v): v is string => typeof v === 'string' && pattern.test(v), expected: () => expected };
}

/** String literals or a number, e.g. `"auto", "all" or an integer >= 0`. */
function literalOr<T extends string>(literals: readonly T[], num: Rule<number>): Rule<T | number> {
  return {
    ok: (v): v is T | number => literals.includes(v as T) || num.ok(v),
    expected: (v) => list([...literals.map((l) => `"${l}"`), num.expected(typeof v === 'number' ? v : NaN)]),
  };
}

function arrayOf<T>(item: Rule<T>, expected: string): Rule<T[]> {
  return { ok: (v): v is T[] => Array.isArray(v) && v.every((x) => item.ok(x)), expected: () => expected, item };
}

const bool: Rule<boolean> = { ok: (v): v is boolean => typeof v === 'boolean', expected: () => 'true or false' };
const nonEmpty = text('a non-empty string');
const anyString = text('a string', /^/);
const ms = (min: number) => int(min, MAX_TIMER_MS);

const LISTEN: Fields<Config['listen']> = {
  host: {
    rule: text('a host name or IP address such as "127.0.0.1"', /^[^\s/]+$/),
    def: '127.0.0.1',
    hint: 'use "127.0.0.1" to accept local clients only',
  },
  port: { rule: int(0, 65535), def: 7373, hint: 'use a free port such as 7373, or 0 for any free port' },
  allowedOrigins: {
    rule: arrayOf(
      text('an origin such as "http://localhost:5173" (no path, no trailing slash)', /^[a-z][a-z0-9+.-]*:\/\/[^/\s]+$/i),
      'an array of origins',
    ),
    def: [],
    hint: 'list the browser origins that may call the daemon, or [] for none',
  },
};
const QUEUE: Fields<Config['queue']> = {
  maxWaiting: { rule: int(0), def: 256, hint: 'set how many requests may wait for a free slot (e.g. 256)' },
  timeoutMs: { rule: ms(1), def: 120_000, hint: 'set how long a request may wait, in milliseconds (e.g. 120000)' },
};
const LIMITS: Fields<Config['limits']> = {
  maxBodyBytes: { rule: int(1), def: 1_048_576, hint: 'set the largest request body in bytes (e.g. 1048576)' },
};
const SUPERVISOR: Fields<Config['supervisor']> = {
  healthTimeoutMs: { rule: ms(1), def: 600_000, hint: 'set how long a model may take to load, in milliseconds (e.g. 600000)' },
  stopGraceMs: { rule: ms(0), def: 10_000, hint: 'set the wait between SIGTERM and SIGKILL, in milliseconds (e.g. 10000)' },
  backoffInitialMs: { rule: ms(0), def: 1_000, hint: 'set the first restart delay after a crash, in milliseconds (e.g. 1000)' },
  backoffMaxMs: { rule: ms(0), def: 60_000, hint: 'set the longest restart delay, in milliseconds (e.g. 60000)' },
  healthyResetMs: { rule: ms(0), def: 300_000, hint: 'set the uptime after which the backoff resets, in milliseconds (e.g. 300000)' },
  maxCrashes: { rule: int(1), def: 5, hint: 'set how many crashes within crashWindowMs mark a model failed (e.g. 5)' },
  crashWindowMs: { rule: ms(1), def: 600_000, hint: 'set the window in which crashes are counted, in milliseconds (e.g. 600000)' },
  stallTimeoutMs: { rule: ms(100), def: 30_000, hint: 'set how long a llama-server may make no progress before it is restarted, in milliseconds (e.g. 30000)' },
};
const GPU: Fields<Config['gpu']> = {
  sampleIntervalMs: { rule: ms(100), def: 1_000, hint: 'set the GPU sampling period in milliseconds (e.g. 1000)' },
};
const TOP: Fields<Pick<Config, 'llamaServer' | 'routing'>> = {
  llamaServer: { rule: nonEmpty, def: 'auto', hint: 'use "auto" to find or build llama-server, or the path of a llama-server binary' },
  routing: {
    rule: { ok: (v): v is Config['routing'] => v === 'slot-aware' || v === 'round-robin', expected: () => '"slot-aware" or "round-robin"' },
    def: 'slot-aware',
    hint: 'use "slot-aware" (fewest busy slots first) or "round-robin"',
  },
};
const AUTOSCALE: Fields<Config['autoscale']> = {
  saturatedForMs: { rule: ms(1000), def: 30_000, hint: 'set how long a model must stay saturated before a replica is added, in ms (e.g. 30000)' },
  idleForMs: { rule: ms(1000), def: 300_000, hint: 'set how long an extra replica must stay idle before it is stopped, in ms (e.g. 300000)' },
  saturatedWaitMs: { rule: ms(0), def: 2_000, hint: 'set the queue wait at which an all-busy model counts as saturated, in ms (e.g. 2000)' },
};

/** See ModelConfig.promptCacheMiB. */
export const DEFAULT_PROMPT_CACHE_MIB = 32;

const MODEL: Fields<Pick<ModelConfig, 'slots' | 'ctxPerSlot' | 'gpuLayers' | 'replicas' | 'autostart' | 'args' | 'promptCacheMiB'>> = {
  slots: { rule: int(1, 256), def: 4, hint: 'set it to the number of parallel requests (e.g. 4)' },
  ctxPerSlot: { rule: int(128), def: 4096, hint: 'set it to the context length of one request in tokens (e.g. 4096)' },
  gpuLayers: {
    rule: literalOr(['auto', 'all'], int(0)),
    def: 'auto',
    hint: 'use "auto" to fit the GPU, "all", or a number of layers (0 = CPU only)',
  },
  replicas: {
    rule: literalOr(['auto'], int(0)),
    def: 1,
    hint: 'set how many llama-server processes to run (0 = configured but not started)',
  },
  autostart: { rule: bool, def: true, hint: 'use true to start the model with the daemon' },
  args: {
    rule: arrayOf(anyString, 'an array of strings'),
    def: [],
    hint: 'list extra llama-server flags as strings, e.g. ["--threads", "8"]',
  },
  promptCacheMiB: { rule: int(0), def: DEFAULT_PROMPT_CACHE_MIB, hint: "set the MiB of RAM for llama-server's prompt cache (e.g. 32), or 0 for none" },
};
const PATH_HINT = "set it to the model's .gguf file (absolute, ~/…, or relative to the config file)";
const MAX_REPLICAS: Field<number> = { rule: int(1), def: 4, hint: 'set the most replicas this model may run (e.g. 4)' };
const MODEL_KEYS = ['path', ...Object.keys(MODEL), 'maxReplicas'];
const TOP_KEYS = ['$schema', 'listen', 'llamaServer', 'queue', 'limits', 'routing', 'supervisor', 'gpu', 'autoscale', 'models'];

/** Old or llama-server names → the Slotwise key, relative to the object they appear in. */
const RENAMED: Record<string, string> = {
  parallel: 'slots',
  np: 'slots',
  ctx: 'ctxPerSlot',
  ctxSize: 'ctxPerSlot',
  contextSize: 'ctxPerSlot',
  ngl: 'gpuLayers',
  nGpuLayers: 'gpuLayers',
  model: 'path',
  modelPath: 'path',
  instances: 'replicas',
  host: 'listen.host',
  port: 'listen.port',
  allowedOrigins: 'listen.allowedOrigins',
  llamaServerPath: 'llamaServer',
};

/** Flags Slotwise sets itself (a second copy would fight it) → what to do instead. */
const OWNED_ARGS: Record<string, string> = Object.fromEntries(
  (
    [
      [['--port'], 'remove it (each replica gets a free port; clients use listen.port)'],
      [['--host'], 'remove it (replicas listen on 127.0.0.1; clients use listen.host)'],
      [['-m', '--model'], 'use {model}.path instead'],
      [['-np', '--parallel'], 'use {model}.slots instead'],
      [['-c', '--ctx-size'], 'use {model}.ctxPerSlot instead (Slotwise passes -c = slots × ctxPerSlot)'],
      [['-ngl', '--gpu-layers', '--n-gpu-layers'], 'use {model}.gpuLayers instead'],
      [['--api-key', '--api-key-file'], 'remove it (each replica gets a random key only the daemon knows; clients use the daemon token)'],
      [['--no-slots'], 'remove it (Slotwise reads /slots to count busy slots)'],
      [['-cram', '--cache-ram'], 'use {model}.promptCacheMiB instead'],
    ] as const
  ).flatMap(([flags, fix]) => flags.map((flag) => [flag, fix])),
);

/** llama-server flags that would open a replica (or the host's files) to more than the daemon. */
const UNSAFE_ARGS: Record<string, string> = Object.fromEntries(
  (
    [
      [['--path'], 'remove it (llama-server would serve that folder over HTTP)'],
      [['--reuse-port'], "remove it (another process could bind the replica's port and take its requests)"],
      [['--ssl-key-file', '--ssl-cert-file'], 'remove it (the daemon speaks plain HTTP to replicas on 127.0.0.1; put TLS in front of listen.port)'],
      [['--cors-origins', '--cors-methods', '--cors-headers', '--cors-credentials'], 'remove it (browsers reach models through the daemon; list origins in listen.allowedOrigins)'],
      [['--api-prefix'], "remove it (the daemon calls the replicas' standard paths)"],
      [
        ['--tools', '--tools-runtime', '--mcp-servers-config', '--mcp-servers-json', '-ag', '--agent', '--ui-mcp-proxy', '--webui-mcp-proxy'],
        'remove it (it lets requests read or write files, run commands or reach other hosts through llama-server)',
      ],
      [['--media-path', '--slot-save-path'], 'remove it (requests could read or write the files of that folder)'],
      [['--models-dir', '--models-preset'], 'remove it (Slotwise runs one model per llama-server; add models under "models")'],
    ] as const
  ).flatMap(([flags, fix]) => flags.map((flag) => [flag, fix])),
);

// ---------------------------------------------------------------------------------------------
// Public API

/** Where the config lives when `--config` is not given (DESIGN §3). */
export function defaultConfigPath(env: NodeJS.ProcessEnv): string {
  if (env.SLOTWISE_CONFIG) return resolve(expandHome(env.SLOTWISE_CONFIG, env.HOME || homedir()));
  // The XDG spec says relative values are invalid and must be ignored.
  const xdg = env.XDG_CONFIG_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(env.HOME || homedir(), '.config'), 'slotwise', 'config.json');
}

/** Every default, no models: what the daemon runs with when there is no config file. */
export function defaultConfig(): Config {
  return parseConfig({}, { baseDir: '/', checkFiles: false });
}

/** Validates an already-parsed config object; throws SW_ERR_CONFIG naming the first problem. */
export function parseConfig(raw: unknown, opts: ParseOptions): Config {
  return parseValue(raw, opts, undefined);
}

/** Reads, parses and validates the config file; a missing default file gives defaults when `allowMissing`. */
export async function loadConfig(opts: {
  path?: string;
  env: NodeJS.ProcessEnv;
  checkFiles?: boolean;
  allowMissing?: boolean;
}): Promise<Config> {
  // A path the user named ($SLOTWISE_CONFIG included) must exist; only the implicit default may be absent.
  const named = opts.path ?? (opts.env.SLOTWISE_CONFIG || undefined);
  const file = named === undefined ? defaultConfigPath(opts.env) : resolve(expandHome(named, opts.env.HOME || homedir()));
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

// ---------------------------------------------------------------------------------------------
// Parsing

interface Ctx {
  /** File name used as the message prefix (`config.json`). */
  label: string;
  baseDir: string;
}

function fail(ctx: Ctx, message: string, cause?: unknown): never {
  throw new SlotwiseError('SW_ERR_CONFIG', `${ctx.label}: ${message}`, { cause });
}

function labelOf(source: string | undefined): string {
  return source === undefined ? 'config' : basename(source);
}

function parseText(body: string, opts: ParseOptions): Config {
  const json = body.replace(/^\uFEFF/, ''); // editors on Windows add a BOM; JSON.parse rejects it
  const label = labelOf(opts.source);
  let scan: JsonScan;
  try {
    scan = scanJson(json);
  } catch (err) {
    if (!(err instanceof JsonTextError)) throw err;
    throw new SlotwiseError('SW_ERR_CONFIG', `${label}:${lineCol(json, err.at)}: invalid JSON: ${err.message}`);
  }
  const dup = scan.duplicate;
  if (dup) {
    const what =
      dup.path.length === 1 && dup.path[0] === 'models'
        ? `duplicate model name "${dup.key}" in models — rename or remove one of them`
        : `duplicate key "${[...dup.path, dup.key].join('.')}" — remove one of them (JSON keeps only the last)`;
    throw new SlotwiseError('SW_ERR_CONFIG', `${label}:${lineCol(json, dup.at)}: ${what}`);
  }
  const raw: unknown = JSON.parse(json);
  return parseValue(raw, opts, scan.modelKeys);
}

/** `modelOrder`: model names in file order, when known from the text (JS objects list integer-like keys first). */
function parseValue(raw: unknown, opts: ParseOptions, modelOrder: string[] | undefined): Config {
  const ctx: Ctx = { label: labelOf(opts.source), baseDir: opts.baseDir };
  if (!isObject(raw)) fail(ctx, `the config must be a JSON object, got ${describeValue(raw)} — write { "models": { … } }`);
  rejectUnknown(ctx, '', raw, TOP_KEYS);
  // Editors read "$schema" for completion; Slotwise only checks that it is a string.
  readField(ctx, '', raw, '$schema', { rule: anyString, def: '', hint: 'set it to the schema path or URL, or remove it' });
  const top = readFields(ctx, '', raw, TOP);
  const config: Config = {
    listen: readSection(ctx, 'listen', raw, LISTEN),
    llamaServer: top.llamaServer === 'auto' ? 'auto' : resolvePath(top.llamaServer, ctx.baseDir),
    queue: readSection(ctx, 'queue', raw, QUEUE),
    limits: readSection(ctx, 'limits', raw, LIMITS),
    routing: top.routing,
    supervisor: readSection(ctx, 'supervisor', raw, SUPERVISOR),
    gpu: readSection(ctx, 'gpu', raw, GPU),
    autoscale: readSection(ctx, 'autoscale', raw, AUTOSCALE),
    models: readModels(ctx, own(raw, 'models'), modelOrder),
  };
  const sup = config.supervisor;
  if (sup.backoffMaxMs < sup.backoffInitialMs) {
    const fix = 'raise backoffMaxMs or lower backoffInitialMs';
    fail(ctx, `supervisor.backoffMaxMs must be >= supervisor.backoffInitialMs (${sup.backoffInitialMs}), got ${sup.backoffMaxMs} — ${fix}`);
  }
  if (opts.checkFiles ?? true) checkFiles(ctx, config);
  if (opts.source !== undefined) config.source = resolve(opts.source);
  return config;
}

function readModels(ctx: Ctx, raw: unknown, order: string[] | undefined): ModelConfig[] {
  if (raw === undefined) return [];
  if (!isObject(raw)) {
    const fix = 'write { "coder": { "path": "~/models/coder.gguf" } }';
    fail(ctx, `models must be an object keyed by model name, got ${describeValue(raw)} — ${fix}`);
  }
  const seen = new Map<string, string>(); // lower-case name → name as written
  return (order ?? Object.keys(raw)).map((name) => {
    if (!NAME_RE.test(name)) {
      const fix = 'use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit';
      fail(ctx, `model name ${JSON.stringify(name)} in models is invalid — ${fix}`);
    }
    const prev = seen.get(name.toLowerCase());
    // Names reach URLs, file names and the `model` field of requests; differing only by case invites mix-ups.
    if (prev !== undefined) {
      fail(ctx, `duplicate model name "${name}" in models (same as "${prev}" ignoring case) — rename one of them`);
    }
    seen.set(name.toLowerCase(), name);
    return readModel(ctx, name, own(raw, name));
  });
}

function readModel(ctx: Ctx, name: string, value: unknown): ModelConfig {
  const key = `models.${name}`;
  if (typeof value === 'string') {
    fail(ctx, `${key} must be an object, got ${describeValue(value)} — write { "path": ${JSON.stringify(value)} }`);
  }
  const obj = expectObject(ctx, key, value);
  rejectUnknown(ctx, key, obj, MODEL_KEYS);
  if (own(obj, 'path') === undefined) fail(ctx, `${key}.path is required — ${PATH_HINT}`);
  const path = readField(ctx, key, obj, 'path', { rule: nonEmpty, def: '', hint: PATH_HINT });
  const m = readFields(ctx, key, obj, MODEL);
  const replicas = typeof m.replicas === 'number' ? m.replicas : undefined;
  const maxDefault = replicas === undefined ? 4 : Math.max(replicas, 1);
  const maxReplicas = readField(ctx, key, obj, 'maxReplicas', { ...MAX_REPLICAS, def: maxDefault });
  if (replicas !== undefined && maxReplicas < replicas) {
    const fix = 'raise maxReplicas or lower replicas';
    fail(ctx, `${key}.maxReplicas must be >= ${key}.replicas (${replicas}), got ${maxReplicas} — ${fix}`);
  }
  m.args.forEach((arg, i) => {
    const flag = arg.split('=', 1)[0] ?? arg;
    const fix = OWNED_ARGS[flag];
    if (fix) fail(ctx, `${key}.args[${i}] ${JSON.stringify(arg)} is set by Slotwise — ${fix.replace('{model}', key)}`);
    const unsafe = UNSAFE_ARGS[flag];
    if (unsafe) fail(ctx, `${key}.args[${i}] ${JSON.stringify(arg)} is not allowed — ${unsafe}`);
  });
  return {
    name,
    path: resolvePath(path, ctx.baseDir),
    slots: m.slots,
    ctxPerSlot: m.ctxPerSlot,
    gpuLayers: m.gpuLayers,
    replicas: m.replicas,
    maxReplicas,
    autostart: m.autostart,
    args: m.args,
    promptCacheMiB: m.promptCacheMiB,
  };
}

function readSection<T>(ctx: Ctx, key: string, parent: Record<string, unknown>, fields: Fields<T>): T {
  const value = own(parent, key);
  if (value === undefined) return readFields(ctx, key, {}, fields);
  const obj = expectObject(ctx, key, value);
  rejectUnknown(ctx, key, obj, Object.keys(fields));
  return readFields(ctx, key, obj, fields);
}

function readFields<T>(ctx: Ctx, prefix: string, obj: Record<string, unknown>, fields: Fields<T>): T {
  const out: Partial<T> = {};
  for (const key of Object.keys(fields) as (keyof T & string)[]) {
    out[key] = readField(ctx, prefix, obj, key, fields[key]);
  }
  return out as T; // every key of T was filled above
}

/** `obj[name]` checked against `field`, or a fresh default; `prefix` is the key path of `obj`. */
function readField<T>(ctx: Ctx, prefix: string, obj: Record<string, unknown>, name: string, field: Field<T>): T {
  const value = own(obj, name);
  const out = value === undefined ? field.def : check(ctx, joinKey(prefix, name), value, field.rule, field.hint);
  return (Array.isArray(out) ? [...out] : out) as T; // never share arrays with the input or the defaults
}

function check<T>(ctx: Ctx, key: string, value: unknown, rule: Rule<T>, hint: string): T {
  const item = rule.item;
  if (item && Array.isArray(value)) value.forEach((v, i) => check(ctx, `${key}[${i}]`, v, item, hint));
  if (!rule.ok(value)) fail(ctx, `${key} must be ${rule.expected(value)}, got ${describeValue(value)} — ${hint}`);
  return value;
}

function expectObject(ctx: Ctx, key: string, value: unknown): Record<string, unknown> {
  if (!isObject(value)) {
    fail(ctx, `${key} must be an object, got ${describeValue(value)} — write it as { … } or remove it to use the defaults`);
  }
  return value;
}

function rejectUnknown(ctx: Ctx, prefix: string, obj: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (allowed.includes(key)) continue;
    const renamed = RENAMED[key];
    const near = closest(key, allowed);
    const fix =
      renamed !== undefined && allowed.includes(renamed.split('.')[0] ?? '')
        ? `use "${joinKey(prefix, renamed)}" instead`
        : near !== undefined
          ? `did you mean "${joinKey(prefix, near)}"?`
          : `remove it (known keys: ${allowed.join(', ')})`;
    fail(ctx, `unknown key "${joinKey(prefix, key)}" — ${fix}`);
  }
}

/** The allowed key nearest to a typo by edit distance, ignoring case, `-` and `_`; undefined when none is close. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const a = norm(key);
    const b = norm(candidate);
    const d = editDistance(a, b);
    if (d < bestDistance && d <= Math.max(2, Math.floor(Math.max(a.length, b.length) / 3))) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Files

function checkFiles(ctx: Ctx, config: Config): void {
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
  }
}

interface FileProblems {
  missing: string;
  directory: string;
  denied: string;
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

function resolvePath(value: string, baseDir: string): string {
  return resolve(baseDir, expandHome(value, homedir()));
}

function expandHome(value: string, home: string): string {
  return value === '~' ? home : value.startsWith('~/') ? join(home, value.slice(2)) : value;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Own properties only, so keys such as "constructor" never read from the prototype. */
function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

function joinKey(prefix: string, key: string): string {
  return prefix ? `${prefix}.${key}` : key;
}

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function lineCol(body: string, at: number): string {
  const before = body.slice(0, at);
  return `${before.split('\n').length}:${at - before.lastIndexOf('\n')}`;
}

// ---------------------------------------------------------------------------------------------
// JSON text scan. JSON.parse keeps the last of duplicate keys and its messages differ between Node
// versions and often lack a position, so this strict scanner finds syntax errors (with a fix),
// duplicate keys and the file order of `models` before JSON.parse builds the value.

interface JsonScan {
  /** The first duplicate key; `at` is its offset. */
  duplicate?: { path: string[]; key: string; at: number };
  /** Keys of the top-level `models` object in file order. */
  modelKeys?: string[];
}

class JsonTextError extends Error {
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(message);
  }
}

function scanJson(body: string): JsonScan {
  const scan: JsonScan = {};
  let i = 0;
  const fail = (message: string, at = i): never => {
    throw new JsonTextError(message, at);
  };
  const ws = () => {
    while (i < body.length && ' \t\n\r'.includes(body.charAt(i))) i++;
  };
  const found = (): string => {
    const m = /"[^"\n]*"?|[\w.+-]+|[^]/y;
    m.lastIndex = i;
    const tok = m.exec(body)?.[0] ?? '';
    return `\`${tok.length > 30 ? `${tok.slice(0, 30)}…` : tok}\``;
  };
  const expected = (what: string, hint = ''): never => {
    const c = body.charAt(i);
    if (i >= body.length) return fail(`unexpected end of file, expected ${what} — is a closing } or ] missing?`);
    if (c === '/') return fail('comments are not allowed in JSON — remove the comment');
    if (c === "'") return fail(`expected ${what}, got ' — JSON strings and keys need double quotes`);
    return fail(`expected ${what}, got ${found()}${hint}`);
  };
  const string = (): string => {
    const start = i++;
    for (;;) {
      const c = body.charCodeAt(i);
      if (Number.isNaN(c)) return fail('unterminated string — add the closing "', start);
      if (c === 0x22) break;
      if (c === 0x0a) fail('line break inside a string — close the string with " or write \\n');
      if (c < 0x20) fail('control character inside a string — escape it as \\u00XX');
      if (c === 0x5c) {
        const esc = /\\(["\\/bfnrt]|u[0-9a-fA-F]{4})/y;
        esc.lastIndex = i;
        if (!esc.test(body)) fail(`invalid escape \`${body.slice(i, i + 2)}\` in a string — write \\\\ for a backslash`);
        i = esc.lastIndex;
      } else i++;
    }
    i++;
    const value: unknown = JSON.parse(body.slice(start, i));
    return String(value);
  };
  const value = (path: string[]): void => {
    ws();
    const c = body.charAt(i);
    if (path.length > 64) fail('nesting is too deep — a config needs at most a few levels');
    if (c === '{') return object(path);
    if (c === '[') return array(path);
    if (c === '"') return void string();
    const word = /[\w.+-]+/y;
    word.lastIndex = i;
    const w = word.exec(body)?.[0];
    if (w === undefined) return expected('a value');
    if (!/^(true|false|null|-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?)$/.test(w)) {
      fail(`invalid value \`${w}\` — use a number, a "string", true, false or null`);
    }
    i += w.length;
  };
  // After a comma: a closing bracket means a trailing comma, reported at the comma.
  const afterComma = (close: string): void => {
    const comma = i++;
    ws();
    if (body.charAt(i) === close) fail(`trailing comma before ${close} — remove the comma`, comma);
  };
  const object = (path: string[]): void => {
    i++;
    const keys = new Set<string>();
    const order: string[] = [];
    if (path.length === 1 && path[0] === 'models') scan.modelKeys = order;
    ws();
    if (body.charAt(i) === '}') return void i++;
    for (;;) {
      ws();
      if (body.charAt(i) !== '"') expected('a "key" in double quotes');
      const at = i;
      const key = string();
      if (keys.has(key)) scan.duplicate ??= { path, key, at };
      keys.add(key);
      order.push(key);
      ws();
      if (body.charAt(i) !== ':') expected(`":" after "${key}"`);
      i++;
      value([...path, key]);
      ws();
      if (body.charAt(i) === '}') return void i++;
      if (body.charAt(i) !== ',') expected('"," or "}"', ' — is a comma missing?');
      afterComma('}');
    }
  };
  const array = (path: string[]): void => {
    i++;
    ws();
    if (body.charAt(i) === ']') return void i++;
    for (let n = 0; ; n++) {
      value([...path, String(n)]);
      ws();
      if (body.charAt(i) === ']') return void i++;
      if (body.charAt(i) !== ',') expected('"," or "]"', ' — is a comma missing?');
      afterComma(']');
    }
  };
  if (!body.trim()) fail('the file is empty — write {} to use the defaults', 0);
  value([]);
  ws();
  if (i < body.length) fail(`unexpected ${found()} after the end of the config — remove it`);
  return scan;
}
