// Models on demand: loads a `load: "on-demand"` model on its first request (once, however many
// requests arrive meanwhile), plans its memory first and unloads least-recently-used idle models until
// it fits (memoryBudgetMiB, else free memory), unloads a model idle for idleUnloadMs, and keeps the load
// state, last use and memory of every model for status. The queue itself stays the scheduler's: it
// admits a request for an unloaded on-demand model (SchedulerHooks.onDemand) and tells this module
// when a model took a slot (onLease) or went idle (onIdle).
import { EventEmitter } from 'node:events';
import { totalmem } from 'node:os';
import type { Config } from '../config/types';
import type { Logger } from '../../platform/log';
import type { ModelLoadStatus, ModelMemoryStatus, ModelStatus } from '../../shared/protocol';
import { SlotwiseError } from '../../shared/errors';
import type { ModelFacts } from '../memory/model-facts';
import { readModelFacts } from '../memory/model-file';
import { autoSlots, checkFit, memoryError, modelPlanSettings, planMemory, promptCacheBytes, type FitPlan, type FreeMemory, type MemoryPlan } from '../memory/plan';
import { actualByDevice, addBytes, available, cacheByDevice, capacity, lessPending, pickVictim, planByDevice, withFreed, type DeviceBytes } from '../memory/budget';
import { planStatus } from '../memory/plan-status';
import { calibrated, type CalibrationStore } from '../memory/calibration';
import type { Supervisor } from './supervisor';
import type { LoadProgress } from './load-log';
import type { LlamaInstance } from './instance';

export type UnloadReason = 'idle' | 'evicted' | 'stopped';
export type LoadState = ModelLoadStatus['state'];

export interface LoaderOptions {
  supervisor: Supervisor;
  config: Config;
  logger: Logger;
  /** Free memory now (free-memory.ts readFreeMemory). */
  readFree: () => Promise<FreeMemory>;
  /** Whether the model has a lease or a queued request (Scheduler.busy). */
  busy: (model: string) => boolean;
  /** Requests queued for the model (Scheduler.waiting). */
  waiting: (model: string) => number;
  /** The load cannot happen: fail the requests waiting for it (Scheduler.failWaiters). */
  fail: (model: string, err: Error) => void;
  hooks?: {
    onLoaded?: (model: string, seconds: number) => void;
    onUnloaded?: (model: string, reason: UnloadReason) => void;
  };
  /** Plan vs actual across restarts (state dir calibration.json); none: plans are estimates only. */
  calibration?: CalibrationStore;
  /** How often a load that must wait for a busy model to go idle looks again, ms. */
  retryMs?: number;
  /** nvidia-smi indices of llama-server's CUDA0, CUDA1, … when CUDA_VISIBLE_DEVICES limits them (resources/visible-gpus.ts). */
  gpuOrder?: readonly number[];
}

interface Entry {
  /** Planning and eviction before the supervisor starts the model; undefined otherwise. */
  preparing?: Promise<void>;
  /** When the current load began (first request, or the first instance start). */
  loadStartedAt?: number;
  /** The current load was started by a request (not `slotwise up` or autostart): cancelling them all stops it. */
  byDemand?: boolean;
  ready: boolean;
  everLoaded: boolean;
  reason?: UnloadReason;
  lastUsedAt?: number;
  idleTimer?: NodeJS.Timeout;
  plan?: MemoryPlan;
  /** The estimate behind `plan` (before calibration) and its calibration key. */
  estimateBytes?: number;
  calibrationKey?: string;
  /** The load state last published and when it began (status `load.since`; 'loadState' events). */
  state: LoadState;
  since: number;
  /** Why the model cannot load (an "always" model whose plan does not fit): status and its requests show it. */
  error?: SlotwiseError;
  /** The planned load waits for room: another model that could make it is busy (or still loading). */
  waitingForRoom?: boolean;
  /** It was ready and is coming back without an unload (a crash, `slotwise restart`): its next ready is not a load. */
  relaunching?: boolean;
  /** Why the last on-demand load did not happen (no memory, every replica failed): status shows it until the next load starts. */
  lastFailure?: SlotwiseError;
}

