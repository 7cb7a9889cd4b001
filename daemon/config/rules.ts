// Every config key: its rule (type, range), default, fix hint, description and old names, in one place.
// To add a key: add it to its object's table below (TOP, a Group's `fields`, MODEL) and to the type in types.ts;
// validation, messages, defaults and the schema follow (run `npm run schema`); cross-field checks go in validate.ts.
import type { Config, ModelConfig } from './types';
import { anyString, arrayOf, bool, int, literalOr, ms, nonEmpty, oneOf, text, type Field, type Group, type Rule, type Shape } from './value-rules';

/** `listen.tls`: an object of two PEM paths; the keys themselves are checked in validate.ts (checkListen). */
const tlsFiles: Rule<{ cert: string; key: string }> = {
  ok: (v): v is { cert: string; key: string } => typeof v === 'object' && v !== null && !Array.isArray(v),
  expected: () => 'an object { "cert": FILE, "key": FILE }',
  schema: {
    type: 'object',
    properties: {
      cert: { type: 'string', minLength: 1, description: 'PEM certificate file (chain allowed).' },
      key: { type: 'string', minLength: 1, description: 'PEM private key file.' },
    },
    required: ['cert', 'key'],
    additionalProperties: false,
  },
};

/** queue.sessionHoldMs: the longest hold of a request in a typing burst (scheduler/session-pace.ts). */
export const DEFAULT_SESSION_HOLD_MS = 150;

/** queue.handoffTokens: how near its end a streamed request's slot is handed to the next waiter (scheduler/handoff.ts). */
export const DEFAULT_HANDOFF_TOKENS = 2;

/** What the whole file configures; the schema's top-level description. */
export const CONFIG_DESCRIPTION =
  'Configuration of the Slotwise daemon: where it listens, how requests queue, and the llama-server models it supervises. Default location: $SLOTWISE_CONFIG, else $XDG_CONFIG_HOME/slotwise/config.json (~/.config/slotwise/config.json).';

/** `"$schema"`: editors read it for completion; Slotwise only checks that it is a string. */
export const SCHEMA_KEY: Field<string> = {
  rule: anyString,
  hint: 'set it to the schema path or URL, or remove it',
  description: 'Path or URL of this schema, for editor completion. Ignored by Slotwise.',
};

/** limits.maxBodyBytes when it is not set and a model reads images (`mmproj`): a few photos as base64 data URLs. */
export const MEDIA_BODY_BYTES = 32 * 2 ** 20;

