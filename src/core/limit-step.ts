/**
 * Step 3b of a scheduling cycle, for a request that asks for named limits (see `named-limits.ts`):
 * one that can never get them is rejected, and one whose units are not free now waits
 * (`LimitExhausted`) before quota and preemption are looked at, so that it evicts nothing.
 */
import type { Cycle } from './cycle';
import { wait } from './cycle';
import type { PendingRequest } from './types';

/** Settles a request whose named limits are unknown, too small, or not free now; true when it did. */
export function settleLimits(cycle: Cycle, request: PendingRequest): boolean {
  const never = cycle.limits.never(request);
  if (never) {
    cycle.decisions.rejections.push({ requestId: request.requestId, reason: never.reason, message: never.message });
    return true;
  }
  const short = cycle.limits.short(request);
  if (short === undefined) return false;
  wait(cycle, request, 'LimitExhausted', short);
  return true;
}
