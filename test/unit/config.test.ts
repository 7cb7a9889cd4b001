// Config validation: the schema and the parser agree, every bad config gets its exact one-line message,
// defaults and path resolution hold, and file-level errors (missing, invalid JSON) point at the spot.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../daemon/config/load';
import type { Config } from '../../daemon/config/types';
import { defaultConfig, parseConfig } from '../../daemon/config/validate';

const root = fileURLToPath(new URL('../../', import.meta.url));
const schema: unknown = JSON.parse(readFileSync(join(root, 'schema/config.schema.json'), 'utf8'));
const example: unknown = JSON.parse(readFileSync(join(root, 'examples/config.json'), 'utf8'));
const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema as object);

const parse = (raw: unknown): Config => parseConfig(raw, { baseDir: '/cfg', source: '/cfg/config.json', checkFiles: false });
const model = (fields: Record<string, unknown>) => ({ models: { coder: { path: 'm.gguf', ...fields } } });

/** The thrown error's code and message, or a failure when nothing was thrown. */
function errorOf(fn: () => unknown): { code: unknown; message: string } {
  try {
    fn();
  } catch (err) {
    return { code: (err as { code?: unknown }).code, message: (err as Error).message };
  }
  throw new Error('expected an error');
}

const tmp = mkdtempSync(join(tmpdir(), 'slotwise-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('example and schema', () => {
  it('the example validates against the schema', () => {
    expect(validate(example), JSON.stringify(validate.errors)).toBe(true);
  });

  it('the example parses', () => {
    const config = parseConfig(example, { baseDir: join(root, 'examples'), checkFiles: false });
    expect(config.models.map((m) => [m.name, m.slots, m.gpuLayers, m.replicas, m.maxReplicas])).toEqual([
      ['coder', 8, 'all', 1, 1],
      ['chat-small', 4, 16, 2, 4],
    ]);
    expect(config.models[0]?.path).toBe(join(homedir(), 'models/qwen2.5-coder-7b-instruct-q4_k_m.gguf'));
  });

  it('schema defaults are the parser defaults', () => {
    const props = (schema as { properties: Record<string, { default?: unknown }> }).properties;
    const defaults = defaultConfig();
    for (const [key, value] of Object.entries(defaults)) {
      expect(props[key]?.default, key).toEqual(key === 'models' ? {} : value);
    }
    const modelProps = (schema as { $defs: { model: { properties: Record<string, { default?: unknown }> } } }).$defs.model.properties;
    const parsed = parse({ models: { m: { path: 'x' } } }).models[0] ?? {};
    for (const [key, value] of Object.entries(parsed)) {
      if (key === 'name' || key === 'path' || key === 'maxReplicas') continue; // no static default
      expect(modelProps[key]?.default, key).toEqual(value);
    }
    // mmproj and draft are the optional keys without a default: absent from a parsed model that does not set them.
    expect(Object.keys(modelProps).sort()).toEqual([...Object.keys(parsed).filter((k) => k !== 'name'), 'mmproj', 'draft'].sort());
  });

  it('every schema property has a description', () => {
    const missing: string[] = [];
    const walk = (node: unknown, at: string): void => {
      if (typeof node !== 'object' || node === null) return;
      const props = (node as { properties?: Record<string, unknown> }).properties ?? {};
      for (const [key, child] of Object.entries(props)) {
        if (!(child as { description?: string }).description) missing.push(`${at}${key}`);
        walk(child, `${at}${key}.`);
      }
    };
    walk(schema, '');
    walk((schema as { $defs: { model: unknown } }).$defs.model, 'model.');
    expect(missing).toEqual([]);
  });
});

