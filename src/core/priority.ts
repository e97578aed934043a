/**
 * Priorities: integers from `PRIORITY_MIN` to `PRIORITY_MAX`, larger runs first, default 0. Named
 * classes map to integers, as Kubernetes PriorityClasses do. Aging raises the priority a request is
 * ordered by (never the one preemption compares) by one point per `agingIntervalMs` waited, so that
 * nothing starves.
 */
import type { Issue } from './errors';
import { describeValue } from './errors';

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
 * The priority a request is ordered by at `now`: its own, plus one point per full
 * `agingIntervalMs` waited, capped at `PRIORITY_MAX` (never below its own). No aging when
 * `agingIntervalMs` is 0 or `now` is unknown.
 */
export function agedPriority(
  priority: number,
  submittedAt: number,
  now: number | undefined,
  agingIntervalMs: number,
): number {
  if (now === undefined || agingIntervalMs <= 0 || now <= submittedAt) return priority;
  const boost = Math.floor((now - submittedAt) / agingIntervalMs);
  return Math.max(priority, Math.min(PRIORITY_MAX, priority + boost));
}
