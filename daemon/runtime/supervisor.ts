// Owns every llama-server the daemon runs: models → instances, start/stop intents per model,
// per-instance scraping while ready, and reaping of children a previous daemon left behind.
import { EventEmitter } from 'node:events';
import { availableParallelism } from 'node:os';
import type { Config, ModelConfig } from '../config/types';
import { SlotwiseError } from '../../shared/errors';
import type { Logger } from '../../platform/log';
import { readModelFile, readProjectorFile } from '../memory/model-file';
import { LlamaInstance, type InstanceOptions } from './instance';
import { scrapeLoop, type ScrapeResult } from './scraper';
import { plannedInstances, setsThreads, threadsPerInstance, withThreads } from './threads';
import type { InstanceStatus, Modality, ModelStatus } from '../../shared/protocol';
import { isAlive, isLlamaServer } from '../../platform/procfs';
import { isVerifiedProcess, processStartTime } from '../../platform/process-identity';
import { terminate } from '../../platform/process-group';
import { readPidRecords, type PidRecord, type StateDir } from '../../shared/state-dir';
import { rm } from 'node:fs/promises';

export interface SupervisorOptions {
  config: Config;
  binary: string;
  stateDir: StateDir;
  logger: Logger;
  parentDeathSignal?: boolean;
  /** This daemon's nonce, given to every child (see platform/proc.ts isVerifiedProcess). */
  nonce?: string;
  /** Passed to every instance (see InstanceOptions). */
  recordedPlacement?: InstanceOptions['recordedPlacement'];
}

interface ModelEntry {
  config: ModelConfig;
  /** From the GGUF header, read once at start; undefined until read or when unreadable. */
  info?: ModelStatus['info'];
  /** The autoscaler's latest decision, for status. */
  lastScale?: NonNullable<ModelStatus['scaling']>['last'];
  /** Wanted number of instances; 0 when down. */
  wanted: number;
  /** `slots: "auto"` as the loader last resolved it (loader.ts); a number config is used as is. */
  autoSlots?: number;
  instances: LlamaInstance[];
}

interface InstanceRuntime {
  scrape?: ScrapeResult;
  scrapeAbort?: AbortController;
  /** Brings the next /slots poll within the active cadence (a request started). */
  scrapeWake?: () => void;
  scrapeRecheck?: () => void;
}

export class Supervisor extends EventEmitter<{ change: []; instanceState: [LlamaInstance]; scrape: [LlamaInstance] }> {
  #opts: SupervisorOptions;
  #logger: Logger;
  /** `--threads` for instances whose args set none; see threads.ts. */
  #threads: number | undefined;
  #models = new Map<string, ModelEntry>();
  #runtime = new WeakMap<LlamaInstance, InstanceRuntime>();
  /** Instances taking no new requests until their in-flight ones finish (scale-down). */
  #draining = new Set<LlamaInstance>();
  /** Load state, last use and memory per model, from the on-demand loader (loader.ts). */
  #statusExtra: ((name: string) => Partial<ModelStatus>) | undefined;

  constructor(opts: SupervisorOptions) {
    super();
    this.#opts = opts;
    this.#logger = opts.logger;
    for (const model of opts.config.models) this.#models.set(model.name, { config: model, wanted: 0, instances: [] });
    const planned = plannedInstances(opts.config.models);
    this.#threads = threadsPerInstance(availableParallelism(), planned);
    if (this.#threads !== undefined && opts.config.models.some((m) => !setsThreads(m.args))) {
      this.#logger.info(`${planned} llama-server instance(s) may run at once on ${availableParallelism()} cores: each gets --threads ${this.#threads} unless its args set one`);
    }
  }

