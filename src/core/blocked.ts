/**
 * Step 6 of a scheduling cycle, and the line behind it. The first request that cannot start blocks
 * (`Resources`): requests after it wait (`Priority`), unless backfill lets one start that ends
 * before every blocked request's reserved start (see `backfill.ts`). A blocked request's reserved
 * start is found once per gang key until the cycle changes the cluster.
 */
import { grant } from './admit';
import { reservedStart } from './backfill';
import type { Cycle } from './cycle';
import { wait } from './cycle';
import { describeRequest, describeTime } from './describe';
import type { ResourceVector } from './quota';
import { gangKey, replicaPlacement } from './shape';
import { fitsNow } from './fit';
import { describeShortage } from './shortage';
import type { PendingRequest } from './types';

/** Step 6: the request blocks the line, with its reserved start when backfill knows it. */
export function block(cycle: Cycle, request: PendingRequest): void {
  const { line } = cycle;
  line.blockedBy = request;
  line.behind = `waiting behind ${request.label} (priority ${request.priority}), which is first in line`;
  reserve(cycle, request);
  cycle.limits.inLine(request);
  const eta =
    cycle.backfill && line.shadowOwner === request && line.shadow !== Infinity
      ? `; due to start ${describeTime(line.shadow, cycle.now ?? 0)}`
      : '';
  wait(cycle, request, 'Resources', `${notFree(cycle, request)}${eta}`);
}

/**
 * `waiting for resources: … is not free on any Ready node`, and what is short; for a gang spread
 * over nodes, how many nodes have room for a replica now and how many it needs.
 */
function notFree(cycle: Cycle, request: PendingRequest): string {
  const replicas = request.replicas ?? 1;
  if (replicas > 1 && replicaPlacement(request) === 'spread') {
    const room = cycle.views.grant.nodes.filter((n) => fitsNow(n, request.resources)).length;
    if (room > 0) {
      return (
        `waiting for resources: ${describeRequest(request)}: ${room} node${room === 1 ? ' has' : 's have'} ` +
        `room for a replica now, ${replicas} are needed, and no replica starts before all can`
      );
    }
  }
  const short = describeShortage(cycle.views.grant.nodes, request.resources);
  return `waiting for resources: ${describeRequest(request)} is not free on any Ready node${short ? `; ${short}` : ''}`;
}

/**
 * Behind a blocked request: the request starts only if backfill may examine it, its time limit
 * ends by the reserved start, and it fits now; otherwise it waits (`Priority`).
 */
export function backfillOrWait(cycle: Cycle, request: PendingRequest, vector: ResourceVector): void {
  const { line, now } = cycle;
  if (!cycle.backfill || line.examined >= cycle.policy.backfillDepth || now === undefined) {
    wait(cycle, request, 'Priority', line.behind);
    return;
  }
  line.examined++;
  const limit = request.timeLimitMs;
  if (limit === undefined || now + limit > line.shadow) {
    const why =
      limit === undefined
        ? 'it has no time limit, so it cannot backfill'
        : `its time limit would end after ${line.shadowOwner?.label ?? 'it'} is due to start (${describeTime(line.shadow, now)})`;
    wait(cycle, request, 'Priority', `${line.behind}; ${why}`);
    return;
  }
  if (grant(cycle, request, vector)) return;
  wait(cycle, request, 'Priority', `${line.behind}; too big to backfill: ${describeRequest(request)} is not free now`);
  reserve(cycle, request);
  cycle.limits.inLine(request);
}

/**
 * A preemptor that went first for room that is gone (its victims' node was drained or lost) waits
 * (`Resources`) in its own place from the next cycle, and blocks no one ahead of that place now.
 * True when the request is such a one.
 */
export function settleLostRoom(cycle: Cycle, request: PendingRequest): boolean {
  if (request.preempting === undefined) return false;
  wait(cycle, request, 'Resources', notFree(cycle, request));
  return true;
}

/** Finds the request's reserved start and lowers the shadow to it (backfill only). */
function reserve(cycle: Cycle, r: PendingRequest): void {
  const { line, now } = cycle;
  if (!cycle.backfill || now === undefined) return;
  const endings = cycle.ends.endings();
  // Reservations only move when this cycle changes the cluster (a grant or a preemption).
  const key = gangKey(r);
  const cached = line.reservations.get(key);
  // A grant only takes room, so it moves a single copy's reservation later, never earlier: one
  // already no earlier than the shadow stays so, and cannot move the shadow.
  if (
    line.shadowOwner &&
    cached &&
    cached.frees === cycle.frees &&
    cached.start >= line.shadow &&
    (r.replicas ?? 1) === 1
  )
    return;
  let start = cached && cached.changes === cycle.changes ? cached.start : undefined;
  if (start === undefined) {
    start = reservedStart(cycle.placer, endings, r.resources, r.replicas ?? 1, replicaPlacement(r), now);
    line.reservations.set(key, { changes: cycle.changes, frees: cycle.frees, start });
  }
  if (start < line.shadow || line.shadowOwner === undefined) {
    line.shadow = Math.min(line.shadow, start);
    line.shadowOwner = r;
  }
}
