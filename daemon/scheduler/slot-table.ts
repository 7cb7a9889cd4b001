// The slots of one llama-server instance as the daemon knows them: which of its requests holds which
// slot (a lease, from dispatch until the upstream response ends), which slots someone else is using
// (seen busy in /slots with no lease: "foreign"), and what each slot last served (for prompt-cache
// affinity). Leases are exact at every instant; /slots polls only add what the daemon cannot know.
import type { RequestSource, SlotStatus } from '../../shared/protocol';
import { commonChunks, type PromptKey } from './prompt-key';
import type { SlotCandidate } from './slot-pick';

/** One of the daemon's requests running in a slot. */
export interface SlotLease {
  requestId: string;
  source: RequestSource;
  /** Epoch ms of dispatch. */
  since: number;
  /** Tokens decoded so far, where the daemon sees them (prompt jobs). */
  tokens?: number;
}

interface SlotState {
  lease?: SlotLease;
  /** The prompt this slot last served: llama-server keeps its KV cache until another prompt replaces it. */
  key?: PromptKey;
  lastUsedAt: number;
  /** Epoch ms the last lease here ended: /slots may still read busy for a moment after. */
  releasedAt: number;
  /** Whether that request ended with llama-server's answer complete (not aborted or cut): its task is over there too. */
  releasedComplete: boolean;
  /** The request handed this slot before it frees (scheduler #handTo): queued, starts at the release. */
  next?: string;
  /** Consecutive polls that read this slot busy while it had no lease of ours. */
  unleasedBusyPolls: number;
  /** Read busy a while after our aborted request's lease ended: llama-server is still cancelling it. */
  draining: boolean;
}

/** A free slot as the picker sees it. */
export interface FreeSlot {
  slot: number;
  key?: PromptKey;
  lastUsedAt: number;
}

/**
 * How long after one of our leases ended a busy reading of its slot is still taken to be ours:
 * llama-server marks a slot idle only after the response's last byte, so a poll landing just after
 * the end reads it busy. Counting that as foreign would keep the slot from the next request.
 */
export const RELEASE_LAG_MS = 250;
/**
 * After a client aborts, llama-server notices the closed connection and frees the slot within about
 * a second. A slot still read busy that long after our lease ended is finishing our own request: not
 * handed out (`id_slot` on a busy slot waits inside llama-server), and not foreign either.
 */
export const CANCEL_LAG_MS = 2000;
/** Polls a slot must read busy with no lease before status calls it foreign (it is avoided from the first). */
export const FOREIGN_AFTER_POLLS = 2;

function isFree(s: SlotState): boolean {
  return !s.lease && s.unleasedBusyPolls === 0 && !s.draining;
}

export class SlotTable {
  #slots: SlotState[] = [];

  constructor(size: number) {
    this.resize(size);
  }

  get size(): number {
    return this.#slots.length;
  }