// [name, config, message, schemaCatchesIt]. The last is false for checks JSON Schema cannot express
// (cross-field and case-insensitive names); the schema must accept those so this table stays honest.
const BAD: [string, unknown, string, boolean?][] = [
  ['slots 0', model({ slots: 0 }), 'config.json: models.coder.slots must be "auto" or an integer >= 1, got the number 0 — set it to the number of parallel requests (e.g. 4), or "auto" for the most that fit memory'],
  ['slots too many', model({ slots: 300 }), 'config.json: models.coder.slots must be "auto" or an integer <= 256, got the number 300 — set it to the number of parallel requests (e.g. 4), or "auto" for the most that fit memory'],
  ['slots as string', model({ slots: '4' }), 'config.json: models.coder.slots must be "auto" or an integer from 1 to 256, got a string ("4") — set it to the number of parallel requests (e.g. 4), or "auto" for the most that fit memory'],
  ['ctxPerSlot small', model({ ctxPerSlot: 64 }), 'config.json: models.coder.ctxPerSlot must be an integer >= 128, got the number 64 — set it to the context length of one request in tokens (e.g. 4096)'],
  ['typo near a key', { queue: { maxWait: 5 } }, 'config.json: unknown key "queue.maxWait" — did you mean "queue.maxWaiting"?'],
  ['typo in case', model({ CtxPerSlot: 4096 }), 'config.json: unknown key "models.coder.CtxPerSlot" — did you mean "models.coder.ctxPerSlot"?'],
  ['unknown key far from all', { queue: { foo: 1 } }, 'config.json: unknown key "queue.foo" — remove it (known keys: maxWaiting, timeoutMs, backgroundMaxWaitMs, sessionHoldMs, handoffTokens)'],
  ['renamed parallel', model({ parallel: 4 }), 'config.json: unknown key "models.coder.parallel" — use "models.coder.slots" instead'],
  ['renamed ctx', model({ ctx: 8192 }), 'config.json: unknown key "models.coder.ctx" — use "models.coder.ctxPerSlot" instead'],
  ['renamed contextSize', model({ contextSize: 8192 }), 'config.json: unknown key "models.coder.contextSize" — use "models.coder.ctxPerSlot" instead'],
  ['renamed ngl', model({ ngl: 99 }), 'config.json: unknown key "models.coder.ngl" — use "models.coder.gpuLayers" instead'],
  ['renamed nGpuLayers', model({ nGpuLayers: 99 }), 'config.json: unknown key "models.coder.nGpuLayers" — use "models.coder.gpuLayers" instead'],
  ['renamed model', { models: { coder: { model: 'x.gguf' } } }, 'config.json: unknown key "models.coder.model" — use "models.coder.path" instead'],
  ['top-level port', { port: 8080 }, 'config.json: unknown key "port" — use "listen.port" instead'],
  ['top-level model', { model: {} }, 'config.json: unknown key "model" — did you mean "models"?'],
  ['host not a string', { listen: { host: 127 } }, 'config.json: listen.host must be a host name or IP address such as "127.0.0.1", got the number 127 — use "127.0.0.1" to accept local clients only'],
  ['host as URL', { listen: { host: 'http://localhost' } }, 'config.json: listen.host must be a host name or IP address such as "127.0.0.1", got a string ("http://localhost") — use "127.0.0.1" to accept local clients only'],
  ['port too big', { listen: { port: 70000 } }, 'config.json: listen.port must be an integer <= 65535, got the number 70000 — use a free port such as 7373, or 0 for any free port'],
  ['port as string', { listen: { port: '7373' } }, 'config.json: listen.port must be an integer from 0 to 65535, got a string ("7373") — use a free port such as 7373, or 0 for any free port'],
  ['origin with path', { listen: { allowedOrigins: ['http://localhost:5173/'] } }, 'config.json: listen.allowedOrigins[0] must be an origin such as "http://localhost:5173" (no path, no trailing slash), got a string ("http://localhost:5173/") — list the browser origins that may call the daemon, or [] for none'],
  ['origins not an array', { listen: { allowedOrigins: 'http://a' } }, 'config.json: listen.allowedOrigins must be an array of origins, got a string ("http://a") — list the browser origins that may call the daemon, or [] for none'],
  ['section null', { listen: null }, 'config.json: listen must be an object, got null — write it as { … } or remove it to use the defaults'],
  ['unknown routing', { routing: 'random' }, 'config.json: routing must be "slot-aware" or "round-robin", got a string ("random") — use "slot-aware" (fewest busy slots first) or "round-robin"'],
  ['timeout fraction', { queue: { timeoutMs: 1.5 } }, 'config.json: queue.timeoutMs must be an integer from 1 to 2147483647, got the number 1.5 — set how long a request may wait, in milliseconds (e.g. 120000)'],
  ['timeout beyond setTimeout', { queue: { timeoutMs: 2 ** 31 } }, 'config.json: queue.timeoutMs must be an integer <= 2147483647, got the number 2147483648 — set how long a request may wait, in milliseconds (e.g. 120000)'],
  ['gpu sampling too fast', { gpu: { sampleIntervalMs: 10 } }, 'config.json: gpu.sampleIntervalMs must be an integer >= 100, got the number 10 — set the GPU sampling period in milliseconds (e.g. 1000)'],
  ['llamaServer empty', { llamaServer: '' }, 'config.json: llamaServer must be a non-empty string, got a string ("") — use "auto" to find or build llama-server, or the path of a llama-server binary'],
  ['gpuLayers negative', model({ gpuLayers: -1 }), 'config.json: models.coder.gpuLayers must be "auto", "all" or an integer >= 0, got the number -1 — use "auto" to fit the GPU, "all", or a number of layers (0 = CPU only)'],
  ['gpuLayers unknown word', model({ gpuLayers: 'max' }), 'config.json: models.coder.gpuLayers must be "auto", "all" or an integer >= 0, got a string ("max") — use "auto" to fit the GPU, "all", or a number of layers (0 = CPU only)'],
  ['replicas word', model({ replicas: 'many' }), 'config.json: models.coder.replicas must be "auto" or an integer >= 0, got a string ("many") — set how many llama-server processes to run (0 = configured but not started)'],
  ['maxReplicas 0', model({ replicas: 0, maxReplicas: 0 }), 'config.json: models.coder.maxReplicas must be an integer >= 1, got the number 0 — set the most replicas this model may run (e.g. 4)'],
  ['autostart string', model({ autostart: 'yes' }), 'config.json: models.coder.autostart must be true or false, got a string ("yes") — use true to start the model with the daemon'],
  ['args not strings', model({ args: ['-t', 8] }), 'config.json: models.coder.args[1] must be a string, got the number 8 — list extra llama-server flags as strings, e.g. ["--threads", "8"]'],
  ['args owns port', model({ args: ['--port', '9000'] }), 'config.json: models.coder.args[0] "--port" is set by Slotwise — remove it (each replica gets a free port; clients use listen.port)'],
  ['args owns ctx with =', model({ args: ['--threads', '8', '--ctx-size=8192'] }), 'config.json: models.coder.args[2] "--ctx-size=8192" is set by Slotwise — use models.coder.ctxPerSlot instead (Slotwise passes -c = slots × ctxPerSlot)'],
  ['args owns -ngl', model({ args: ['-ngl', '99'] }), 'config.json: models.coder.args[0] "-ngl" is set by Slotwise — use models.coder.gpuLayers instead'],
  ['args owns --cache-ram', model({ args: ['--cache-ram', '0'] }), 'config.json: models.coder.args[0] "--cache-ram" is set by Slotwise — use models.coder.promptCacheMiB instead'],
  ['args serve files', model({ args: ['--path', '/'] }), 'config.json: models.coder.args[0] "--path" is not allowed — remove it (llama-server would serve that folder over HTTP)'],
  ['args enable tools', model({ args: ['--threads', '2', '--tools=all'] }), 'config.json: models.coder.args[2] "--tools=all" is not allowed — remove it (it lets requests read or write files, run commands or reach other hosts through llama-server)'],
  ['promptCacheMiB negative', model({ promptCacheMiB: -1 }), 'config.json: models.coder.promptCacheMiB must be "auto" or an integer >= 0, got the number -1 — set the MiB of RAM for llama-server\'s prompt cache (e.g. 512), "auto" to size it from the model, or 0 for none'],
  ['stallTimeoutMs too short', { supervisor: { stallTimeoutMs: 10 } }, 'config.json: supervisor.stallTimeoutMs must be an integer >= 100, got the number 10 — set how long a llama-server may make no progress before it is restarted, in milliseconds (e.g. 30000)'],
  ['model as a string', { models: { coder: 'x.gguf' } }, 'config.json: models.coder must be an object, got a string ("x.gguf") — write { "path": "x.gguf" }'],
  ['models as an array', { models: [{ path: 'x' }] }, 'config.json: models must be an object keyed by model name, got an array — write { "coder": { "path": "~/models/coder.gguf" } }'],
  ['path missing', { models: { coder: { slots: 4 } } }, "config.json: models.coder.path is required — set it to the model's .gguf file (absolute, ~/…, or relative to the config file)"],
  ['path empty', model({ path: ' ' }), 'config.json: models.coder.path must be a non-empty string, got a string (" ") — set it to the model\'s .gguf file (absolute, ~/…, or relative to the config file)'],
  ['bad model name', { models: { 'my model': { path: 'x' } } }, 'config.json: model name "my model" in models is invalid — use 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit'],
  ['top level not an object', [], 'config.json: the config must be a JSON object, got an array — write { "models": { … } }'],
  ['maxReplicas below replicas', model({ replicas: 3, maxReplicas: 2 }), 'config.json: models.coder.maxReplicas must be >= models.coder.replicas (3), got 2 — raise maxReplicas or lower replicas', false],
  ['backoff max below initial', { supervisor: { backoffInitialMs: 5000, backoffMaxMs: 1000 } }, 'config.json: supervisor.backoffMaxMs must be >= supervisor.backoffInitialMs (5000), got 1000 — raise backoffMaxMs or lower backoffInitialMs', false],
  ['names equal ignoring case', { models: { coder: { path: 'a' }, Coder: { path: 'b' } } }, 'config.json: duplicate model name "Coder" in models (same as "coder" ignoring case) — rename one of them', false],
  ['wildcard host without TLS', { listen: { host: '0.0.0.0' } }, 'config.json: listen.host "0.0.0.0" is reachable beyond this machine and the token would travel in clear text — set listen.tls { "cert", "key" } to serve HTTPS, or listen.insecure: true for plain HTTP on a trusted network', false],
  ['LAN address without TLS', { listen: { host: '192.168.1.5', insecure: false } }, 'config.json: listen.host "192.168.1.5" is reachable beyond this machine and the token would travel in clear text — set listen.tls { "cert", "key" } to serve HTTPS, or listen.insecure: true for plain HTTP on a trusted network', false],
  ['tls without key', { listen: { tls: { cert: 'c.pem' } } }, 'config.json: listen.tls.key is required — set it to a PEM file (absolute, ~/…, or relative to the config file)'],
  ['tls unknown key', { listen: { tls: { cert: 'c.pem', key: 'k.pem', ca: 'x' } } }, 'config.json: unknown key "listen.tls.ca" — remove it (known keys: cert, key)'],
  ['tls as a string', { listen: { tls: 'c.pem' } }, 'config.json: listen.tls must be an object { "cert": FILE, "key": FILE }, got a string ("c.pem") — give the PEM certificate and key files, e.g. { "cert": "~/slotwise/cert.pem", "key": "~/slotwise/key.pem" }'],
  ['allowedHosts with a port', { listen: { allowedHosts: ['box.lan:7373'] } }, 'config.json: listen.allowedHosts[0] must be a host name such as "box.lan" (no port, no scheme), got a string ("box.lan:7373") — list the Host names clients use to reach the daemon besides localhost, e.g. ["box.lan"]'],
  ['body timeout too short', { listen: { bodyTimeoutMs: 10 } }, 'config.json: listen.bodyTimeoutMs must be an integer >= 100, got the number 10 — set how long a client may take to send a request body, in milliseconds (e.g. 30000)'],
  ['no connections', { listen: { maxConnections: 0 } }, 'config.json: listen.maxConnections must be an integer >= 1, got the number 0 — set the most open connections (e.g. 4096)'],
];

