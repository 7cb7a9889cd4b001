// Slot time from the daemon's lease records (Scheduler 'lease' events): who held a slot, from when
// to when. Pure: the typing and priority scenarios and their tests share it. Client timings never
// enter here: a slot is held from the daemon's dispatch to its release, which the client cannot see.
import type { LeaseRecord } from '../daemon/scheduler/scheduler';

export type LeaseTimes = Pick<LeaseRecord, 'requestId' | 'acceptedAt' | 'leasedAt' | 'releasedAt' | 'superseded'>;

export function leaseMs(r: Pick<LeaseRecord, 'leasedAt' | 'releasedAt'>): number {
  return Math.max(0, r.releasedAt - r.leasedAt);
}

/**
 * One burst's slot time: every lease of its requests, and the part spent on requests other than the
 * last one (`finalId`): superseded work, or with no session key work whose result the editor drops.
 */
export function burstSlotTime(records: readonly LeaseTimes[], finalId: string | undefined): { slotMs: number; wastedSlotMs: number; supersededSlotMs: number; leased: number } {
  let slotMs = 0;
  let wastedSlotMs = 0;
  let supersededSlotMs = 0;
  for (const r of records) {
    const ms = leaseMs(r);
    slotMs += ms;
    if (r.requestId !== finalId) wastedSlotMs += ms;
    if (r.superseded) supersededSlotMs += ms;
  }
  return { slotMs, wastedSlotMs, supersededSlotMs, leased: records.length };
}

/**
 * How long a request that arrived at `arrivedAt` had to wait for one slot to free: to the first lease
 * release at or after its arrival (any request's). Undefined when none came (the run ended first).
 */
export function firstReleaseAfter(releases: readonly number[], arrivedAt: number): number | undefined {
  let first: number | undefined;
  for (const t of releases) if (t >= arrivedAt && (first === undefined || t < first)) first = t;
  return first;
}

/** Releases in (arrivedAt, leasedAt]: 0 = it started on a free slot, 1 = on the first slot that freed, more = it let freed slots go to others. */
export function releasesWhileWaiting(releases: readonly number[], arrivedAt: number, leasedAt: number): number {
  let n = 0;
  for (const t of releases) if (t >= arrivedAt && t <= leasedAt) n++;
  return n;
}
