/**
 * One scheduling cycle over a snapshot of the pool. Pure: the same snapshot gives the same
 * decisions.
 */
import { orderQueue } from './ordering';
import { addLease, emptyUsage, placeBestFit, unschedulableReason } from './placement';
import type { GpuShare, Lease, NodeRecord, PendingRequest } from './types';

/** What the scheduler looks at. */
export interface Snapshot {
  nodes: readonly NodeRecord[];
  leases: readonly Lease[];
  queue: readonly PendingRequest[];
}

/** A request to grant now, and where. */
export interface GrantDecision {
  requestId: string;
  nodeId: string;
  gpus: GpuShare[];
}

/** A request to keep waiting, and why. */
export interface WaitDecision {
  requestId: string;
  reason: string;
  message: string;
}

/** The outcome of one cycle. */
export interface Decisions {
  grants: GrantDecision[];
  /** Requests that no node could ever satisfy. */
  rejections: WaitDecision[];
  waiting: WaitDecision[];
}

/**
 * The scheduling cycle:
 * 1. Derive each node's usage from the leases.
 * 2. Take the queue in order (see `ordering.ts`).
 * 3. Reject a request that no registered node could hold even when empty (`Unschedulable`).
 * 4. Once a request is blocked, every request after it waits (`Priority`): strict order, so the
 *    head of the queue is never starved by smaller requests behind it.
 * 5. Otherwise place it best-fit on a Ready node and count it as used, or block (`Resources`).
 */
export function decide(snapshot: Snapshot): Decisions {
  const decisions: Decisions = { grants: [], rejections: [], waiting: [] };
  const specs = snapshot.nodes.map((n) => n.spec);
  const ready = snapshot.nodes.filter((n) => n.status === 'Ready').map((n) => n.spec);
  const usage = new Map(specs.map((s) => [s.id, emptyUsage()]));
  for (const lease of snapshot.leases) {
    const u = usage.get(lease.nodeId);
    if (u) addLease(u, lease);
  }
  let blockedBy: PendingRequest | undefined;
  for (const request of orderQueue(snapshot.queue)) {
    if (specs.length === 0) {
      decisions.waiting.push({
        requestId: request.requestId,
        reason: 'NoNodes',
        message: 'no node has registered with the pool yet; start an agent with `allot agent`',
      });
      continue;
    }
    const never = unschedulableReason(specs, request.resources);
    if (never !== undefined) {
      decisions.rejections.push({ requestId: request.requestId, reason: 'Unschedulable', message: never });
      continue;
    }
    if (blockedBy) {
      decisions.waiting.push({
        requestId: request.requestId,
        reason: 'Priority',
        message: `waiting behind ${blockedBy.label}, which is first in line`,
      });
      continue;
    }
    const placement = placeBestFit(ready, usage, request.resources);
    if (!placement) {
      blockedBy = request;
      decisions.waiting.push({
        requestId: request.requestId,
        reason: 'Resources',
        message: 'waiting for resources to be released',
      });
      continue;
    }
    decisions.grants.push({ requestId: request.requestId, ...placement });
    const u = usage.get(placement.nodeId);
    if (u)
      addLease(u, {
        cpuMilli: request.resources.cpuMilli,
        memoryMiB: request.resources.memoryMiB,
        gpus: placement.gpus,
      });
  }
  return decisions;
}