// Accepted by both.
const GOOD: [string, unknown][] = [
  ['empty', {}],
  ['minimal model', { models: { m: { path: 'm.gguf' } } }],
  ['$schema key', { $schema: '../schema/config.schema.json' }],
  ['port 0', { listen: { port: 0, allowedOrigins: ['http://localhost:5173', 'vscode-webview://abc'] } }],
  ['cpu only, not started', model({ gpuLayers: 0, replicas: 0 })],
  ['gpu all, auto replicas', model({ gpuLayers: 'all', replicas: 'auto', maxReplicas: 8 })],
  ['integral float', model({ slots: 4.0 })],
  ['name with dots', { models: { 'qwen2.5-7b_q4': { path: 'x' } } }],
  ['free args', model({ args: ['--threads', '8', '--metrics', '--port-file-unrelated', '--no-webui', '--pathological'] })],
  ['prompt cache off, short stall timeout', { ...model({ promptCacheMiB: 0 }), supervisor: { stallTimeoutMs: 1500 } }],
  ['round-robin', { routing: 'round-robin', supervisor: { stopGraceMs: 0, maxCrashes: 1 } }],
  ['LAN with TLS', { listen: { host: '0.0.0.0', tls: { cert: 'c.pem', key: '~/k.pem' }, allowedHosts: ['box.lan', '[fd00::1]'] } }],
  ['LAN insecure', { listen: { host: '::', insecure: true, bodyTimeoutMs: 5000, maxConnections: 64 } }],
  ['loopback names need no TLS', { listen: { host: 'localhost' } }],
];

