/**
 * When the running work on each node ends at the latest, as a scheduling cycle knows it: a lease
 * by its time limit, a preempted one by the end of its grace period, work granted in the cycle by
 * its time limit from `now`. Backfill reads it to find blocked requests' reserved starts (see
 * `backfill.ts`).
 *
 * Invariant: each node's list is sorted by end, ties in the order the work was added.
 */
import type { Ending, EndingsByNode } from './backfill';
import type { Allocation } from './cluster';
import type { Lease } from './types';

/** The ends of a cycle's running work, per node; built from the leases on first use. */
export class EndTimeline {
  private readonly byNode: EndingsByNode = new Map();
  /** Each ending's place in the order added: the tiebreak between equal ends. */
  private readonly added = new Map<Ending, number>();
  /** Ends set in the cycle, by lease id: victims chosen now end within their grace period. */
  private readonly endOf = new Map<string, number>();
  private built = false;

  constructor(
    private readonly leases: readonly Lease[],
    /** The grace (ms) a preempted lease has to stop. */
    private readonly graceOf: (l: Lease) => number,
  ) {}

  /** Each node's running work by end, built from the leases at the first call. */
  endings(): EndingsByNode {
    if (!this.built) {
      this.built = true;
      for (const l of this.leases) this.add(l.nodeId, { allocation: l, end: this.endOfLease(l) });
    }
    return this.byNode;
  }

  /** Work granted in the cycle, ending at `end` (ms; `Infinity` without a time limit). */
  granted(allocations: readonly Allocation[], end: number): void {
    if (!this.built) return;
    for (const a of allocations) this.add(a.nodeId, { allocation: a, end });
  }

  /** Victims chosen at `now`: they end by the end of their grace period. */
  preempted(victims: readonly Lease[], now: number | undefined): void {
    if (now !== undefined) for (const l of victims) this.endOf.set(l.leaseId, now + this.graceOf(l));
    if (!this.built || victims.length === 0) return;
    for (const list of this.byNode.values()) {
      let moved = false;
      for (const e of list) {
        const id = (e.allocation as Partial<Lease>).leaseId;
        const end = id === undefined ? undefined : this.endOf.get(id);
        if (end !== undefined && end !== e.end) {
          e.end = end;
          moved = true;
        }
      }
      if (moved) list.sort(this.byEnd);
    }
  }

  /** When a lease ends at the latest: as set in the cycle, else by its grace once preempted, else its time limit. */
  private endOfLease(l: Lease): number {
    return (
      this.endOf.get(l.leaseId) ??
      (l.preemptedAt !== undefined
        ? l.preemptedAt + this.graceOf(l)
        : l.timeLimitMs !== undefined
          ? l.grantedAt + l.timeLimitMs
          : Infinity)
    );
  }

  private readonly byEnd = (a: Ending, b: Ending): number =>
    a.end - b.end || (this.added.get(a) ?? 0) - (this.added.get(b) ?? 0);

  private add(nodeId: string, ending: Ending): void {
    let list = this.byNode.get(nodeId);
    if (!list) this.byNode.set(nodeId, (list = []));
    this.added.set(ending, this.added.size);
    let at = list.length;
    while (at > 0 && (list[at - 1] as Ending).end > ending.end) at--;
    list.splice(at, 0, ending);
  }
}