/** Top-level keys other than `$schema` and `models`, in the order they are listed in messages and the schema. */
export const TOP: Shape<Omit<Config, 'models' | 'source'>> = {
  listen: {
    description: 'Where the daemon serves its OpenAI-compatible API, /api, /metrics and WebSocket.',
    fields: {
      host: {
        rule: text('a host name or IP address such as "127.0.0.1"', '^[^\\s/]+$'),
        def: '127.0.0.1',
        hint: 'use "127.0.0.1" to accept local clients only',
        description: 'Address to bind. Keep 127.0.0.1 unless remote clients need the daemon.',
      },
      port: {
        rule: int(0, 65535),
        def: 7373,
        hint: 'use a free port such as 7373, or 0 for any free port',
        description: 'TCP port to bind; 0 picks any free port.',
      },
      allowedOrigins: {
        rule: arrayOf(
          text('an origin such as "http://localhost:5173" (no path, no trailing slash)', '^[A-Za-z][A-Za-z0-9+.-]*://[^/\\s]+$'),
          'an array of origins',
        ),
        def: [],
        hint: 'list the browser origins that may call the daemon, or [] for none',
        description:
          'Browser origins (scheme://host[:port], no path) allowed to call the daemon; requests with any other Origin header are refused.',
        examples: [['http://localhost:5173']],
      },
      // Hardening of the network surface: Host names, deadlines, connection cap, TLS (cross-checked in validate.ts checkListen).
      allowedHosts: {
        rule: arrayOf(text('a host name such as "box.lan" (no port, no scheme)', '^[^\\s/:]+$|^\\[[0-9a-fA-F:.]+\\]$'), 'an array of host names'),
        def: [],
        hint: 'list the Host names clients use to reach the daemon besides localhost, e.g. ["box.lan"]',
        description: "Host names (the Host header without port) accepted besides localhost and 127.0.0.1, e.g. the machine's LAN name; requests naming any other host are refused (DNS rebinding). Binding 0.0.0.0 does not widen this.",
        examples: [['box.lan']],
      },
      bodyTimeoutMs: {
        rule: ms(100),
        def: 30_000,
        hint: 'set how long a client may take to send a request body, in milliseconds (e.g. 30000)',
        description: 'How long a client may take to send a request body, in ms; slower uploads get 408. Headers must arrive within min(10000, this).',
      },
      maxConnections: {
        rule: int(1),
        // 1,000 streams from one client library can hold a few more connections than streams.
        def: 4096,
        hint: 'set the most open connections (e.g. 4096)',
        description: 'Most open connections (HTTP and WebSocket together); further connections are closed at once.',
      },
      tls: {
        rule: tlsFiles,
        hint: 'give the PEM certificate and key files, e.g. { "cert": "~/slotwise/cert.pem", "key": "~/slotwise/key.pem" }',
        description: 'Serve HTTPS with this PEM certificate and key (paths absolute, ~/…, or relative to the config file). Required when listen.host is not a loopback address, unless listen.insecure is true.',
      },
      insecure: {
        rule: bool,
        def: false,
        hint: 'use true only to serve plain HTTP beyond loopback on a trusted network',
        description: 'Allow plain HTTP when listen.host is not a loopback address (the token then crosses the network in clear text). Use only on a trusted network.',
      },
    },
  },
  llamaServer: {
    rule: nonEmpty,
    def: 'auto',
    hint: 'use "auto" to find or build llama-server, or the path of a llama-server binary',
    description:
      '"auto" finds or builds llama-server; otherwise the path of a llama-server binary (~ expanded, relative paths resolved against this file\'s folder).',
  },
  queue: {
    description: 'Requests waiting for a free slot.',
    fields: {
      maxWaiting: {
        rule: int(0),
        def: 256,
        hint: 'set how many requests may wait for a free slot (e.g. 256)',
        description: 'Most requests that may wait per model; further requests fail at once with SW_ERR_QUEUE_FULL.',
      },
      timeoutMs: {
        rule: ms(1),
        def: 120_000,
        hint: 'set how long a request may wait, in milliseconds (e.g. 120000)',
        description: 'How long a request may wait for a slot, in milliseconds, before it fails with SW_ERR_QUEUE_TIMEOUT. The time its model takes to load does not count.',
      },
      backgroundMaxWaitMs: {
        rule: ms(0),
        def: 30_000,
        hint: 'set how long background work may wait behind interactive work, in milliseconds (e.g. 30000)',
        description:
          'Interactive requests (editor completions, prompts) are served before background ones (X-Slotwise-Priority: background, benchmarks); a background request that has waited this long, in milliseconds, is then served like an interactive one, so it is never starved.',
      },
      sessionHoldMs: {
        rule: ms(0),
        def: DEFAULT_SESSION_HOLD_MS,
        hint: 'set the longest hold of a request in a typing burst, in milliseconds (e.g. 150; 0 = off)',
        description:
          'Newest wins (X-Slotwise-Session): while a session sends requests in a burst (an editor, a request per keystroke), each new one waits a little more than the session\'s learned gap between requests (the gap plus four mean deviations, at least 1.2 × the gap), at most this many milliseconds, before it takes a slot, so the next keystroke supersedes it before it runs. The first request of a session, or after a pause of 2 s or more, starts at once (after a shorter pause the session is still typing and its first request holds too); a session whose gaps are longer than this is never held. 0 = off.',
      },
      handoffTokens: {
        rule: int(0),
        def: DEFAULT_HANDOFF_TOKENS,
        hint: 'set how many tokens before a streamed request\'s end its slot is handed to the next queued request (e.g. 2; 0 = off)',
        description:
          'Slot handoff: when every slot of a replica is busy and a streamed request is this many tokens or fewer from its max_tokens (or n_predict), the next queued streamed request is sent to llama-server at once for that slot, which starts it the moment the slot frees instead of a round trip later. It still counts as queued until then. 0 = off.',
      },
    },
  },
  limits: {
    description: 'Request limits.',
    fields: {
      maxBodyBytes: {
        rule: int(1),
        def: 1_048_576,
        hint: 'set the largest request body in bytes (e.g. 1048576)',
        description: `Largest accepted request body in bytes. Default 1 MiB, or ${MEDIA_BODY_BYTES / 2 ** 20} MiB when a model has a projector (mmproj), whose requests carry images as base64 data URLs.`,
      },
    },
  },
  routing: {
    rule: oneOf(['slot-aware', 'round-robin'] as const),
    def: 'slot-aware',
    hint: 'use "slot-aware" (fewest busy slots first) or "round-robin"',
    description:
      'How a request picks a replica: "slot-aware" sends it to the replica with the fewest busy slots, "round-robin" takes turns.',
  },
  shutdownGraceMs: {
    rule: ms(0),
    def: 10_000,
    hint: 'set how long running requests may finish on shutdown, in milliseconds (e.g. 10000)',
    description:
      'On shutdown (SIGTERM, slotwise stop), how long running requests may finish before they end with an error event; queued and new requests get 503 at once.',
  },
  memoryBudgetMiB: {
    rule: int(1),
    hint: 'set the MiB Slotwise may use on each GPU and in host RAM (e.g. 8192), or remove it to use what is free',
    description:
      'Most memory, in MiB, that the models Slotwise loads may use on every device (each GPU; host RAM on a host without one). When a model must load and does not fit, the least recently used idle models are unloaded first. Default: none (what is free).',
    examples: [8192],
  },
  supervisor: {
    description: 'Lifecycle of the llama-server processes: health wait, stop, restart backoff and crash limits.',
    fields: {
      healthTimeoutMs: {
        rule: ms(1),
        def: 600_000,
        hint: 'set how long a model may take to load, in milliseconds (e.g. 600000)',
        description: 'How long a llama-server may take to load its model and answer /health, in milliseconds.',
      },
      stopGraceMs: {
        rule: ms(0),
        def: 10_000,
        hint: 'set the wait between SIGTERM and SIGKILL, in milliseconds (e.g. 10000)',
        description: 'Wait between SIGTERM and SIGKILL when stopping a llama-server, in milliseconds.',
      },
      backoffInitialMs: {
        rule: ms(0),
        def: 1_000,
        hint: 'set the first restart delay after a crash, in milliseconds (e.g. 1000)',
        description: 'First restart delay after a crash, in milliseconds; doubles per crash up to backoffMaxMs.',
      },
      backoffMaxMs: {
        rule: ms(0),
        def: 60_000,
        hint: 'set the longest restart delay, in milliseconds (e.g. 60000)',
        description: 'Longest restart delay, in milliseconds. Must be >= backoffInitialMs.',
      },
      healthyResetMs: {
        rule: ms(0),
        def: 300_000,
        hint: 'set the uptime after which the backoff resets, in milliseconds (e.g. 300000)',
        description: "Uptime after which a replica's restart backoff resets, in milliseconds.",
      },
      maxCrashes: {
        rule: int(1),
        def: 5,
        hint: 'set how many crashes within crashWindowMs mark a model failed (e.g. 5)',
        description: 'Crashes within crashWindowMs after which a replica is marked failed and no longer restarted.',
      },
      crashWindowMs: {
        rule: ms(1),
        def: 600_000,
        hint: 'set the window in which crashes are counted, in milliseconds (e.g. 600000)',
        description: 'Window in which crashes are counted against maxCrashes, in milliseconds.',
      },
      stallTimeoutMs: {
        rule: ms(100),
        def: 30_000,
        hint: 'set how long a llama-server may make no progress before it is restarted, in milliseconds (e.g. 30000)',
        description:
          'A ready replica with requests in flight that makes no progress (no bytes, no /slots answer), or whose /health stays silent, for this long is marked stalled, killed and restarted; requests that sent nothing yet are retried elsewhere.',
      },
    },
  },
  gpu: {
    description: 'GPU sampling.',
    fields: {
      sampleIntervalMs: {
        rule: ms(100),
        def: 1_000,
        hint: 'set the GPU sampling period in milliseconds (e.g. 1000)',
        description: 'How often GPU utilization and memory are sampled, in milliseconds.',
      },
    },
  },
  autoscale: {
    description:
      'Scale-out of models whose replicas is "auto": a replica is added when the model stays saturated (all slots busy, requests waiting) and memory allows; extra replicas are drained and stopped when idle.',
    fields: {
      saturatedForMs: {
        rule: ms(1000),
        def: 30_000,
        hint: 'set how long a model must stay saturated before a replica is added, in ms (e.g. 30000)',
        description: 'How long a model must stay saturated before another replica starts, in milliseconds.',
      },
      idleForMs: {
        rule: ms(1000),
        def: 300_000,
        hint: 'set how long an extra replica must stay idle before it is stopped, in ms (e.g. 300000)',
        description:
          'How long an extra replica must stay idle (no busy slot, no queue) before it is drained and stopped, in milliseconds.',
      },
      saturatedWaitMs: {
        rule: ms(0),
        def: 2_000,
        hint: 'set the queue wait at which an all-busy model counts as saturated, in ms (e.g. 2000)',
        description:
          'A model counts as saturated when all its slots are busy and its oldest queued request has waited this long, in milliseconds.',
      },
    },
  },
};

