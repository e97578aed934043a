/**
 * Priorities: integers from `PRIORITY_MIN` to `PRIORITY_MAX`, larger runs first, default 0. Named
 * classes map to integers, as Kubernetes PriorityClasses do.
 *
 * Aging raises a request's priority by one point per `agingIntervalMs` it has *waited* in the
 * queue, so that nothing starves. Time spent running does not count: a step that ran for hours,
 * was preempted and queues again carries only the waiting it did before. The queue is ordered by
 * this effective priority, and preemption compares the very same numbers (a running lease keeps
 * the effective priority it was granted with), so a victim never comes back ahead of the request
 * that evicted it.
 */
import type { Issue } from './errors';
import { describeValue } from './errors';
import type { Lease, PendingRequest } from './types';

/** Lowest priority a request may have. */
export const PRIORITY_MIN = -1000;
/** Highest priority a request may have; aging never lifts a request past it. */
export const PRIORITY_MAX = 1000;

/** Named priority classes and the integers they stand for. */
export const PRIORITY_CLASSES: Readonly<Record<string, number>> = {
  low: -100,
  normal: 0,
  high: 100,
  critical: 1000,
};

const ALLOWED = `an integer from ${PRIORITY_MIN} to ${PRIORITY_MAX} or one of ${Object.keys(PRIORITY_CLASSES)
  .map((c) => `"${c}"`)
  .join(', ')}`;

/** Parses a priority (an integer or a class name); returns the integer or the problem. */
export function parsePriority(
  value: unknown,
  path: (string | number)[] = ['priority'],
): { priority: number; issue?: undefined } | { priority?: undefined; issue: Issue } {
  if (value === undefined) return { priority: 0 };
  if (typeof value === 'string' && Object.hasOwn(PRIORITY_CLASSES, value)) {
    return { priority: PRIORITY_CLASSES[value] ?? 0 };
  }
  if (typeof value === 'number' && Number.isInteger(value) && value >= PRIORITY_MIN && value <= PRIORITY_MAX) {
    return { priority: value };
  }
  return { issue: { code: 'invalid_priority', path, message: `must be ${ALLOWED}, got ${describeValue(value)}` } };
}

/**
 * A priority raised by aging: its own, plus one point per full `agingIntervalMs` of `waitedMs`,
 * capped at `PRIORITY_MAX` (never below its own). No aging when `agingIntervalMs` is 0.
 */
export function agedPriority(priority: number, waitedMs: number, agingIntervalMs: number): number {
  if (agingIntervalMs <= 0 || !(waitedMs > 0)) return priority;
  const boost = Math.floor(waitedMs / agingIntervalMs);
  return Math.max(priority, Math.min(PRIORITY_MAX, priority + boost));
}

/**
 * How long a request has waited at `now` (ms): what it waited in earlier attempts (`waitedMs`)
 * plus the time since it was queued this time. Without `now`, only the earlier attempts count.
 */
export function waitedSoFar(r: Pick<PendingRequest, 'waitedMs' | 'queuedAt' | 'submittedAt'>, now?: number): number {
  const since = r.queuedAt ?? r.submittedAt;
  return (r.waitedMs ?? 0) + (now !== undefined && now > since ? now - since : 0);
}

/** The priority a queued request is ordered by, and preempts with, at `now`. */
export function requestPriority(
  r: Pick<PendingRequest, 'priority' | 'waitedMs' | 'queuedAt' | 'submittedAt'>,
  now: number | undefined,
  agingIntervalMs: number,
): number {
  return agedPriority(r.priority, waitedSoFar(r, now), agingIntervalMs);
}

/** The priority a running lease is compared by when something would preempt it: the one it was granted with. */
export function leasePriority(l: Pick<Lease, 'priority' | 'waitedMs'>, agingIntervalMs: number): number {
  return agedPriority(l.priority, l.waitedMs ?? 0, agingIntervalMs);
}
