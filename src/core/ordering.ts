/**
 * The order in which queued requests are considered. Criteria, in turn:
 * 1. priority, larger first, raised by aging for the time waited when `now` and `agingIntervalMs`
 *    are given (see `priority.ts`); with fair share on, aging lifts a request only up to the
 *    highest priority of the queue it has caught up with (see `cycleQueue`);
 * 2. when fair share is on, the team's dominant resource share (DRF), smaller first;
 * 3. submit time, earlier first;
 * 4. arrival sequence in the pool, smaller first (a total order: no two requests compare equal).
 */
import { requestPriority } from './priority';
import type { PendingRequest } from './types';

/** What the order depends on beyond the requests themselves. */
export interface OrderingOptions {
  /** Time (ms) for aging. @default no aging */
  now?: number;
  /** One priority point per this many ms waited. @default 0 (no aging) */
  agingIntervalMs?: number;
  /** Dominant resource share per team, 0..1 (fair share); absent: fair share off. */
  teamShares?: ReadonlyMap<string, number>;
}

/** Compares two queued requests by priority, submit time and sequence (no aging, no fair share). */
export function compareRequests(a: PendingRequest, b: PendingRequest): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.submittedAt !== b.submittedAt) return a.submittedAt - b.submittedAt;
  return a.seq - b.seq;
}

/** A sorted copy of the queue, by the documented criteria. */
export function orderQueue(queue: readonly PendingRequest[], options: OrderingOptions = {}): PendingRequest[] {
  const { now, agingIntervalMs = 0, teamShares } = options;
  if ((agingIntervalMs <= 0 || !anyAged(queue, now, agingIntervalMs)) && !teamShares)
    return [...queue].sort(compareRequests);
  const keyed = queue.map((r) => ({
    r,
    priority: requestPriority(r, now, agingIntervalMs),
    share: teamShares?.get(r.team) ?? 0,
  }));
  keyed.sort(
    (a, b) => b.priority - a.priority || a.share - b.share || a.r.submittedAt - b.r.submittedAt || a.r.seq - b.r.seq,
  );
  return keyed.map((k) => k.r);
}

/** True when some request has waited an aging interval, so aging raises its priority. */
function anyAged(queue: readonly PendingRequest[], now: number | undefined, agingIntervalMs: number): boolean {
  let longest = 0;
  for (const r of queue) {
    const waited = (r.waitedMs ?? 0) + (now !== undefined ? now - (r.queuedAt ?? r.submittedAt) : 0);
    if (waited > longest) longest = waited;
  }
  return longest >= agingIntervalMs;
}

/**
 * Requests that evicted work for their room and wait for it first, the earliest eviction first
 * (stable), then the rest in their order: the room their victims free is theirs.
 */
export function preemptorsFirst(queue: PendingRequest[]): PendingRequest[] {
  if (!queue.some((r) => r.preempting !== undefined)) return queue;
  const first = queue.filter((r) => r.preempting !== undefined);
  first.sort((a, b) => (a.preempting ?? 0) - (b.preempting ?? 0));
  return [...first, ...queue.filter((r) => r.preempting === undefined)];
}
