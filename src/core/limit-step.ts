/**
 * Step 3 and 3b of a scheduling cycle, for a request that asks for named limits (see
 * `named-limits.ts`): one whose limit was removed is rejected, before anything else is looked at
 * (waiting for a new node, it would have one added for nothing); one whose units are not free now
 * waits (`LimitExhausted`) before quota and preemption are looked at, so that it evicts nothing.
 */
import type { Cycle } from './cycle';
import { wait } from './cycle';
import type { ResourceVector } from './quota';
import type { PendingRequest } from './types';

/**
 * Rejects a request naming a limit removed since it was queued, and holds one whose ask a lowered
 * max no longer admits (it waits, and counts as no demand for a new node); true when it did.
 */
export function rejectForLimits(cycle: Cycle, request: PendingRequest): boolean {
  const never = cycle.limits.never(request);
  if (never) {
    cycle.decisions.rejections.push({ requestId: request.requestId, reason: never.reason, message: never.message });
    return true;
  }
  const overMax = cycle.limits.overMax(request);
  if (overMax === undefined) return false;
  wait(cycle, request, 'LimitExhausted', overMax);
  return true;
}

/**
 * Settles a request whose named limits are not free now (it waits); true when it did. One that its
 * team's quota keeps from starting, even by reclaiming, is left to the quota step (`QuotaExhausted`):
 * waiting first in a limit's line, it would keep other teams' requests from units it cannot use.
 */
export function settleLimits(cycle: Cycle, request: PendingRequest, vector: ResourceVector): boolean {
  const quota = cycle.views.quotaShortfall(request.team, vector);
  if (quota && !quota.withinNominal && quota.later) return false;
  const short = cycle.limits.short(request);
  if (short === undefined) return false;
  wait(cycle, request, 'LimitExhausted', short);
  return true;
}
