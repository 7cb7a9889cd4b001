// An already-parsed config value → the validated Config: shape and types with defaults (driven by the
// tables in daemon/config/rules.ts), then cross-field checks, then the files it names. Every problem is
// one SW_ERR_CONFIG line naming the file, the key and the fix.
import { resolve } from 'node:path';
import { describeValue } from '../../shared/errors';
import { checkFiles } from './files';
import { flagOf } from './llama-args';
import { resolvePath } from './paths';
import { fail, joinKey, labelOf, type Ctx } from './report';
import { MEDIA_BODY_BYTES, MODEL, MODEL_NAME_PATTERN, OWNED_ARGS, SCHEMA_KEY, TOP, UNSAFE_ARGS } from './rules';
import type { Config, ModelConfig } from './types';
import { rejectUnknown } from './unknown-keys';
import { isGroup, nonEmpty, type Field, type Group, type Rule, type Shape } from './value-rules';

export interface ParseOptions {
  /** Folder that relative paths are resolved against: the config file's folder. */
  baseDir: string;
  source?: string;
  /** Check that model files and a configured llama-server exist. Default true. */
  checkFiles?: boolean;
}

const TOP_KEYS = ['$schema', ...Object.keys(TOP), 'models'];
const MODEL_NAME_RE = new RegExp(MODEL_NAME_PATTERN);

/** Every default, no models: what the daemon runs with when there is no config file. */
export function defaultConfig(): Config {
  return parseConfig({}, { baseDir: '/', checkFiles: false });
}

/** Validates an already-parsed config object; throws SW_ERR_CONFIG naming the first problem. */
export function parseConfig(raw: unknown, opts: ParseOptions): Config {
  return parseValue(raw, opts, undefined);
}

/** `modelOrder`: model names in file order, when known from the text (JS objects list integer-like keys first). */
export function parseValue(raw: unknown, opts: ParseOptions, modelOrder: string[] | undefined): Config {
  const ctx: Ctx = { label: labelOf(opts.source), baseDir: opts.baseDir };
  if (!isObject(raw)) fail(ctx, `the config must be a JSON object, got ${describeValue(raw)} — write { "models": { … } }`);
  rejectUnknown(ctx, '', raw, TOP_KEYS);
  readField(ctx, '', raw, '$schema', SCHEMA_KEY, {});
  const top = readFields(ctx, '', raw, TOP);
  const config: Config = {
    ...top,
    llamaServer: top.llamaServer === 'auto' ? 'auto' : resolvePath(top.llamaServer, ctx.baseDir),
    models: readModels(ctx, own(raw, 'models'), modelOrder),
  };
  checkListen(ctx, config.listen);
  // Images travel inside the JSON as base64: a model that reads them needs more than a text request's default.
  const bodyLimitSet = isObject(raw.limits) && Object.hasOwn(raw.limits, 'maxBodyBytes');
  if (!bodyLimitSet && config.models.some((m) => m.mmproj !== undefined)) config.limits.maxBodyBytes = MEDIA_BODY_BYTES;
  const sup = config.supervisor;
  if (sup.backoffMaxMs < sup.backoffInitialMs) {
    const fix = 'raise backoffMaxMs or lower backoffInitialMs';
    fail(ctx, `supervisor.backoffMaxMs must be >= supervisor.backoffInitialMs (${sup.backoffInitialMs}), got ${sup.backoffMaxMs} — ${fix}`);
  }
  if (opts.checkFiles ?? true) checkFiles(ctx, config);
  if (opts.source !== undefined) config.source = resolve(opts.source);
  return config;
}

/** Binding beyond loopback needs TLS or an explicit opt-out; TLS paths resolve like model paths. */
function checkListen(ctx: Ctx, listen: Config['listen']): void {
  if (listen.tls !== undefined) {
    const tls = listen.tls as Record<string, unknown>;
    rejectUnknown(ctx, 'listen.tls', tls, ['cert', 'key']);
    const hint = 'set it to a PEM file (absolute, ~/…, or relative to the config file)';
    for (const key of ['cert', 'key'] as const) {
      const value = readField(ctx, 'listen.tls', tls, key, { rule: nonEmpty, required: true, hint, description: '' }, {});
      listen.tls[key] = resolvePath(value as string, ctx.baseDir);
    }
  }
  const h = listen.host.toLowerCase();
  const loopback = h === 'localhost' || h === '::1' || h === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
  if (!loopback && listen.tls === undefined && !listen.insecure) {
    const fix = 'set listen.tls { "cert", "key" } to serve HTTPS, or listen.insecure: true for plain HTTP on a trusted network';
    fail(ctx, `listen.host ${JSON.stringify(listen.host)} is reachable beyond this machine and the token would travel in clear text — ${fix}`);
  }
}