  /** Reads each model's GGUF header for status (layers, size, architecture) before any launch. */
  async readModelInfo(): Promise<void> {
    await Promise.all(
      [...this.#models.values()].map(async (entry) => {
        try {
          const file = await readModelFile(entry.config.path);
          const sum = file.summary;
          if (sum instanceof Error) throw sum;
          // A projector that cannot be read leaves modalities out; the launch fails with the reason.
          const projector = entry.config.mmproj ? await readProjectorFile(entry.config.mmproj).catch(() => undefined) : undefined;
          entry.info = {
            fileBytes: file.fileBytes,
            layers: sum.layers,
            architecture: sum.architecture,
            trainCtx: sum.contextLength,
            canInfill: file.canInfill,
            ...(projector ? { modalities: projector.modalities } : {}),
          };
        } catch (err) {
          // The instance's own preflight reports an unreadable file as its failure reason; status just lacks info.
          this.#logger.child(entry.config.name).debug(`no GGUF info: ${(err as Error).message}`);
        }
      }),
    );
    this.emit('change');
  }

  /** Starts a model with `autostart` at its initial replicas (ModelLoader.startAlways, after its memory check). */
  autostart(name: string): void {
    const entry = this.#entry(name);
    this.#scaleTo(entry, initialReplicas(entry.config));
  }

  /** How many replicas startModel runs: the configured number, at least one (the loader checks memory for all of them). */
  replicasToStart(name: string): number {
    return Math.max(1, initialReplicas(this.#entry(name).config));
  }

  /** Intent: run the model's configured replicas (at least one). */
  startModel(name: string): ModelStatus {
    const entry = this.#entry(name);
    this.#scaleTo(entry, this.replicasToStart(name));
    for (const inst of entry.instances) inst.start(); // also revives a failed instance
    return this.modelStatus(entry);
  }

  /** Intent: run no instance of the model. Resolves once every instance exited. */
  async stopModel(name: string): Promise<ModelStatus> {
    const entry = this.#entry(name);
    entry.wanted = 0;
    await Promise.all(entry.instances.map((i) => i.stop()));
    this.emit('change');
    return this.modelStatus(entry);
  }

  async restartModel(name: string): Promise<ModelStatus> {
    const entry = this.#entry(name);
    if (entry.wanted === 0) return this.startModel(name);
    await Promise.all(entry.instances.map((i) => i.restart()));
    return this.modelStatus(entry);
  }

  /** Intent: run exactly n instances (autoscaler). Extra instances stop at once; drain them first with drain(). */
  setReplicas(name: string, n: number): void {
    const entry = this.#entry(name);
    for (const inst of entry.instances.slice(n)) this.#draining.delete(inst);
    this.#scaleTo(entry, n);
  }

  /** Marks the model's highest-numbered running instance as draining and returns it. */
  drain(name: string): LlamaInstance | undefined {
    const entry = this.#entry(name);
    const inst = entry.instances[entry.wanted - 1];
    if (inst) this.#draining.add(inst);
    this.emit('change');
    return inst;
  }

  /** Whether every other wanted replica of the model takes requests (for a relaunch of `inst`, which would not). */
  #othersServing(entry: ModelEntry, inst: LlamaInstance): boolean {
    return entry.instances.slice(0, entry.wanted).every((i) => i === inst || this.takesRequests(i));
  }

  /**
   * Whether the scheduler may send new requests to `inst`: the one gate. The instance says whether it
   * can (ready, no lost connection being checked, no relaunch pending: LlamaInstance.routable); the
   * supervisor adds its own reason not to (draining for a scale-down).
   */
  takesRequests(inst: LlamaInstance): boolean {
    return inst.routable && !this.#draining.has(inst);
  }

  /** Slots per instance: the configured number, or what `"auto"` last resolved to (undefined until then). */
  slots(name: string): number | undefined {
    const e = this.#entry(name);
    return e.config.slots === 'auto' ? e.autoSlots : e.config.slots;
  }

  /**
   * The loader's choice for `slots: "auto"`, made once before the model's first launch and kept for the
   * daemon's life: instances are reused across down/up and the scheduler sizes its slot table per instance.
   */
  setAutoSlots(name: string, slots: number): void {
    const e = this.#entry(name);
    e.autoSlots ??= slots;
  }

  /** Instances the model should run now: 0 when down. */
  wanted(name: string): number {
    return this.#entry(name).wanted;
  }

  /** The loader adds its part of each model's status (load state, lastUsedAt, memory). */
  setStatusExtra(extra: (name: string) => Partial<ModelStatus>): void {
    this.#statusExtra = extra;
  }

  recordScaling(name: string, last: NonNullable<ModelStatus['scaling']>['last']): void {
    this.#entry(name).lastScale = last;
    this.emit('change');
  }

  /** Stops everything; used on daemon shutdown. */
  async shutdown(): Promise<void> {
    await Promise.all([...this.#models.values()].flatMap((e) => e.instances.map((i) => i.stop())));
  }

  modelNames(): string[] {
    return [...this.#models.keys()];
  }

  /**
   * The model a request names, or the only configured one when it names none.
   * Unknown → SW_ERR_MODEL_NOT_FOUND listing the known names; none named among several → SW_ERR_BAD_REQUEST.
   */
  resolveModel(name: string | undefined, where: string): string {
    if (name !== undefined) return this.#entry(name).config.name;
    const names = this.modelNames();
    if (names.length === 0) throw new SlotwiseError('SW_ERR_MODEL_NOT_FOUND', `${where}: no model is configured — add one under "models" in the config file (\`slotwise status\` names it) and restart the daemon`);
    if (names.length !== 1) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "model" is required — configured models: ${names.join(', ')}`);
    return names[0]!;
  }

  /** Whether the model's vocab has FIM tokens (llama-server's /infill needs them); undefined when its header was unreadable. */
  canInfill(name: string): boolean | undefined {
    return this.#entry(name).info?.canInfill;
  }

  /** What the model's projector reads, from its header; undefined without a projector or when the header was unreadable. */
  modalities(name: string): readonly Modality[] | undefined {
    return this.#entry(name).info?.modalities;
  }

  modelConfig(name: string): ModelConfig {
    return this.#entry(name).config;
  }

  instances(name?: string): LlamaInstance[] {
    const entries = name === undefined ? [...this.#models.values()] : [this.#entry(name)];
    return entries.flatMap((e) => e.instances);
  }

  /** The first replica of the model when every wanted one has failed (nothing will serve it until restarted), else undefined. */
  failedReplica(name: string): LlamaInstance | undefined {
    const e = this.#entry(name);
    const wanted = e.instances.slice(0, e.wanted);
    return wanted.length > 0 && wanted.every((i) => i.state === 'failed') ? wanted[0] : undefined;
  }

  instance(id: string): LlamaInstance | undefined {
    return this.instances().find((i) => i.id === id);
  }

  /** Polls the instance's /slots soon (scraper.ts recheck): requests wait for slots its last poll read busy. */
  recheckSlots(inst: LlamaInstance): void {
    this.#runtime.get(inst)?.scrapeRecheck?.();
  }

  /** The latest /slots + /metrics scrape of an instance (undefined unless ready). */
  scrape(inst: LlamaInstance): ScrapeResult | undefined {
    return this.#runtime.get(inst)?.scrape;
  }

  models(): ModelStatus[] {
    return [...this.#models.values()].map((e) => this.modelStatus(e));
  }

  modelStatus(entry: ModelEntry | string): ModelStatus {
    const e = typeof entry === 'string' ? this.#entry(entry) : entry;
    const c = e.config;
    return {
      name: c.name,
      path: c.path,
      slotsPerInstance: this.slots(c.name) ?? 0,
      ctxPerSlot: c.ctxPerSlot,
      gpuLayers: c.gpuLayers,
      kind: c.kind,
      replicas: e.wanted,
      queue: { waiting: 0, oldestWaitMs: 0 },
      instances: e.instances.map((i) => this.instanceStatus(i)),
      scaling: {
        mode: c.replicas === 'auto' ? 'auto' : 'fixed',
        min: c.replicas === 'auto' ? 1 : c.replicas,
        max: c.replicas === 'auto' ? c.maxReplicas : c.replicas,
        ...(e.instances.some((i) => this.#draining.has(i)) ? { draining: e.instances.filter((i) => this.#draining.has(i)).map((i) => i.id) } : {}),
        ...(e.lastScale ? { last: e.lastScale } : {}),
      },
      ...(e.info ? { info: e.info } : {}),
      ...this.#statusExtra?.(c.name),
    };
  }

  instanceStatus(inst: LlamaInstance): InstanceStatus {
    const s = inst.status();
    const scrape = this.#runtime.get(inst)?.scrape;
    if (inst.state === 'ready' && scrape) {
      s.slots = scrape.slots;
      if (scrape.tokensPerSecond !== undefined) s.tokensPerSecond = Math.round(scrape.tokensPerSecond * 10) / 10;
    }
    return s;
  }

  logsTail(opts: { model?: string; instance?: string; lines?: number }): string[] {
    const n = Math.min(Math.max(opts.lines ?? 100, 1), 5000);
    if (opts.instance) {
      const inst = this.instance(opts.instance);
      if (!inst) throw new SlotwiseError('SW_ERR_NOT_FOUND', `no instance "${opts.instance}" — known: ${this.instances().map((i) => i.id).join(', ') || 'none'}`);
      return inst.log.tail(n);
    }
    const insts = this.instances(opts.model);
    if (insts.length === 1) return insts[0]!.log.tail(n);
    return insts.flatMap((i) => i.log.tail(n).map((l) => `[${i.id}] ${l}`)).slice(-n);
  }

  /**
   * Kills llama-servers recorded in the state dir's pid files by an earlier daemon that died without
   * stopping them: only when that daemon is gone and the pid is provably the recorded child (same
   * start time, the daemon's nonce in its environment). A llama-server someone started by hand, or a
   * reused pid, fails that proof and is left alone; its stale record is removed.
   */
  async reapOrphans(): Promise<number> {
    let reaped = 0;
    for (const { file, record } of await readPidRecords(this.#opts.stateDir)) {
      if (record && orphanOfDeadDaemon(record) && isVerifiedProcess(record) && (await isLlamaServer(record.pid, record.binary))) {
        this.#logger.warn(`reaping orphan llama-server pid ${record.pid} (${record.instance}, port ${record.port}, left by daemon pid ${record.daemonPid})`);
        await terminate({ pid: record.pid }, { graceMs: 5000, orProcess: true, onError: (err) => this.#logger.warn(err.message) });
        reaped++;
      } else if (record && isAlive(record.pid)) {
        this.#logger.info(`pid record ${record.instance} names pid ${record.pid}, which is not a provable orphan of ours; left running, record removed`);
      }
      await rm(file, { force: true });
    }
    return reaped;
  }

  #entry(name: string): ModelEntry {
    const entry = this.#models.get(name);
    if (!entry) {
      throw new SlotwiseError(
        'SW_ERR_MODEL_NOT_FOUND',
        `unknown model "${name}" — configured models: ${this.modelNames().join(', ') || 'none (add one under "models" in the config)'}`,
      );
    }
    return entry;
  }

  #scaleTo(entry: ModelEntry, wanted: number): void {
    entry.wanted = wanted;
    while (entry.instances.length < wanted) entry.instances.push(this.#createInstance(entry, entry.instances.length + 1));
    for (const [i, inst] of entry.instances.entries()) {
      if (i < wanted) inst.start();
      else void inst.stop();
    }
    this.emit('change');
  }

  #createInstance(entry: ModelEntry, n: number): LlamaInstance {
    const inst = new LlamaInstance({
      id: `${entry.config.name}#${n}`,
      // "auto" unresolved (no plan possible, e.g. an unreadable file): 1 slot; the instance's preflight reports the file.
      model: withThreads({ ...entry.config, slots: this.slots(entry.config.name) ?? 1 }, this.#threads),
      binary: this.#opts.binary,
      timings: this.#opts.config.supervisor,
      stateDir: this.#opts.stateDir,
      logger: this.#logger,
      parentDeathSignal: this.#opts.parentDeathSignal,
      nonce: this.#opts.nonce,
      recordedPlacement: this.#opts.recordedPlacement,
      // Replicas relaunch one at a time: the model keeps serving on the others meanwhile.
      mayRelaunch: (inst) => this.#othersServing(entry, inst),
    });
    const rt: InstanceRuntime = {};
    this.#runtime.set(inst, rt);
    inst.on('state', (e) => {
      if (e.to === 'ready') this.#startScraping(inst, rt);
      else if (e.from === 'ready') {
        rt.scrapeAbort?.abort();
        rt.scrape = undefined;
      }
      this.emit('instanceState', inst);
      this.emit('change');
    });
    inst.on('progress', () => this.emit('change')); // load phase and progress in status (ModelLoader.statusOf)
    inst.on('requestStart', () => rt.scrapeWake?.());
    return inst;
  }

  #startScraping(inst: LlamaInstance, rt: InstanceRuntime): void {
    rt.scrapeAbort?.abort();
    const abort = new AbortController();
    rt.scrapeAbort = abort;
    let lastError = '';
    const scraper = scrapeLoop({
      target: inst.endpoint!,
      apiKey: inst.apiKey,
      signal: abort.signal,
      inFlight: () => inst.inFlight,
      onResult: (r) => {
        lastError = '';
        const changed = JSON.stringify(r.slots) !== JSON.stringify(rt.scrape?.slots) || r.tokensPerSecond !== rt.scrape?.tokensPerSecond;
        // Progress for the stall watchdog: llama-server answers /slots from its inference loop, between
        // batches, so an answer means the loop turns even while a long prompt is evaluated (no token,
        // no byte yet). A frozen process answers nothing.
        inst.noteProgress();
        rt.scrape = r;
        this.emit('scrape', inst);
        if (changed) this.emit('change');
      },
      onError: (err) => {
        // A scrape can fail while the process is dying; the exit handler reports that. Log once per distinct error.
        if (err.message !== lastError) this.#logger.child(inst.id).debug(`scrape failed: ${err.message}`);
        lastError = err.message;
      },
    });
    rt.scrapeWake = scraper.wake;
    rt.scrapeRecheck = scraper.recheck;
  }
}

/** The daemon that wrote the record is gone: its pid is dead, or now belongs to a process that started at another time. */
function orphanOfDeadDaemon(record: PidRecord): boolean {
  if (record.daemonPid === process.pid) return false;
  if (!isAlive(record.daemonPid)) return true;
  return record.daemonStartTime !== undefined && processStartTime(record.daemonPid) !== record.daemonStartTime;
}

function initialReplicas(model: ModelConfig): number {
  return model.replicas === 'auto' ? 1 : model.replicas;
}
