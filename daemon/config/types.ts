// The validated config, as the rest of the daemon sees it: every field checked and every default applied.
// The keys, their checks, defaults and descriptions live in daemon/config/rules.ts.

/** `'auto'` leaves layer placement to llama-server (`--fit`); `'all'` or a count is passed as `-ngl`. */
export type GpuLayers = number | 'auto' | 'all';

/** One configured model; each replica is one llama-server process with `slots` parallel slots. */
export interface ModelConfig {
  /** The key in `models`: 1–64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit. */
  name: string;
  /** Absolute path of the GGUF file (`~` expanded, relative paths resolved against the config file's folder). */
  path: string;
  /** Parallel requests per replica (`-np`). Default 4, 1–256; `'auto'`: the most whose KV cache fits, up to maxSlots. */
  slots: number | 'auto';
  /** The most slots `'auto'` picks. Default 16, 1–256. */
  maxSlots: number;
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
  /** Absolute path of the model's multimodal projector GGUF (`--mmproj`): it reads images (or audio). Default none. */
  mmproj?: string;
  /** Absolute path of a draft model GGUF for speculative decoding (`--spec-draft-model`, with `--spec-type draft-simple`). Default none. */
  draft?: string;
  /** Extra llama-server flags, passed as given after Slotwise's own. Default []. */
  args: string[];
  /** llama-server's prompt cache in host RAM (`--cache-ram`), MiB; 0 = off; 'auto' sized from the model (daemon/memory/prompt-cache.ts). Default 'auto'. */
  promptCacheMiB: number | 'auto';
  /** Send a request to the free slot that last served the longest common prefix of its prompt. Default true. */
  affinity: boolean;
  /** What the model serves; decides the llama-server flags and which routes accept it. Default 'completion'. */
  kind: ModelKind;
  /** Slots (over all replicas) that background requests never take. Default 0, < slots. */
  reservedSlots: number;
  /** `'always'`: run per replicas/autostart; `'on-demand'`: load on the first request. Default 'always'. */
  load: 'always' | 'on-demand';
  /** On-demand models: unload after this many ms with no lease and nothing queued; 0 = never. Default 0. */
  idleUnloadMs: number;
  /** Never unloaded to make room for another model. Default false. */
  pinned: boolean;
}

/** A model as one llama-server runs it: `slots: 'auto'` resolved to a number before launch. */
export type LaunchModel = Omit<ModelConfig, 'slots'> & { slots: number };

/** `completion`: chat, completions, /infill; `embedding`: /v1/embeddings (`--embedding`); `rerank`: /v1/rerank (`--reranking`). */
export type ModelKind = 'completion' | 'embedding' | 'rerank';

/** The validated config with every default applied. */
export interface Config {
  /** Where the daemon listens. Defaults: 127.0.0.1, port 7373 (0 = any free port), no extra browser origins. */
  listen: {
    host: string;
    port: number;
    allowedOrigins: string[];
    /** Host names accepted besides loopback names. Default []. */
    allowedHosts: string[];
    /** The whole request body must arrive within this many ms (408 after). Default 30000. */
    bodyTimeoutMs: number;
    /** Open connections (HTTP and WebSocket) at most. Default 1024. */
    maxConnections: number;
    /** Serve HTTPS with these PEM files (absolute paths). Required beyond loopback unless `insecure`. */
    tls?: { cert: string; key: string };
    /** Allow plain HTTP on a non-loopback host. Default false. */
    insecure: boolean;
  };
  /** `'auto'` (find or build llama-server) or an absolute path to the binary. Default `'auto'`. */
  llamaServer: string;
  /** Requests waiting for a free slot. Defaults: 256 waiting, 120000 ms each, background served like interactive after 30000 ms, a typing burst's requests held at most 150 ms, slots handed off 2 tokens before a streamed request's end. */
  queue: { maxWaiting: number; timeoutMs: number; backgroundMaxWaitMs: number; sessionHoldMs: number; handoffTokens: number };
  /** Largest accepted request body in bytes. Default 1 MiB. */
  limits: { maxBodyBytes: number };
  /** How a request picks a replica. Default `'slot-aware'` (fewest busy slots). */
  routing: 'slot-aware' | 'round-robin';
  /** On shutdown, how long running requests may finish before they are ended with an error, in ms. Default 10000. */
  shutdownGraceMs: number;
  /** Child process lifecycle, all in ms except maxCrashes. Defaults 600000, 10000, 1000, 60000, 300000, 5, 600000. */
  supervisor: {
    healthTimeoutMs: number;
    stopGraceMs: number;
    backoffInitialMs: number;
    backoffMaxMs: number;
    healthyResetMs: number;
    maxCrashes: number;
    crashWindowMs: number;
    /** A ready instance with requests in flight and no progress, or no /health answer, for this long is killed and restarted. Default 30000. */
    stallTimeoutMs: number;
  };
  /** GPU sampling period in ms. Default 1000. */
  gpu: { sampleIntervalMs: number };
  /** Scale-out of models with `replicas: "auto"`. Defaults: 30000 ms saturated to add, 300000 ms idle to remove, saturated = all slots busy and the oldest request waiting 2000 ms. */
  autoscale: { saturatedForMs: number; idleForMs: number; saturatedWaitMs: number };
  /** MiB Slotwise may use on every device (each GPU, host RAM); undefined = what is free. */
  memoryBudgetMiB?: number;
  /** In the order of the file. */
  models: ModelConfig[];
  /** Absolute path the config was read from; undefined when defaults were used (no file). */
  source?: string;
}
