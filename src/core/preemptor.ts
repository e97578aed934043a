/**
 * Step 5's preemption, for a request that does not fit (or is short of quota only until victims
 * stop): on the future view, it reserves the room that victims already stopping leave or, when
 * that is not enough, chooses new victims (see `preemption.ts`) and reserves what they free.
 * Either way it waits for them (`Preempting`), and requests after it go on: what it reserved is
 * not theirs.
 */
import { allocationOf } from './cluster';
import type { Cycle } from './cycle';
import { runningGroups, wait } from './cycle';
import type { Placement } from './placer';
import { Placer } from './placer';
import type { LeaseGroup, PreemptionContext } from './preemption';
import { admissible, findVictims } from './preemption';
import { requestPriority } from './priority';
import type { ResourceVector } from './quota';
import { requestVector } from './quota';
import { replicaPlacement } from './shape';
import type { PendingRequest } from './types';

/** Reserves room for the request by preemption, if the policy allows it; true when it now waits for victims. */
export function preemptFor(cycle: Cycle, request: PendingRequest, vector: ResourceVector): boolean {
  const { policy, views, now } = cycle;
  if (!policy.preemption) return false;
  const future = views.future;
  const placer = (cycle.futurePlacer ??= new Placer(future, policy.placement, cycle.model));
  const priority = requestPriority(request, now, policy.agingIntervalMs);
  const ctx: PreemptionContext = {
    cluster: future,
    placer,
    ledger: views.futureLedger,
    groups: runningGroups(cycle).filter((g) => !cycle.terminating.has(g.requestId)),
  };
  const quotas = !views.nowLedger.empty;
  let victims: LeaseGroup[] = [];
  if (!admissible(ctx, request, vector)) {
    // Victims still stopping for it: wait for them rather than evict more (their node may only
    // be NotReady for a moment).
    if (cycle.awaiting.has(request.requestId)) {
      wait(cycle, request, 'Preempting', 'waiting for preempted work to stop');
      cycle.limits.keep(request);
      return true;
    }
    const asked = quotas ? vector : requestVector(request.resources, request.replicas ?? 1);
    const found = findVictims(ctx, request, asked, priority);
    if (!found) return false;
    victims = found;
    views.recordEviction(victims.flatMap((v) => v.leases));
  }
  // Reserve its room in the future view, where its own victims stop if it fits there; victims
  // already chosen leave enough of it.
  const placed =
    placeOnOwnVictims(cycle, placer, request) ??
    placer.placeGang(request.resources, request.replicas ?? 1, replicaPlacement(request));
  if (!placed) return false;
  views.recordReservation(
    placed.map((p) => allocationOf(p.nodeId, request.resources, p.gpus)),
    request.team,
    vector,
  );
  cycle.changes++;
  if (victims.length > 0) {
    cycle.frees++;
    cycle.noFit.clear();
  }
  for (const v of victims) {
    cycle.terminating.add(v.requestId);
    const why =
      v.priority < priority
        ? `priority ${priority} > ${v.priority}`
        : `team ${request.team} reclaims its quota from ${v.team}`;
    cycle.decisions.preemptions.push({
      requestId: v.requestId,
      leaseIds: v.leases.map((l) => l.leaseId),
      preemptor: request.requestId,
      reason: 'Preempted',
      message: `preempted by ${request.label} (${why})`,
    });
  }
  cycle.ends.preempted(
    victims.flatMap((v) => v.leases),
    now,
  );
  wait(cycle, request, 'Preempting', awaitedMessage(cycle, placed));
  // Its named limits are kept for it while its victims stop (see `named-limits.ts`).
  cycle.limits.keep(request);
  return true;
}

/** One copy on a node where the request's own victims stop, allocated in the future view. */
function placeOnOwnVictims(cycle: Cycle, placer: Placer, request: PendingRequest): Placement[] | undefined {
  const nodes = cycle.awaiting.get(request.requestId);
  if (!nodes || (request.replicas ?? 1) !== 1) return undefined;
  for (const nodeId of nodes) {
    const state = cycle.views.future.node(nodeId);
    const p = state ? placer.placeOnState(state, request.resources) : undefined;
    if (!p) continue;
    cycle.views.future.allocate(allocationOf(p.nodeId, request.resources, p.gpus));
    return [p];
  }
  return undefined;
}

/** What a preemptor waits for: the work stopping on the nodes of its reserved room, by label. */
function awaitedMessage(cycle: Cycle, placed: readonly Placement[]): string {
  const nodesOf = new Set(placed.map((p) => p.nodeId));
  const awaited = runningGroups(cycle)
    .filter((g) => cycle.terminating.has(g.requestId) && g.leases.some((l) => nodesOf.has(l.nodeId)))
    .map((g) => g.label);
  return awaited.length > 0 ? `waiting for ${awaited.join(', ')} to stop` : 'waiting for preempted work to stop';
}