const OWNED = ['--port', '--host', '-m', '--model', '-np', '--parallel', '-c', '--ctx-size', '-ngl', '--gpu-layers', '--n-gpu-layers', '--api-key', '--api-key-file', '--no-slots', '-cram', '--cache-ram'];
const UNSAFE = ['--path', '--reuse-port', '--ssl-key-file', '--ssl-cert-file', '--cors-origins', '--cors-methods', '--cors-headers', '--cors-credentials', '--api-prefix', '--tools', '--tools-runtime', '--mcp-servers-config', '--mcp-servers-json', '-ag', '--agent', '--ui-mcp-proxy', '--webui-mcp-proxy', '--media-path', '--slot-save-path', '--models-dir', '--models-preset'];

describe('schema and parser agree', () => {
  it.each(GOOD)('accepts %s', (_name, raw) => {
    expect(validate(raw), JSON.stringify(validate.errors)).toBe(true);
    expect(() => parse(raw)).not.toThrow();
  });

  it.each(BAD)('%s: schema verdict matches the table', (_name, raw, _message, schemaCatches = true) => {
    expect(validate(raw)).toBe(!schemaCatches);
    expect(errorOf(() => parse(raw)).code).toBe('SW_ERR_CONFIG');
  });

  it.each(OWNED.flatMap((flag) => [flag, `${flag}=1`]))('both refuse the owned flag %s', (flag) => {
    const raw = model({ args: [flag] });
    expect(validate(raw)).toBe(false);
    expect(errorOf(() => parse(raw)).message).toContain('is set by Slotwise');
  });

  it.each(UNSAFE.flatMap((flag) => [flag, `${flag}=1`]))('both refuse the unsafe flag %s', (flag) => {
    const raw = model({ args: [flag] });
    expect(validate(raw)).toBe(false);
    expect(errorOf(() => parse(raw)).message).toContain('is not allowed — remove it');
  });
});