export class ModelLoader extends EventEmitter<{ change: []; loadState: [model: string, state: LoadState, since: number] }> {
  #o: LoaderOptions;
  #models = new Map<string, Entry>();

  constructor(opts: LoaderOptions) {
    super();
    this.#o = opts;
    for (const name of opts.supervisor.modelNames()) this.#models.set(name, newEntry());
    opts.supervisor.setStatusExtra((name) => this.statusOf(name));
    opts.supervisor.on('instanceState', (inst) => this.#observe(inst.model.name));
  }

  /**
   * SchedulerHooks.onDemand: starts loading an on-demand model once (true). An "always" model: true while
   * startAlways checks its memory (the request waits for the launch), throws the error when it did not
   * fit, false otherwise (it was stopped: SW_ERR_NO_INSTANCE).
   */
  demand(model: string): boolean {
    const e = this.#entry(model);
    if (e.error && this.#o.supervisor.wanted(model) === 0) throw e.error; // an "always" model that did not fit
    if (this.#o.supervisor.modelConfig(model).load !== 'on-demand') return e.preparing !== undefined; // startAlways is checking its memory
    if (!e.preparing && this.#o.supervisor.wanted(model) === 0) {
      e.loadStartedAt = Date.now();
      e.byDemand = true;
      e.lastFailure = undefined;
      e.preparing = this.#prepare(model, e)
        .catch((err: Error) => {
          e.byDemand = undefined;
          if (err instanceof SlotwiseError) e.lastFailure = err;
          this.#o.logger.child(model).warn(`on-demand load failed: ${err.message}`);
          this.#o.fail(model, err);
        })
        .finally(() => {
          e.preparing = undefined;
          if (this.#o.supervisor.wanted(model) === 0) {
            e.byDemand = undefined;
            e.loadStartedAt = undefined;
          }
          this.#changed();
        });
      this.#changed();
    }
    return true;
  }

  /** SchedulerHooks.preparing: a load of the model is being planned (its memory checked, room made). */
  preparing(model: string): boolean {
    return this.#entry(model).preparing !== undefined;
  }

  /** SchedulerHooks.waitingForRoom: the planned load waits for a busy model to go idle (the queue timeout runs then). */
  waitingForRoom(model: string): boolean {
    return this.#entry(model).waitingForRoom === true;
  }

  /** SchedulerHooks.onLease. */
  used(model: string): void {
    const e = this.#entry(model);
    e.lastUsedAt = Date.now();
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.idleTimer = undefined;
  }

  /** SchedulerHooks.onIdle (a request ended or left the queue, none remain): stop a load nobody waits for any more; else arm the idle unload. */
  idle(model: string): void {
    const e = this.#entry(model);
    if (e.ready) e.lastUsedAt = Date.now(); // the end of a request is a use too: a long generation just ended is recent
    const cfg = this.#o.supervisor.modelConfig(model);
    const wanted = this.#o.supervisor.wanted(model);
    if (cfg.load === 'on-demand' && wanted > 0 && !e.ready && e.byDemand) {
      // Nobody waits for the load any more: its requests were cancelled, or it failed and the scheduler
      // failed them. Either way it stops; a failure stays in status, and the next request loads afresh.
      const failed = this.#o.supervisor.failedReplica(model);
      if (failed) {
        e.lastFailure = replicaFailure(failed);
        this.#o.logger.child(model).warn(`load failed (${failed.status().lastError ?? 'unknown reason'}); the next request tries again`);
      } else {
        this.#o.logger.child(model).info('load stopped: every request waiting for it was cancelled');
      }
      void this.#o.supervisor.stopModel(model);
      return;
    }
    this.#armIdle(model, e);
  }

  /**
   * `slotwise up`: a model that is down gets the same memory check as an on-demand load (never-fits
   * error, LRU eviction) before it starts; with nothing to evict and no room, SW_ERR_NOT_ENOUGH_MEMORY
   * names what is free. A running or failed model is (re)started as before.
   */
  async start(model: string): Promise<ModelStatus> {
    const e = this.#entry(model);
    if (this.#o.supervisor.wanted(model) === 0) {
      await e.preparing;
      if (this.#o.supervisor.wanted(model) === 0) await this.#makeRoom(model, e, { wait: false });
    }
    e.error = undefined;
    e.lastFailure = undefined;
    return this.#o.supervisor.startModel(model);
  }

  /** `slotwise restart`: a model that is down starts as `up` starts it, after the same memory check. */
  async restart(model: string): Promise<ModelStatus> {
    if (this.#o.supervisor.wanted(model) === 0) return this.start(model);
    return this.#o.supervisor.restartModel(model);
  }

  /** Unloads a model (idle timer, eviction); counted once its instances left ready. */
  async unload(model: string, reason: UnloadReason): Promise<void> {
    const e = this.#entry(model);
    e.reason = reason;
    this.#o.logger.child(model).info(`unloading (${reason})`);
    await this.#o.supervisor.stopModel(model);
  }

  statusOf(model: string): Partial<ModelStatus> {
    const e = this.#models.get(model);
    if (!e) return {};
    return {
      load: this.#loadStatus(model, e),
      ...(e.lastUsedAt !== undefined ? { lastUsedAt: e.lastUsedAt } : {}),
      ...(e.plan ? { memory: this.#memoryStatus(model, e.plan) } : {}),
    };
  }

  /**
   * Plans every model once for status, and resolves `slots: "auto"` of the "always" models (await it
   * before they start). An on-demand "auto" model is resolved at its first load, against the memory then.
   */
  async planAll(): Promise<void> {
    const free = await this.#o.readFree().catch(() => ({ host: 0, gpus: [] }));
    for (const name of this.#models.keys()) {
      const c = this.#o.supervisor.modelConfig(name);
      if (c.slots === 'auto' && c.load === 'on-demand') continue;
      const facts = await this.#facts(name);
      if (facts && !this.#entry(name).plan) this.#entry(name).plan = await this.#plan(name, facts, free);
    }
    this.#changed();
  }

  /**
   * Starts the `load: "always"` models with `autostart`, one after the other, each after the same memory
   * check as a load on demand: a model that never fits (memoryBudgetMiB, else free memory) stays unloaded
   * with SW_ERR_NOT_ENOUGH_MEMORY in status, the log and its requests; one that fits only without idle
   * on-demand models unloads those first (LRU); one that does not fit next to the models already
   * started is not launched either (an OOM would take the others down with it). The others still start.
   */
  async startAlways(): Promise<void> {
    const names = this.#o.supervisor.modelNames().filter((name) => {
      const c = this.#o.supervisor.modelConfig(name);
      return c.load === 'always' && c.autostart && this.#o.supervisor.wanted(name) === 0;
    });
    // All of them read `loading` (planning) from now on, and a request for one waits in the queue (demand).
    const turns = names.map((name) => {
      let done!: () => void;
      this.#entry(name).preparing = new Promise<void>((r) => (done = r));
      return done;
    });
    this.#changed();
    for (const [i, name] of names.entries()) {
      const e = this.#entry(name);
      try {
        await this.#makeRoom(name, e, { wait: false });
        e.error = undefined;
      } catch (err) {
        if (err instanceof SlotwiseError && err.code === 'SW_ERR_NOT_ENOUGH_MEMORY') {
          e.error = err;
          this.#o.logger.child(name).error(`not started: ${err.message}`);
          this.#o.fail(name, err);
          continue;
        }
        // Free memory could not be read: start unchecked, as before the check existed.
        this.#o.logger.child(name).warn(`memory check failed (${(err as Error).message}); starting without it`);
      } finally {
        e.preparing = undefined;
        turns[i]!();
        this.#changed();
      }
      this.#o.supervisor.autostart(name);
    }
  }

  close(): void {
    for (const e of this.#models.values()) if (e.idleTimer) clearTimeout(e.idleTimer);
  }

  // ------------------------------------------------------------------------------------------

  /**
   * Plan, make room, start: the part of a load before llama-server runs. The request that called
   * demand() is already queued by the first check: open() and acquire() run in one synchronous step
   * (api/openai.ts, api/jobs.ts via dispatch()), and this starts after an await.
   */
  async #prepare(model: string, e: Entry): Promise<void> {
    if (!(await this.#makeRoom(model, e, { wait: true }))) return;
    if (this.#o.waiting(model) === 0) return;
    this.#o.logger.child(model).info(`loading on demand${e.plan ? ` (plan ${(e.plan.total / 2 ** 20).toFixed(1)} MiB)` : ''}`);
    this.#o.supervisor.startModel(model);
  }

  /**
   * Plans the model and unloads LRU idle models until it fits; false when a wait for room ended
   * because nobody waits any more. `wait: false` (slotwise up) throws instead of waiting for a busy model.
   */
  async #makeRoom(model: string, e: Entry, opts: { wait: boolean }): Promise<boolean> {
    const facts = await this.#facts(model);
    for (;;) {
      if (opts.wait && this.#o.waiting(model) === 0) return false; // every waiting request was cancelled
      if (!facts) return true; // unreadable header: the instance's own preflight reports it
      const budget = this.#o.config.memoryBudgetMiB;
      // Without a budget the check is against free memory, which does not show yet what a model still
      // loading will take (two "always" models started together would both see it all): count their plans.
      const read = await this.#o.readFree();
      const free = budget === undefined ? lessPending(read, this.#pendingOthers(model)) : read;
      e.plan = await this.#plan(model, facts, free);
      // Every replica the start launches: each is a llama-server of its own, with its own buffers and cache.
      const replicas = this.#o.supervisor.replicasToStart(model);
      const plan = timesReplicas(e.plan, replicas);
      const who = `model "${model}"${replicas > 1 ? ` (${replicas} replicas)` : ''}`;
      const used = this.#usedByOthers(model);
      const ever = checkFit(plan, capacity(free, used, budget));
      if (!ever.fits) throw memoryError(who, ever, free.gpus.length > 0);
      const now = checkFit(plan, available(free, used, budget));
      if (now.fits) return true;
      // Only on-demand models are unloaded to make room: an "always" one would not come back by itself.
      // One still loading is not idle, even with no request (`slotwise up`): it is waited for, not undone.
      const candidates = this.#loadedOthers(model)
        .filter((name) => this.#o.supervisor.modelConfig(name).load === 'on-demand')
        .map((name) => ({ name, lastUsedAt: this.#entry(name).lastUsedAt, idle: this.#readyInstance(name) !== undefined && !this.#o.busy(name), pinned: this.#o.supervisor.modelConfig(name).pinned }));
      if (!opts.wait) {
        // Nothing to wait for: unload nobody unless unloading every idle candidate makes room.
        const evictable = new Set(candidates.filter((c) => c.idle && !c.pinned).map((c) => c.name));
        const rest = this.#loadedOthers(model).filter((n) => !evictable.has(n));
        const room = available(withFreed(free, this.#usedBy([...evictable])), this.#usedBy(rest), budget);
        if (!checkFit(plan, room).fits) throw this.#heldBy(model, memoryError(who, now, free.gpus.length > 0));
      }
      const victim = pickVictim(candidates);
      if (victim) await this.unload(victim, 'evicted');
      // Waiting helps only while a model that could make room is busy; pinned or "always" ones never will.
      else if (!opts.wait || !candidates.some((c) => !c.pinned)) throw this.#heldBy(model, memoryError(who, now, free.gpus.length > 0));
      else {
        e.waitingForRoom = true; // wait for a busy model to go idle
        await new Promise((r) => setTimeout(r, this.#o.retryMs ?? 500)).finally(() => (e.waitingForRoom = undefined));
      }
    }
  }

  /**
   * A fits-but-not-now error with the models that hold the memory and why the load may not unload them,
   * so the user knows what to stop: `… — held by "p" (pinned), "al" ("always"): \`slotwise down p\` frees its share`.
   */
  #heldBy(model: string, err: SlotwiseError): SlotwiseError {
    const others = this.#loadedOthers(model);
    if (others.length === 0) return err;
    const why = (name: string): string => {
      const c = this.#o.supervisor.modelConfig(name);
      if (c.load !== 'on-demand') return '"always"';
      if (c.pinned) return 'pinned';
      if (!this.#readyInstance(name)) return 'loading';
      return this.#o.busy(name) ? 'busy' : 'idle';
    };
    const list = others.map((n) => `"${n}" (${why(n)})`).join(', ');
    return new SlotwiseError(err.code, `${err.message}; held by ${list}: \`slotwise down ${others[0]}\` frees its share`);
  }

  /** The estimate, replaced per device by what llama-server allocated last time for the same file and settings. */
  async #plan(model: string, facts: ModelFacts, free: FreeMemory): Promise<MemoryPlan> {
    const c = this.#o.supervisor.modelConfig(model);
    // The host prompt cache counts at its limit (DevicePlan.promptCache, in the host total the checks use),
    // sized as the instance sizes its --cache-ram. Calibration leaves it alone: llama-server's load-time
    // buffers do not include it (it fills later), so the estimate kept beside them is without it.
    const settings = { ...modelPlanSettings(c, totalmem()), slots: this.#slotsFor(model, facts, free) };
    const plan = planMemory(facts, settings, free);
    const e = this.#entry(model);
    e.estimateBytes = plan.total - promptCacheBytes(plan);
    e.calibrationKey = await this.#o.calibration?.key(c.path, settings);
    const known = e.calibrationKey ? await this.#o.calibration!.get(e.calibrationKey) : undefined;
    return known ? calibrated(plan, known) : plan;
  }

  /** Slots of the next launch: the configured number, else `"auto"` resolved once (the most that fit now, at least 1). */
  #slotsFor(model: string, facts: ModelFacts, free: FreeMemory): number {
    const known = this.#o.supervisor.slots(model);
    if (known !== undefined) return known;
    const c = this.#o.supervisor.modelConfig(model);
    const room = available(free, this.#usedByOthers(model), this.#o.config.memoryBudgetMiB);
    const slots = autoSlots(facts, c, room, totalmem());
    this.#o.logger.child(model).info(`slots "auto": ${slots} (the most of maxSlots ${c.maxSlots} that fit at ctxPerSlot ${c.ctxPerSlot})`);
    this.#o.supervisor.setAutoSlots(model, slots);
    return slots;
  }

  /** After a load: keeps what llama-server allocated for the next plan of the same file and settings. */
  async #calibrate(model: string, e: Entry): Promise<void> {
    if (!this.#o.calibration) return;
    if (!e.plan) {
      const facts = await this.#facts(model);
      if (!facts) return;
      e.plan = await this.#plan(model, facts, await this.#o.readFree());
    }
    const inst = this.#readyInstance(model);
    const placement = inst?.status().offload;
    if (placement?.recordedAt !== undefined) return; // this load printed nothing new: it ran on the recorded placement
    const actual = reportedBytes(inst, this.#o.gpuOrder);
    if (!actual || !e.calibrationKey || e.estimateBytes === undefined) return;
    await this.#o.calibration.record(e.calibrationKey, e.estimateBytes, actual, placement);
    this.#changed();
  }

  /** Read each time: model-file.ts keeps one read per version of the file, so a file added or swapped after the daemon started is planned as it is now. */
  async #facts(model: string): Promise<ModelFacts | undefined> {
    const c = this.#o.supervisor.modelConfig(model);
    return (await readModelFacts(c.path, { model, mmproj: c.mmproj, draft: c.draft })) ?? undefined;
  }

  /** Models other than `model` that run (or start) now. */
  #loadedOthers(model: string): string[] {
    return this.#o.supervisor.modelNames().filter((n) => n !== model && this.#o.supervisor.wanted(n) > 0);
  }

  /** What the other loaded models hold per device: llama-server's buffers where known, else the plan. */
  #usedByOthers(model: string): DeviceBytes {
    return this.#usedBy(this.#loadedOthers(model));
  }

  /** Per instance: llama-server's buffers once ready, else the plan; either way with the prompt cache at its limit. */
  #usedBy(names: readonly string[]): DeviceBytes {
    const used: DeviceBytes = new Map();
    for (const name of names) {
      const plan = this.#entry(name).plan;
      for (const inst of this.#o.supervisor.instances(name)) {
        const actual = reportedBytes(inst, this.#o.gpuOrder);
        if (actual) {
          addBytes(used, actual);
          if (plan) addBytes(used, cacheByDevice(plan));
        } else if (plan) addBytes(used, planByDevice(plan));
      }
    }
    return used;
  }

  /**
   * What the other running models will still take that free memory does not show yet, per device: the
   * plans of those with no ready instance, and the prompt caches of the ready ones at their limit (they
   * fill as prompts are saved; free memory shows only what they filled so far, so this is an upper bound).
   */
  #pendingOthers(model: string): DeviceBytes {
    const pending: DeviceBytes = new Map();
    for (const name of this.#loadedOthers(model)) {
      const plan = this.#entry(name).plan;
      if (!plan) continue;
      // Per wanted replica: a loading one's whole plan, a ready one's prompt cache still to fill.
      const wanted = this.#o.supervisor.instances(name).slice(0, this.#o.supervisor.wanted(name));
      const ready = wanted.filter((i) => i.state === 'ready').length;
      if (wanted.length > ready) addBytes(pending, planByDevice(plan), wanted.length - ready);
      if (ready > 0) addBytes(pending, cacheByDevice(plan), ready);
    }
    return pending;
  }

  /** Follows the model's instances: counts a load when the first becomes ready, an unload when the last leaves. */
  #observe(model: string): void {
    const e = this.#entry(model);
    const insts = this.#o.supervisor.instances(model);
    const ready = insts.some((i) => i.state === 'ready');
    const wanted = this.#o.supervisor.wanted(model);
    if (!ready && !e.ready && wanted > 0 && e.loadStartedAt === undefined) e.loadStartedAt = Date.now(); // `up`, autostart
    if (ready && !e.ready) {
      e.ready = true;
      e.everLoaded = true;
      e.reason = undefined;
      const seconds = (Date.now() - (e.loadStartedAt ?? Date.now())) / 1000;
      e.loadStartedAt = undefined;
      e.byDemand = undefined;
      // Back after a crash or a restart: the model never unloaded, so this is no new load (loads − unloads = loaded).
      if (!e.relaunching) this.#o.hooks?.onLoaded?.(model, seconds);
      e.relaunching = undefined;
      void this.#calibrate(model, e).catch((err: Error) => this.#o.logger.child(model).warn(`could not keep the memory calibration: ${err.message}`));
      if (!this.#o.busy(model)) this.#armIdle(model, e);
    } else if (!ready && e.ready && wanted === 0) {
      e.ready = false;
      const reason = e.reason ?? 'stopped';
      e.reason = reason;
      if (e.idleTimer) clearTimeout(e.idleTimer);
      e.idleTimer = undefined;
      this.#o.hooks?.onUnloaded?.(model, reason);
    } else if (!ready && e.ready) {
      e.ready = false; // a crash or a restart: the supervisor brings it back; not an unload
      e.relaunching = true;
    }
    if (wanted === 0 && !e.preparing) {
      // Stopped while it came back from a crash or restart: the unload its load was still owed.
      if (e.relaunching) this.#o.hooks?.onUnloaded?.(model, (e.reason ??= 'stopped'));
      e.loadStartedAt = undefined;
      e.byDemand = undefined;
      e.relaunching = undefined;
    }
    this.#changed();
  }

  #armIdle(model: string, e: Entry): void {
    const c = this.#o.supervisor.modelConfig(model);
    // Only an on-demand model comes back by itself on its next request; an "always" one would stay down.
    const ms = c.load === 'on-demand' ? c.idleUnloadMs : 0;
    if (ms <= 0 || !e.ready || e.idleTimer) return;
    e.idleTimer = setTimeout(() => {
      e.idleTimer = undefined;
      if (!this.#o.busy(model) && e.ready) void this.unload(model, 'idle');
    }, ms);
    e.idleTimer.unref();
  }

  #stateOf(model: string, e: Entry): LoadState {
    if (e.ready) return 'ready';
    if (e.preparing) return 'loading';
    // Every replica failed: nothing is loading (an on-demand load is stopped once its requests are failed, and the next request loads afresh; `slotwise up` restarts it).
    if (this.#o.supervisor.wanted(model) > 0 && this.#o.supervisor.failedReplica(model) === undefined) return 'loading';
    return 'unloaded';
  }

  /** Publishes load state changes: each one stamps `since` and emits 'loadState' (status pushes those at once), then 'change'. */
  #changed(): void {
    for (const [name, e] of this.#models) this.#track(name, e);
    this.emit('change');
  }

  #track(model: string, e: Entry): LoadState {
    const state = this.#stateOf(model, e);
    if (state !== e.state) {
      e.state = state;
      e.since = Date.now();
      this.emit('loadState', model, state, e.since);
    }
    return state;
  }

  #loadStatus(model: string, e: Entry): ModelLoadStatus {
    const state = this.#track(model, e);
    if (state === 'ready') return { state, since: e.since };
    if (state === 'loading') {
      const insts = this.#o.supervisor.instances(model);
      if (e.preparing && this.#o.supervisor.wanted(model) === 0) return { state, since: e.since, phase: 'planning' };
      const p = mostAdvanced(insts);
      return { state, since: e.since, phase: p.phase, ...(p.progress !== undefined ? { progress: p.progress } : {}) };
    }
    if (e.error) return { state, since: e.since, reason: 'no-memory', error: { code: e.error.code, message: e.error.message } };
    if (e.lastFailure) {
      const reason = e.lastFailure.code === 'SW_ERR_NOT_ENOUGH_MEMORY' ? 'no-memory' : 'failed';
      return { state, since: e.since, reason, error: { code: e.lastFailure.code, message: e.lastFailure.message } };
    }
    const failed = this.#o.supervisor.failedReplica(model);
    if (failed) return { state, since: e.since, reason: 'failed', error: { code: 'SW_ERR_INSTANCE_FAILED', message: replicaFailure(failed).message } };
    return { state, since: e.since, reason: e.reason ?? (e.everLoaded ? 'stopped' : 'never-loaded') };
  }

  #memoryStatus(model: string, plan: MemoryPlan): ModelMemoryStatus {
    return planStatus(plan, reportedBytes(this.#readyInstance(model), this.#o.gpuOrder));
  }

  #readyInstance(model: string): LlamaInstance | undefined {
    return this.#o.supervisor.instances(model).find((i) => i.state === 'ready');
  }

  #entry(model: string): Entry {
    this.#o.supervisor.modelConfig(model); // throws SW_ERR_MODEL_NOT_FOUND
    let e = this.#models.get(model);
    if (!e) this.#models.set(model, (e = newEntry()));
    return e;
  }
}

/** Why a model whose every replica failed cannot serve: status and the log say it in these words. */
function replicaFailure(failed: LlamaInstance): SlotwiseError {
  return new SlotwiseError('SW_ERR_INSTANCE_FAILED', `[${failed.id}] failed: ${failed.status().lastError ?? 'unknown reason'}`);
}

/** A plan for `n` replicas, as the fit checks read it: each device's total (and prompt cache) times n. */
function timesReplicas(plan: MemoryPlan, n: number): FitPlan {
  if (n === 1) return plan;
  return { devices: plan.devices.map((d) => ({ ...d, total: d.total * n, ...(d.promptCache ? { promptCache: d.promptCache * n } : {}), ...(d.checkpoints ? { checkpoints: d.checkpoints * n } : {}) })) };
}

function newEntry(): Entry {
  return { ready: false, everLoaded: false, state: 'unloaded', since: Date.now() };
}

const PHASES: LoadProgress['phase'][] = ['starting', 'weights', 'context', 'warmup'];

/** The load of the replica furthest on: the model is ready with its first ready replica. */
function mostAdvanced(insts: readonly LlamaInstance[]): LoadProgress {
  let most: LoadProgress | undefined;
  for (const inst of insts) {
    const p = inst.state === 'starting' || inst.state === 'loading' ? inst.loadProgress() : { phase: 'starting' as const };
    if (!most || PHASES.indexOf(p.phase) > PHASES.indexOf(most.phase) || (p.phase === most.phase && (p.progress ?? 0) > (most.progress ?? 0))) most = p;
  }
  return most ?? { phase: 'starting' };
}

/** What a ready instance's llama-server reported allocating, per device; undefined before it is ready or when its log named no buffer. */
function reportedBytes(inst: LlamaInstance | undefined, gpuOrder?: readonly number[]): DeviceBytes | undefined {
  if (inst?.state !== 'ready') return undefined;
  const buffers = inst.status().offload?.buffers;
  return buffers && Object.keys(buffers).length ? actualByDevice(buffers, gpuOrder) : undefined;
}