/** `models`: an object keyed by model name. */
export const MODELS_DESCRIPTION =
  'The models Slotwise runs, keyed by the name clients put in the request\'s "model" field. Names differing only in case are not allowed.';
export const MODEL_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$';

/** Flags Slotwise sets itself (a second copy would fight it) → what to do instead; `{model}` is the model's key. */
export const OWNED_ARGS: Readonly<Record<string, string>> = Object.fromEntries(
  (
    [
      [['--port'], 'remove it (each replica gets a free port; clients use listen.port)'],
      [['--host'], 'remove it (replicas listen on 127.0.0.1; clients use listen.host)'],
      [['-m', '--model'], 'use {model}.path instead'],
      [['-mm', '--mmproj'], 'use {model}.mmproj instead'],
      [['-md', '--model-draft', '--spec-draft-model'], 'use {model}.draft instead'],
      [['-np', '--parallel'], 'use {model}.slots instead'],
      [['-c', '--ctx-size'], 'use {model}.ctxPerSlot instead (Slotwise passes -c = slots × ctxPerSlot)'],
      [['-ngl', '--gpu-layers', '--n-gpu-layers'], 'use {model}.gpuLayers instead'],
      [['--api-key', '--api-key-file'], 'remove it (each replica gets a random key only the daemon knows; clients use the daemon token)'],
      [['--no-slots'], 'remove it (Slotwise reads /slots to count busy slots)'],
      [['-cram', '--cache-ram'], 'use {model}.promptCacheMiB instead'],
      [['--embedding', '--embeddings'], 'use {model}.kind "embedding" instead'],
      [['--rerank', '--reranking'], 'use {model}.kind "rerank" instead'],
    ] as const
  ).flatMap(([flags, fix]) => flags.map((flag) => [flag, fix])),
);