  /** llama-server's /slots is the authority on how many slots there are; leases beyond it are kept. */
  resize(size: number): void {
    while (this.#slots.length < size) this.#slots.push({ lastUsedAt: 0, releasedAt: Number.NEGATIVE_INFINITY, releasedComplete: true, unleasedBusyPolls: 0, draining: false });
    while (this.#slots.length > size && !this.#slots[this.#slots.length - 1]!.lease) this.#slots.pop();
  }

  leased(): number {
    return this.#slots.reduce((n, s) => n + (s.lease ? 1 : 0), 0);
  }

  /** Slots without a lease that are not free: someone else's (at the last poll), or still cancelling ours. */
  unavailable(): number {
    return this.#slots.reduce((n, s) => n + (!s.lease && !isFree(s) ? 1 : 0), 0);
  }

  isForeign(slot: number): boolean {
    const s = this.#slots[slot];
    return !!s && !s.lease && s.unleasedBusyPolls >= FOREIGN_AFTER_POLLS;
  }

  /** The free slots as candidates on instance `instanceId`, appended to `out` (the scheduler lists every instance's into one). */
  free(instanceId: string, out: SlotCandidate[] = []): SlotCandidate[] {
    const slots = this.#slots;
    for (let slot = 0; slot < slots.length; slot++) {
      const s = slots[slot]!;
      if (!s.lease && isFree(s)) out.push({ slot, key: s.key, lastUsedAt: s.lastUsedAt, instanceId });
    }
    return out;
  }

  /** The slots that are not free (leased, someone else's, or still cancelling ours), appended to `out`. */
  inUse(out: number[] = []): number[] {
    const slots = this.#slots;
    for (let slot = 0; slot < slots.length; slot++) {
      const s = slots[slot]!;
      if (s.lease || !isFree(s)) out.push(slot);
    }
    return out;
  }

  /** The most chunks of `key` any slot's last prompt shares, busy or not. */
  shared(key: PromptKey): number {
    return this.#slots.reduce((most, s) => (s.key ? Math.max(most, commonChunks(s.key, key)) : most), 0);
  }

  /** What the picker would see of this slot were it free (a handoff's what-if). */
  slotInfo(slot: number): FreeSlot {
    const s = this.#slots[slot];
    return { slot, key: s?.key, lastUsedAt: s?.lastUsedAt ?? 0 };
  }

  /** Marks the request handed this slot before it frees (status shows it as `next`); undefined clears it. */
  setNext(slot: number, requestId: string | undefined): void {
    const s = this.#slots[slot];
    if (s) s.next = requestId;
  }

  lease(slot: number): SlotLease | undefined {
    return this.#slots[slot]?.lease;
  }

  /** Leases the slot; returns the prompt key it held before (what llama-server replaces, or extends). */
  take(slot: number, lease: SlotLease, key: PromptKey | undefined): PromptKey | undefined {
    const s = this.#slots[slot];
    if (!s || s.lease) throw new Error(`slot ${slot} is not free`); // a bug in the caller: never two leases on one slot
    const before = s.key;
    s.lease = lease;
    s.lastUsedAt = lease.since;
    // A prompt we cannot key (token arrays) still replaces the slot's cache: forget the old key.
    s.key = key;
    s.unleasedBusyPolls = 0;
    s.draining = false;
    return before;
  }

  /**
   * The lease ended. `complete`: llama-server's answer arrived whole, so its task there ended with it
   * (it releases the slot as it sends the final response); otherwise it may still be cancelling.
   */
  release(slot: number, at: number, complete = false): void {
    const s = this.#slots[slot];
    if (!s?.lease) return;
    s.lease = undefined;
    s.releasedAt = at;
    s.releasedComplete = complete;
    s.lastUsedAt = at; // least recently used counts from the end: a just-freed slot may still be finishing
  }

  /** One /slots poll: `busy` as llama-server read it when the poll was answered (`at`). */
  observe(polled: readonly Pick<SlotStatus, 'id' | 'busy'>[], at: number): void {
    this.resize(polled.length);
    for (const p of polled) {
      const s = this.#slots[p.id];
      if (!s) continue;
      const sinceRelease = at - s.releasedAt;
      const ours = !!s.lease || sinceRelease < RELEASE_LAG_MS;
      // Only an aborted request of ours can still hold the slot after the lag: after a complete one it is someone else's.
      s.draining = p.busy && !ours && !s.releasedComplete && sinceRelease < CANCEL_LAG_MS;
      const foreign = p.busy && !ours && !s.draining;
      s.unleasedBusyPolls = foreign ? s.unleasedBusyPolls + 1 : 0;
      // Someone else ran a prompt here: the cache no longer holds what we last sent.
      if (foreign) s.key = undefined;
    }
  }

  /** The process restarted (or is gone): its caches and foreign clients went with it. */
  forget(): void {
    for (const s of this.#slots) {
      s.key = undefined;
      s.lastUsedAt = 0; // empty again: llama-server's new process has served nothing
      s.unleasedBusyPolls = 0;
      s.draining = false;
    }
  }

  /**
   * Status rows: `busy` and the lease from the table (exact now), with llama-server's polled fields.
   * Built field by field in one order, not spread and pruned: with hundreds of slots this runs for
   * every status read, and `delete` would turn each idle row into a dictionary-mode object.
   */
  rows(polled: readonly SlotStatus[]): SlotStatus[] {
    const slots = this.#slots;
    const out = new Array<SlotStatus>(slots.length);
    for (let id = 0; id < slots.length; id++) {
      const s = slots[id]!;
      const p = polled[id]?.id === id ? polled[id] : polled.find((x) => x.id === id);
      const row: SlotStatus = { id, busy: false };
      if (p?.nCtx !== undefined) row.nCtx = p.nCtx;
      if (s.lease) {
        row.busy = true;
        row.requestId = s.lease.requestId;
        row.source = s.lease.source;
        row.since = s.lease.since;
        if (s.lease.tokens !== undefined) row.tokens = s.lease.tokens;
        if (s.next !== undefined) row.next = s.next;
        if (p) copyTask(row, p);
      } else if (this.isForeign(id)) {
        row.busy = true;
        row.foreign = true;
        if (p) copyTask(row, p);
      }
      // Otherwise idle as far as the daemon is concerned: llama-server's task fields are a past request's.
      out[id] = row;
    }
    return out;
  }
}

/** llama-server's fields of the task in a slot, from its last /slots poll. */
function copyTask(row: SlotStatus, p: SlotStatus): void {
  if (p.taskId !== undefined) row.taskId = p.taskId;
  if (p.nDecoded !== undefined) row.nDecoded = p.nDecoded;
  if (p.nPromptTokens !== undefined) row.nPromptTokens = p.nPromptTokens;
}