describe('error messages', () => {
  it.each(BAD)('%s', (_name, raw, message) => {
    expect(errorOf(() => parse(raw))).toEqual({ code: 'SW_ERR_CONFIG', message });
  });

  it('names the config "config" when there is no file', () => {
    expect(errorOf(() => parseConfig({ routing: 1 }, { baseDir: '/' })).message).toMatch(/^config: routing must be/);
  });
});

describe('listen.tls', () => {
  it('resolves the PEM paths like model paths', () => {
    const tls = parse({ listen: { tls: { cert: 'certs/c.pem', key: '/etc/k.pem' } } }).listen.tls;
    expect(tls).toEqual({ cert: '/cfg/certs/c.pem', key: '/etc/k.pem' });
  });

  it('checks that the PEM files exist when files are checked', () => {
    const raw = { listen: { tls: { cert: '/nonexistent/c.pem', key: '/nonexistent/k.pem' } } };
    expect(errorOf(() => parseConfig(raw, { baseDir: '/', source: '/cfg/config.json' })).message).toBe(
      'config.json: listen.tls.cert: file not found: /nonexistent/c.pem — fix the path or create it (e.g. with openssl req -x509)',
    );
  });
});

describe('defaults', () => {
  it('an empty config is every default', () => {
    const expected: Config = {
      listen: { host: '127.0.0.1', port: 7373, allowedOrigins: [], allowedHosts: [], bodyTimeoutMs: 30_000, maxConnections: 4096, insecure: false },
      llamaServer: 'auto',
      queue: { maxWaiting: 256, timeoutMs: 120_000, backgroundMaxWaitMs: 30_000, sessionHoldMs: 150, handoffTokens: 2 },
      limits: { maxBodyBytes: 1_048_576 },
      routing: 'slot-aware',
      shutdownGraceMs: 10_000,
      supervisor: {
        healthTimeoutMs: 600_000,
        stopGraceMs: 10_000,
        backoffInitialMs: 1_000,
        backoffMaxMs: 60_000,
        healthyResetMs: 300_000,
        maxCrashes: 5,
        stallTimeoutMs: 30_000,
        crashWindowMs: 600_000,
      },
      gpu: { sampleIntervalMs: 1_000 },
      autoscale: { saturatedForMs: 30_000, idleForMs: 300_000, saturatedWaitMs: 2_000 },
      models: [],
    };
    expect(defaultConfig()).toStrictEqual(expected);
    expect(parse({})).toStrictEqual({ ...expected, source: '/cfg/config.json' });
  });

  it('fills a section partly given', () => {
    expect(parse({ listen: { port: 9000 } }).listen).toStrictEqual({
      host: '127.0.0.1',
      port: 9000,
      allowedOrigins: [],
      allowedHosts: [],
      bodyTimeoutMs: 30_000,
      maxConnections: 4096,
      insecure: false,
    });
  });

  it.each([
    [{}, 1, 1],
    [{ replicas: 0 }, 0, 1],
    [{ replicas: 3 }, 3, 3],
    [{ replicas: 'auto' }, 'auto', 4],
    [{ replicas: 2, maxReplicas: 6 }, 2, 6],
  ])('model %j → replicas %j, maxReplicas %j', (fields, replicas, maxReplicas) => {
    expect(parse(model(fields)).models[0]).toEqual({
      name: 'coder',
      path: '/cfg/m.gguf',
      slots: 4,
      ctxPerSlot: 4096,
      gpuLayers: 'auto',
      replicas,
      maxReplicas,
      autostart: true,
      args: [],
      affinity: true,
      kind: 'completion',
      reservedSlots: 0,
      promptCacheMiB: 'auto',
      load: 'always',
      idleUnloadMs: 0,
      pinned: false,
      maxSlots: 16,
    });
  });

  it('takes reservedSlots below slots and refuses one that leaves background work no slot', () => {
    expect(parse(model({ slots: 4, reservedSlots: 1 })).models[0]!.reservedSlots).toBe(1);
    expect(() => parse(model({ slots: 4, reservedSlots: 4 }))).toThrow(/reservedSlots must be < models\.coder\.slots \(4\), got 4/);
  });

  it('takes load "on-demand", idleUnloadMs, pinned and a top-level memoryBudgetMiB', () => {
    const c = parse({ ...model({ load: 'on-demand', idleUnloadMs: 300000, pinned: true }), memoryBudgetMiB: 8192 });
    expect(c.models[0]).toMatchObject({ load: 'on-demand', idleUnloadMs: 300000, pinned: true });
    expect(c.memoryBudgetMiB).toBe(8192);
    expect(parse(model({})).memoryBudgetMiB).toBeUndefined();
    expect(() => parse(model({ load: 'lazy' }))).toThrow(/load.*"always".*"on-demand"/s);
    expect(parse(model({ slots: 'auto', maxSlots: 8 })).models[0]).toMatchObject({ slots: 'auto', maxSlots: 8 });
    expect(() => parse(model({ slots: 'many' }))).toThrow(/slots/);
  });

  it('takes a model kind and refuses an unknown one with the choices', () => {
    expect(parse(model({ kind: 'embedding' })).models[0]!.kind).toBe('embedding');
    expect(parse(model({ kind: 'rerank' })).models[0]!.kind).toBe('rerank');
    expect(() => parse(model({ kind: 'chat' }))).toThrow(/kind.*"completion".*"embedding".*"rerank"/s);
  });

  it('refuses --embedding / --reranking in args: kind sets them', () => {
    expect(() => parse(model({ args: ['--embedding'] }))).toThrow(/kind "embedding"/);
    expect(() => parse(model({ args: ['--reranking'] }))).toThrow(/kind "rerank"/);
  });

  it('keeps file order and shares no arrays with the input', () => {
    const args = ['--threads', '8'];
    const raw = { models: { b: { path: 'b', args }, a: { path: 'a' } } };
    const config = parse(raw);
    expect(config.models.map((m) => m.name)).toEqual(['b', 'a']);
    config.models[0]?.args.push('x');
    expect(args).toEqual(['--threads', '8']);
    expect(defaultConfig().listen.allowedOrigins).toEqual([]);
  });
});