/** llama-server flags that would open a replica (or the host's files) to more than the daemon. */
export const UNSAFE_ARGS: Readonly<Record<string, string>> = Object.fromEntries(
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

// Any string passes the parser's type check (validate.ts then names the owned flag and its fix);
// the schema refuses owned flags outright so editors flag them too.
const argRule: Rule<string> = {
  ...anyString,
  schema: { ...anyString.schema, not: { pattern: `^(${[...Object.keys(OWNED_ARGS), ...Object.keys(UNSAFE_ARGS)].join('|')})(=.*)?$` } },
};

const PATH_HINT = "set it to the model's .gguf file (absolute, ~/…, or relative to the config file)";

/** See ModelConfig.promptCacheMiB. */
export const DEFAULT_PROMPT_CACHE_MIB = 'auto';

/** One entry of `models`; its keys in the order they are checked and listed in messages. */
export const MODEL: Group<Omit<ModelConfig, 'name'>> = {
  description: 'One model; each replica is one llama-server process with `slots` parallel slots.',
  fields: {
    path: {
      rule: nonEmpty,
      required: true,
      hint: PATH_HINT,
      description: "The model's .gguf file (~ expanded, relative paths resolved against this file's folder).",
      examples: ['~/models/qwen2.5-coder-7b-instruct-q4_k_m.gguf'],
    },
    mmproj: {
      rule: nonEmpty,
      hint: "set it to the model's projector file, the mmproj-*.gguf published beside the model (absolute, ~/…, or relative to the config file)",
      description:
        "The model's multimodal projector (llama-server --mmproj): the mmproj-*.gguf published beside a vision or audio model. With it, chat requests may carry images (image_url parts with data: URLs) or audio; its weights and encoder buffer count in the memory plan. ~ expanded, relative paths resolved against this file's folder.",
      examples: ['~/models/mmproj-gemma-3-4b-it-f16.gguf'],
    },
    draft: {
      rule: nonEmpty,
      hint: "set it to a small model of the same family and vocab as this one, e.g. a 0.5B beside a 32B (absolute, ~/…, or relative to the config file)",
      description:
        "A draft model for speculative decoding (llama-server --spec-draft-model, and --spec-type draft-simple unless args set a --spec-type): a small model of the same vocab proposes tokens the model checks in one pass. It runs with the same slots and context; its weights, KV cache and buffers count in the memory plan (-ngld, -ctkd, -ctvd in args place and type them). Status and /metrics report how many drafted tokens were accepted. ~ expanded, relative paths resolved against this file's folder.",
      examples: ['~/models/qwen2.5-coder-0.5b-instruct-q8_0.gguf'],
    },
    slots: {
      rule: literalOr(['auto'], int(1, 256)),
      def: 4,
      hint: 'set it to the number of parallel requests (e.g. 4), or "auto" for the most that fit memory',
      description:
        'Parallel requests per replica (llama-server -np); "auto" picks, before each launch, the most slots (up to maxSlots) whose memory plan fits the free memory (or memoryBudgetMiB) at ctxPerSlot.',
    },
    maxSlots: {
      rule: int(1, 256),
      def: 16,
      hint: 'set the most slots "auto" may pick (e.g. 16)',
      description: 'The most slots that slots "auto" picks.',
    },
    ctxPerSlot: {
      rule: int(128),
      def: 4096,
      hint: 'set it to the context length of one request in tokens (e.g. 4096)',
      description: 'Context length of one request in tokens; Slotwise passes -c = slots × ctxPerSlot.',
    },
    gpuLayers: {
      rule: literalOr(['auto', 'all'], int(0)),
      def: 'auto',
      hint: 'use "auto" to fit the GPU, "all", or a number of layers (0 = CPU only)',
      description:
        '"auto" lets llama-server fit the layers to GPU memory; "all" offloads every layer; a number offloads that many (0 = CPU only).',
    },
    replicas: {
      rule: literalOr(['auto'], int(0)),
      def: 1,
      hint: 'set how many llama-server processes to run (0 = configured but not started)',
      description:
        'llama-server processes to run for this model; 0 = configured but not started; "auto" lets Slotwise choose up to maxReplicas.',
    },
    autostart: {
      rule: bool,
      def: true,
      hint: 'use true to start the model with the daemon',
      description: "Start this model's replicas when the daemon starts.",
    },
    args: {
      rule: arrayOf(argRule, 'an array of strings'),
      def: [],
      hint: 'list extra llama-server flags as strings, e.g. ["--threads", "8"]',
      description:
        'Extra llama-server flags, one string per word. Flags Slotwise sets itself (--port, --host, -m, -np, -c, -ngl and their long forms, --api-key, --no-slots) are refused: use the matching key instead.',
      examples: [['--threads', '8']],
    },
    promptCacheMiB: {
      rule: literalOr(['auto'], int(0)),
      def: 'auto',
      hint: "set the MiB of RAM for llama-server's prompt cache (e.g. 512), \"auto\" to size it from the model, or 0 for none",
      description:
        "llama-server's prompt cache in host RAM (--cache-ram), MiB; 0 = off. \"auto\" (the default): 4 full contexts per slot of the model's KV bytes per token, at least 32 MiB and at most 4096 MiB or an eighth of host RAM; counted at its limit in the memory plan's host figure and the memory checks (memoryBudgetMiB, eviction). It is what lets a conversation return to a slot that served another one in between (with 0 and more conversations than slots, prompt-cache affinity rarely hits). Bounded because its cost per request grows with the prompts it holds (a 10-minute soak at llama-server's own 8192 grew to 522 MB and lost half its throughput): a number overrides.",
    },
    affinity: {
      rule: bool,
      def: true,
      hint: 'use true to route by prompt-cache affinity, false to ignore prompts when picking a slot',
      description:
        'Prompt-cache affinity: send each request to the free slot (on any replica) that last served the longest common prefix of its prompt, so llama-server reuses that prefix from its KV cache.',
    },
    maxReplicas: {
      rule: int(1),
      def: (m) => (typeof m.replicas === 'number' ? Math.max(m.replicas, 1) : 4),
      hint: 'set the most replicas this model may run (e.g. 4)',
      description:
        'Most replicas this model may run. Defaults to replicas (at least 1) when that is a number, else 4. Must be >= replicas.',
    },
    reservedSlots: {
      rule: int(0, 255),
      def: 0,
      hint: 'set how many slots only interactive requests may take (e.g. 1), fewer than slots',
      description:
        'Slots of this model (over all replicas) that background requests never take, so an interactive request finds one free at once. Must be < slots.',
    },
    kind: {
      rule: oneOf(['completion', 'embedding', 'rerank'] as const),
      def: 'completion',
      hint: 'use "completion" (text generation, /infill), "embedding" (/v1/embeddings) or "rerank" (/v1/rerank)',
      description:
        'What the model serves: "completion" (chat, completions and /infill), "embedding" (/v1/embeddings; Slotwise passes --embedding) or "rerank" (/v1/rerank; Slotwise passes --reranking).',
    },
    load: {
      rule: oneOf(['always', 'on-demand'] as const),
      def: 'always',
      hint: 'use "always" (run with the daemon) or "on-demand" (load on the first request)',
      description:
        '"always" runs the model as replicas and autostart say; "on-demand" loads it when the first request for it arrives (the request waits in the queue meanwhile) and may unload it when idle or to make room.',
    },
    idleUnloadMs: {
      rule: ms(0),
      def: 0,
      hint: 'set how long the model may stay idle before it is unloaded, in ms (e.g. 300000), or 0 for never',
      description:
        'With load "on-demand": unload the model after this many milliseconds with no request running or queued (0 = never), e.g. 300000; its next request loads it again. Ignored for load "always".',
    },
    pinned: {
      rule: bool,
      def: false,
      hint: 'use true to never unload this model to make room for another',
      description: 'Never unload this model to make room for another one (memoryBudgetMiB eviction).',
    },
  },
};

/** Old or llama-server names → the Slotwise key, relative to the object they appear in. */
export const RENAMED: Readonly<Record<string, string>> = {
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
