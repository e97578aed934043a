/**
 * The order in which queued requests are considered. Criteria, in turn:
 * 1. priority, larger first;
 * 2. submit time, earlier first;
 * 3. arrival sequence in the pool, smaller first (a total order: no two requests compare equal).
 */
import type { PendingRequest } from './types';

/** Compares two queued requests by the documented criteria. */
export function compareRequests(a: PendingRequest, b: PendingRequest): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.submittedAt !== b.submittedAt) return a.submittedAt - b.submittedAt;
  return a.seq - b.seq;
}

/** A sorted copy of the queue. */
export function orderQueue(queue: readonly PendingRequest[]): PendingRequest[] {
  return [...queue].sort(compareRequests);
}