describe('paths', () => {
  it.each([
    ['~/models/x.gguf', join(homedir(), 'models/x.gguf')],
    ['~', homedir()],
    ['models/x.gguf', '/cfg/models/x.gguf'],
    ['../shared/x.gguf', '/shared/x.gguf'],
    ['/abs/x.gguf', '/abs/x.gguf'],
  ])('model path %s → %s', (path, expected) => {
    expect(parse({ models: { m: { path } } }).models[0]?.path).toBe(expected);
    expect(parse({ llamaServer: path }).llamaServer).toBe(expected);
  });

  it('leaves llamaServer "auto" alone', () => {
    expect(parse({ llamaServer: 'auto' }).llamaServer).toBe('auto');
  });
});

describe('a model with a projector (mmproj)', () => {
  it('resolves the projector like the model path and passes nothing for a model without one', () => {
    const config = parse({ models: { v: { path: 'v.gguf', mmproj: 'mmproj-v.gguf' }, t: { path: 't.gguf' } } });
    expect(config.models.map((m) => m.mmproj)).toEqual(['/cfg/mmproj-v.gguf', undefined]);
  });

  it('raises the default body limit to 32 MiB for base64 images, and keeps a limit the config sets', () => {
    expect(parse(model({})).limits.maxBodyBytes).toBe(1_048_576);
    expect(parse(model({ mmproj: 'p.gguf' })).limits.maxBodyBytes).toBe(32 * 2 ** 20);
    expect(parse({ ...model({ mmproj: 'p.gguf' }), limits: { maxBodyBytes: 2_000_000 } }).limits.maxBodyBytes).toBe(2_000_000);
  });

  it.each(['--mmproj', '-mm', '--mmproj=x.gguf'])('refuses %s in args and names the key', (flag) => {
    expect(errorOf(() => parse(model({ args: [flag, 'x.gguf'] })))).toEqual({
      code: 'SW_ERR_CONFIG',
      message: `config.json: models.coder.args[0] ${JSON.stringify(flag)} is set by Slotwise — use models.coder.mmproj instead`,
    });
  });

  it('refuses an empty projector path with the fix', () => {
    expect(errorOf(() => parse(model({ mmproj: '' }))).message).toMatch(/^config\.json: models\.coder\.mmproj .*mmproj-\*\.gguf/);
  });
});

