/**
 * Liveness of leases and nodes.
 *
 * - A lease not renewed within its TTL expires: its resources are freed (this covers a step
 *   workflow that was terminated or deleted, which can no longer release).
 * - A node not heard from for `notReadyAfterMs` is NotReady: it gets no new grants, and its
 *   leases are kept (its processes may still run).
 * - A node not heard from for `lostAfterMs` is lost: its leases are revoked, so their steps queue
 *   again; the node itself stays NotReady until its agent registers again.
 */
import type { Issue } from './errors';
import { describeValue } from './errors';
import type { Lease, NodeRecord } from './types';

/** Timing of leases and node health, ms. */
export interface HealthPolicy {
  /** Lease TTL. @default 60000 */
  leaseTtlMs: number;
  /** Silence after which a node gets no new grants. @default 15000 */
  nodeNotReadyAfterMs: number;
  /** Silence after which a node's leases are revoked. @default 60000 */
  nodeLostAfterMs: number;
}

/** The defaults of `HealthPolicy`. */
export const DEFAULT_HEALTH: HealthPolicy = {
  leaseTtlMs: 60_000,
  nodeNotReadyAfterMs: 15_000,
  nodeLostAfterMs: 60_000,
};

/** What changed at a health check. */
export interface HealthChanges {
  /** Nodes that became NotReady now. */
  notReady: string[];
  /** Nodes declared lost now. */
  lost: string[];
  /** Leases to take back, with the reason. */
  revoke: { lease: Lease; reason: 'LeaseExpired' | 'NodeLost' }[];
}

/** When a node was last heard from. */
export function lastSeen(node: NodeRecord): number {
  return node.lastSeenAt ?? node.registeredAt;
}

/**
 * Checks nodes and leases at `now`, updating node statuses in place. Returns what changed;
 * the caller frees the revoked leases.
 */
export function checkHealth(
  nodes: NodeRecord[],
  leases: readonly Lease[],
  policy: HealthPolicy,
  now: number,
): HealthChanges {
  const changes: HealthChanges = { notReady: [], lost: [], revoke: [] };
  const lostNodes = new Set<string>();
  for (const node of nodes) {
    const silent = now - lastSeen(node);
    if (silent >= policy.nodeLostAfterMs) lostNodes.add(node.spec.id);
    if (silent >= policy.nodeNotReadyAfterMs && node.status === 'Ready') {
      node.status = 'NotReady';
      changes.notReady.push(node.spec.id);
    }
  }
  for (const lease of leases) {
    if (lostNodes.has(lease.nodeId)) {
      changes.revoke.push({ lease, reason: 'NodeLost' });
      if (!changes.lost.includes(lease.nodeId)) changes.lost.push(lease.nodeId);
    } else if (lease.expiresAt !== undefined && now >= lease.expiresAt) {
      changes.revoke.push({ lease, reason: 'LeaseExpired' });
    }
  }
  return changes;
}

/** The next time something may change: a lease expiry or a node deadline. `undefined` if none. */
export function nextHealthDeadline(
  nodes: readonly NodeRecord[],
  leases: readonly Lease[],
  policy: HealthPolicy,
): number | undefined {
  let next: number | undefined;
  const consider = (t: number): void => {
    if (next === undefined || t < next) next = t;
  };
  const busy = new Set(leases.map((l) => l.nodeId));
  for (const node of nodes) {
    if (node.status === 'Ready') consider(lastSeen(node) + policy.nodeNotReadyAfterMs);
    else if (busy.has(node.spec.id)) consider(lastSeen(node) + policy.nodeLostAfterMs);
  }
  for (const lease of leases) if (lease.expiresAt !== undefined) consider(lease.expiresAt);
  return next;
}

/** Checks a partial health policy from outside (an Update); returns every problem. */
export function validateHealthPolicy(value: unknown): Issue[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [{ code: 'invalid_type', path: [], message: `must be an object, got ${describeValue(value)}` }];
  }
  const issues: Issue[] = [];
  const known = Object.keys(DEFAULT_HEALTH);
  for (const [key, v] of Object.entries(value)) {
    if (!known.includes(key)) {
      issues.push({
        code: 'unknown_field',
        path: [key],
        message: `is not a health setting; allowed are ${known.join(', ')}`,
      });
    } else if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1000) {
      issues.push({
        code: 'invalid_duration',
        path: [key],
        message: `must be a whole number of milliseconds, at least 1000, got ${describeValue(v)}`,
      });
    }
  }
  const merged = { ...DEFAULT_HEALTH, ...(value as Partial<HealthPolicy>) };
  if (issues.length === 0 && merged.nodeLostAfterMs < merged.nodeNotReadyAfterMs) {
    issues.push({
      code: 'invalid_duration',
      path: ['nodeLostAfterMs'],
      message: `must be at least nodeNotReadyAfterMs (${merged.nodeNotReadyAfterMs}), got ${merged.nodeLostAfterMs}`,
    });
  }
  return issues;
}
