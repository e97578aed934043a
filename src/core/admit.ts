/**
 * Steps 4 and 5 of a scheduling cycle, for a request that can start now: its team's quota, now
 * and once the preemptions under way are done, and then a place on the nodes for every copy of
 * it (all or none), where nothing reserved for a preemptor ahead is taken.
 */
import { allocationOf } from './cluster';
import type { Cycle } from './cycle';
import { wait } from './cycle';
import type { Placement } from './placer';
import { preemptFor } from './preemptor';
import type { ResourceVector } from './quota';
import { requestVector } from './quota';
import { gangKey, replicaPlacement } from './shape';
import type { PendingRequest } from './types';

/**
 * Step 4: a request beyond its team's quota waits (`QuotaExhausted`) without blocking other teams.
 * Within its nominal quota it may reclaim from borrowers by preemption, and short only until the
 * victims stopping are gone, it waits for them (see `preemptFor`). True when it was settled so.
 */
export function settleOverQuota(cycle: Cycle, request: PendingRequest, vector: ResourceVector): boolean {
  const short = cycle.views.quotaShortfall(request.team, vector);
  if (!short) return false;
  const mayPreempt = (short.withinNominal || !short.later) && !cycle.line.blockedBy;
  if (mayPreempt && preemptFor(cycle, request, vector)) return true;
  wait(cycle, request, 'QuotaExhausted', short.message);
  return true;
}

/** Step 5: grants the request if every copy fits the grant view now, and counts it as used. */
export function grant(cycle: Cycle, request: PendingRequest, vector: ResourceVector): boolean {
  const shape = gangKey(request);
  if (cycle.noFit.has(shape)) return false;
  const placed = cycle.placer.placeGang(request.resources, request.replicas ?? 1, replicaPlacement(request));
  if (!placed) {
    cycle.noFit.add(shape);
    return false;
  }
  cycle.changes++;
  const first = placed[0] as Placement;
  cycle.decisions.grants.push({
    requestId: request.requestId,
    nodeId: first.nodeId,
    gpus: first.gpus,
    allocations: placed,
  });
  const allocations = placed.map((p) => allocationOf(p.nodeId, request.resources, p.gpus));
  cycle.views.recordGrant(allocations, request.team, vector);
  cycle.fairShares?.granted(request.team, requestVector(request.resources, request.replicas ?? 1));
  cycle.limits.take(request);
  if (cycle.now !== undefined) {
    cycle.ends.granted(allocations, request.timeLimitMs !== undefined ? cycle.now + request.timeLimitMs : Infinity);
  }
  return true;
}