describe('files on disk', () => {
  const dir = join(tmp, 'files');
  mkdirSync(join(dir, 'models', 'folder.gguf'), { recursive: true });
  writeFileSync(join(dir, 'models', 'm.gguf'), 'GGUF');
  writeFileSync(join(dir, 'llama-server'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(join(dir, 'not-executable'), '', { mode: 0o644 });
  chmodSync(join(dir, 'not-executable'), 0o644);
  const check = (raw: unknown) => parseConfig(raw, { baseDir: dir, source: join(dir, 'config.json') });

  it('accepts files that exist', () => {
    const config = check({ llamaServer: './llama-server', models: { m: { path: 'models/m.gguf' } } });
    expect(config.llamaServer).toBe(join(dir, 'llama-server'));
    expect(config.models[0]?.path).toBe(join(dir, 'models/m.gguf'));
  });

  it.each([
    [{ models: { m: { path: 'models/x.gguf' } } }, `config.json: models.m.path: model file not found: ${dir}/models/x.gguf — download a GGUF or fix the path`],
    [{ models: { m: { path: 'models/m.gguf/deeper.gguf' } } }, `config.json: models.m.path: model file not found: ${dir}/models/m.gguf/deeper.gguf — download a GGUF or fix the path`],
    [{ models: { m: { path: 'models/folder.gguf' } } }, `config.json: models.m.path: ${dir}/models/folder.gguf is a directory — point it at the .gguf file`],
    [{ models: { m: { path: 'models/m.gguf', mmproj: 'models/mmproj.gguf' } } }, `config.json: models.m.mmproj: projector file not found: ${dir}/models/mmproj.gguf — download the mmproj-*.gguf published beside the model, or fix the path`],
    [{ models: { m: { path: 'models/m.gguf', mmproj: 'models/folder.gguf' } } }, `config.json: models.m.mmproj: ${dir}/models/folder.gguf is a directory — point it at the mmproj .gguf file`],
    [{ llamaServer: 'bin/llama-server' }, `config.json: llamaServer: llama-server not found: ${dir}/bin/llama-server — fix the path or set it to "auto"`],
    [{ llamaServer: 'models' }, `config.json: llamaServer: ${dir}/models is a directory — point it at the llama-server binary (e.g. build/bin/llama-server)`],
    [{ llamaServer: 'not-executable' }, `config.json: llamaServer: ${dir}/not-executable is not executable — run chmod +x on it or set it to "auto"`],
  ])('%j', (raw, message) => {
    expect(errorOf(() => check(raw))).toEqual({ code: 'SW_ERR_CONFIG', message });
  });

  it('skips file checks when checkFiles is false', () => {
    expect(() => parseConfig({ models: { m: { path: 'nope.gguf' } } }, { baseDir: dir, checkFiles: false })).not.toThrow();
  });
});

describe('loadConfig', () => {
  let n = 0;
  /** Writes `body` to a fresh folder and returns the file's path. */
  const write = (body: string): string => {
    const folder = join(tmp, `load-${n++}`);
    mkdirSync(folder);
    writeFileSync(join(folder, 'config.json'), body);
    return join(folder, 'config.json');
  };
  const load = (body: string) => loadConfig({ path: write(body), env: {}, checkFiles: false });

  it('reads a file and resolves paths against its folder', async () => {
    const path = write('{ "models": { "m": { "path": "models/m.gguf" } } }');
    const config = await loadConfig({ path, env: {}, checkFiles: false });
    expect(config.source).toBe(path);
    expect(config.models[0]?.path).toBe(join(path, '..', 'models/m.gguf'));
  });

  it('keeps the file order of models, integer-like names included', async () => {
    const config = await load('{ "models": { "b": { "path": "x" }, "10": { "path": "x" }, "a": { "path": "x" }, "2": { "path": "x" } } }');
    expect(config.models.map((m) => m.name)).toEqual(['b', '10', 'a', '2']);
  });

  it('accepts a byte-order mark', async () => {
    expect((await load('\uFEFF{ "routing": "round-robin" }')).routing).toBe('round-robin');
  });

  it.each([
    ['{\n  "listen": {},\n}', 'config.json:2:15: invalid JSON: trailing comma before } — remove the comma'],
    ['[1,\n 2, ]', 'config.json:2:3: invalid JSON: trailing comma before ] — remove the comma'],
    ['{\n  // my models\n  "models": {}\n}', 'config.json:2:3: invalid JSON: comments are not allowed in JSON — remove the comment'],
    ['{\n  "listen": { "port": 7373\n    "host": "x" }\n}', 'config.json:3:5: invalid JSON: expected "," or "}", got `"host"` — is a comma missing?'],
    ['{ "models": {\n', 'config.json:2:1: invalid JSON: unexpected end of file, expected a "key" in double quotes — is a closing } or ] missing?'],
    ["{ 'models': {} }", 'config.json:1:3: invalid JSON: expected a "key" in double quotes, got \' — JSON strings and keys need double quotes'],
    ['{ models: {} }', 'config.json:1:3: invalid JSON: expected a "key" in double quotes, got `models`'],
    ['{ "a" 1 }', 'config.json:1:7: invalid JSON: expected ":" after "a", got `1`'],
    ['{ "autostart": True }', 'config.json:1:16: invalid JSON: invalid value `True` — use a number, a "string", true, false or null'],
    ['{ "slots": 04 }', 'config.json:1:12: invalid JSON: invalid value `04` — use a number, a "string", true, false or null'],
    ['{ "path": "C:\\models" }', 'config.json:1:14: invalid JSON: invalid escape `\\m` in a string — write \\\\ for a backslash'],
    ['{ "path": "a.gguf\n}', 'config.json:1:18: invalid JSON: line break inside a string — close the string with " or write \\n'],
    ['{ "path": "a.gguf', 'config.json:1:11: invalid JSON: unterminated string — add the closing "'],
    ['{}\n}', 'config.json:2:1: invalid JSON: unexpected `}` after the end of the config — remove it'],
    ['', 'config.json:1:1: invalid JSON: the file is empty — write {} to use the defaults'],
    ['{ "a": }', 'config.json:1:8: invalid JSON: expected a value, got `}`'],
  ])('invalid JSON %j', async (body, message) => {
    await expect(load(body)).rejects.toMatchObject({ code: 'SW_ERR_CONFIG', message });
  });

  it.each([
    ['{\n  "models": {\n    "coder": { "path": "a" },\n    "coder": { "path": "b" }\n  }\n}', 'config.json:4:5: duplicate model name "coder" in models — rename or remove one of them'],
    ['{ "listen": { "port": 1, "port": 2 } }', 'config.json:1:26: duplicate key "listen.port" — remove one of them (JSON keeps only the last)'],
  ])('duplicate keys %j', async (body, message) => {
    await expect(load(body)).rejects.toMatchObject({ code: 'SW_ERR_CONFIG', message });
  });

  it('reports a missing explicit path', async () => {
    const path = join(tmp, 'nope.json');
    await expect(loadConfig({ path, env: {}, allowMissing: true })).rejects.toMatchObject({
      code: 'SW_ERR_CONFIG',
      message: `config file not found: ${path} — fix the path or create the file`,
    });
  });

  it('reports a missing $SLOTWISE_CONFIG even with allowMissing', async () => {
    const path = join(tmp, 'nope.json');
    await expect(loadConfig({ env: { SLOTWISE_CONFIG: path }, allowMissing: true })).rejects.toMatchObject({
      message: `config file not found: ${path} — fix the path or create the file`,
    });
  });

  it('uses defaults for a missing default file only with allowMissing', async () => {
    const env = { XDG_CONFIG_HOME: join(tmp, 'xdg'), HOME: tmp };
    expect(await loadConfig({ env, allowMissing: true })).toStrictEqual(defaultConfig());
    await expect(loadConfig({ env })).rejects.toMatchObject({
      code: 'SW_ERR_CONFIG',
      message: `config file not found: ${join(tmp, 'xdg/slotwise/config.json')} — create it or pass --config FILE`,
    });
  });

  it('reports a directory given as the config', async () => {
    await expect(loadConfig({ path: tmp, env: {} })).rejects.toMatchObject({
      message: `config path is a directory: ${tmp} — point it at a .json file`,
    });
  });
});
