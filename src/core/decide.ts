/**
 * One scheduling cycle over a snapshot of the pool. Pure: the same snapshot and options give the
 * same decisions.
 */
import { grant, settleOverQuota } from './admit';
import { backfillOrWait, block, settleLostRoom } from './blocked';
import { cycleQueue, startCycle } from './cycle';
import type { DecideOptions, Decisions, Snapshot } from './decisions';
import { noDecisions } from './decisions';
import { settleUnsatisfiable } from './feasibility';
import { rejectForLimits, settleLimits } from './limit-step';
import { preemptFor } from './preemptor';
import { requestVector } from './quota';

/**
 * The scheduling cycle:
 * 1. Derive each node's free capacity and each team's usage from the leases, now and once the
 *    victims already stopping are gone (see `reservations.ts`).
 * 2. Take the queue in order (see `ordering.ts`: priority aged by waiting, fair share, submit
 *    time, id), and with quotas, requests their teams' nominal quotas cover before those that
 *    would borrow (see `nominalFirst`). Requests that have evicted work for their room and wait
 *    for it go first: that room is theirs.
 * 3. Reject a request that no node could hold even when empty, or that its team's quota can never
 *    admit (`Unschedulable`; see `feasibility.ts`).
 *    A request asking for a named limit that does not exist, or for more than its max, is rejected
 *    too (`UnknownLimit`, `Unschedulable`), first, even if it would wait for a new node
 *    (`WaitingForCapacity`). One whose limits are not free, or whose limits a request
 *    ahead in this cycle waits for, waits (`LimitExhausted`) and evicts nothing: preemption never
 *    frees limits. See `named-limits.ts`.
 * 4. A request beyond its team's quota, now or once the preemptions under way are done, waits
 *    (`QuotaExhausted`) without blocking other teams; if it asks within its team's nominal quota,
 *    it may reclaim from borrowers by preemption (5), and if only victims still stopping stand in
 *    its way, it reserves what they free (5). See `admit.ts`.
 * 5. Place it (every copy of a gang, or none) where nothing reserved for a preemptor ahead is
 *    taken, and count it as used. If it does not fit and nothing ahead is blocked: if it would fit
 *    once the victims already stopping are gone, it reserves that room; otherwise it looks for
 *    victims (see `preemption.ts`), and reserves the room they free. Either way it waits for them
 *    (`Preempting`; see `preemptor.ts`), and requests after it go on: what it reserved is not
 *    theirs.
 * 6. Otherwise it blocks (`Resources`): requests after it wait (`Priority`), unless backfill lets
 *    one start that ends before every blocked request's reserved start (see `blocked.ts`).
 */
export function decide(snapshot: Snapshot, options: DecideOptions = {}): Decisions {
  if (snapshot.queue.length === 0) return noDecisions();
  // 1. Free capacity and usage, in the three views of the cycle.
  const cycle = startCycle(snapshot, options);
  // 2. Order.
  for (const request of cycleQueue(cycle)) {
    // What it asks of its team's quota; without quotas, nothing.
    const vector = cycle.views.nowLedger.empty ? {} : requestVector(request.resources, request.replicas ?? 1);
    // 3. Never satisfiable: its named limits (one removed since it was queued), its node resources
    // or its team's quota.
    if (request.limits && rejectForLimits(cycle, request)) continue;
    if (settleUnsatisfiable(cycle, request)) continue;
    // 3b. Named limits not free now (see `named-limits.ts`).
    if (request.limits && settleLimits(cycle, request, vector)) continue;
    // 4. Quota, now and once the preemptions under way are done.
    if (settleOverQuota(cycle, request, vector)) continue;
    // Behind a blocked request: only backfill may start it.
    if (cycle.line.blockedBy) {
      backfillOrWait(cycle, request, vector);
      continue;
    }
    // 5. Place, or preempt; a preemptor whose room is gone waits in its own place instead.
    if (grant(cycle, request, vector)) continue;
    if (preemptFor(cycle, request, vector)) continue;
    if (settleLostRoom(cycle, request)) continue;
    // 6. Blocked.
    block(cycle, request);
  }
  return cycle.decisions;
}