function readModels(ctx: Ctx, raw: unknown, order: string[] | undefined): ModelConfig[] {
  if (raw === undefined) return [];
  if (!isObject(raw)) {
    const fix = 'write { "coder": { "path": "~/models/coder.gguf" } }';
    fail(ctx, `models must be an object keyed by model name, got ${describeValue(raw)} — ${fix}`);
  }
  const seen = new Map<string, string>(); // lower-case name → name as written
  return (order ?? Object.keys(raw)).map((name) => {
    if (!MODEL_NAME_RE.test(name)) {
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
  const m = readGroup(ctx, key, expectObject(ctx, key, value), MODEL);
  if (typeof m.replicas === 'number' && m.maxReplicas < m.replicas) {
    const fix = 'raise maxReplicas or lower replicas';
    fail(ctx, `${key}.maxReplicas must be >= ${key}.replicas (${m.replicas}), got ${m.maxReplicas} — ${fix}`);
  }
  // With every slot reserved, background work could never start ("auto" slots: checked against maxSlots).
  const slotsKey = m.slots === 'auto' ? 'maxSlots' : 'slots';
  const slots = m.slots === 'auto' ? m.maxSlots : m.slots;
  if (m.reservedSlots >= slots) {
    fail(ctx, `${key}.reservedSlots must be < ${key}.${slotsKey} (${slots}), got ${m.reservedSlots} — lower reservedSlots or raise ${slotsKey}`);
  }
  m.args.forEach((arg, i) => {
    const flag = flagOf(arg);
    const fix = Object.hasOwn(OWNED_ARGS, flag) ? OWNED_ARGS[flag] : undefined; // own keys: an arg may be "__proto__"
    if (fix) fail(ctx, `${key}.args[${i}] ${JSON.stringify(arg)} is set by Slotwise — ${fix.replace('{model}', key)}`);
    const unsafe = Object.hasOwn(UNSAFE_ARGS, flag) ? UNSAFE_ARGS[flag] : undefined;
    if (unsafe) fail(ctx, `${key}.args[${i}] ${JSON.stringify(arg)} is not allowed — ${unsafe}`);
  });
  return { name, ...m, path: resolvePath(m.path, ctx.baseDir), ...(m.mmproj !== undefined ? { mmproj: resolvePath(m.mmproj, ctx.baseDir) } : {}), ...(m.draft !== undefined ? { draft: resolvePath(m.draft, ctx.baseDir) } : {}) };
}

/** `value` as the object `group` describes; absent means every default. `key` is its key path. */
function readGroup<T>(ctx: Ctx, key: string, value: unknown, group: Group<T>): T {
  if (value === undefined) return readFields(ctx, key, {}, group.fields);
  const obj = expectObject(ctx, key, value);
  rejectUnknown(ctx, key, obj, Object.keys(group.fields));
  return readFields(ctx, key, obj, group.fields);
}

/** Plain keys are checked before nested objects, each in table order; the result keeps table order. */
function readFields<T>(ctx: Ctx, prefix: string, obj: Record<string, unknown>, shape: Shape<T>): T {
  const entries = Object.entries(shape) as [string, Field<unknown> | Group<unknown>][];
  const read: Record<string, unknown> = {};
  for (const [name, entry] of entries) {
    if (!isGroup(entry)) read[name] = readField(ctx, prefix, obj, name, entry, read);
  }
  for (const [name, entry] of entries) {
    if (isGroup(entry)) read[name] = readGroup(ctx, joinKey(prefix, name), own(obj, name), entry);
  }
  // An optional key without a default stays absent rather than present as undefined.
  return Object.fromEntries(entries.map(([name]) => [name, read[name]]).filter(([, v]) => v !== undefined)) as T;
}

/** `obj[name]` checked against `field`, or a fresh default; `prefix` is the key path of `obj`. */
function readField<T>(
  ctx: Ctx,
  prefix: string,
  obj: Record<string, unknown>,
  name: string,
  field: Field<T>,
  siblings: Record<string, unknown>,
): T | undefined {
  const value = own(obj, name);
  const key = joinKey(prefix, name);
  if (value === undefined && field.required) fail(ctx, `${key} is required — ${field.hint}`);
  const def = typeof field.def === 'function' ? (field.def as (s: Record<string, unknown>) => T)(siblings) : field.def;
  const out = value === undefined ? def : check(ctx, key, value, field.rule, field.hint);
  return (Array.isArray(out) ? [...out] : out) as T | undefined; // never share arrays with the input or the defaults
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

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Own properties only, so keys such as "constructor" never read from the prototype. */
function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}
