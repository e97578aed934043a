/**
 * Liveness of leases and nodes.
 *
 * - A lease not renewed within its TTL expires: its resources are freed (this covers a step
 *   workflow that was terminated or deleted, which can no longer release).
 * - A preempted lease is freed when its grace period has passed, whether or not its step has
 *   stopped and released it.
 * - A node not heard from for `nodeNotReadyAfterMs` is NotReady: it gets no new grants, and its
 *   leases are kept (its processes may still run).
 * - A node not heard from for `nodeLostAfterMs` is lost: its leases are revoked, so their steps
 *   queue again. Its agent has stopped their workloads by then (an agent that cannot reach
 *   Temporal stops them well within that time). The node stays NotReady, heartbeats or not,
 *   until its agent registers again and reconciles what it runs.
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
  revoke: { lease: Lease; reason: 'LeaseExpired' | 'NodeLost' | 'GracePeriodExpired' }[];
}

/** A lease's grace period: the one it was granted with (the policy's, or its step's shorter one). */
export function leaseGraceMs(lease: Pick<Lease, 'gracePeriodMs'>, defaultGraceMs: number): number {
  return lease.gracePeriodMs ?? defaultGraceMs;
}

/** When a preempted lease is taken back: at the end of its grace period. */
export function preemptionDeadline(lease: Lease, defaultGraceMs: number): number | undefined {
  if (lease.preemptedAt === undefined) return undefined;
  return lease.preemptedAt + leaseGraceMs(lease, defaultGraceMs);
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
  defaultGraceMs = 30_000,
): HealthChanges {
  const changes: HealthChanges = { notReady: [], lost: [], revoke: [] };
  const lostNodes = new Set<string>();
  for (const node of nodes) {
    const silent = now - lastSeen(node);
    if (silent >= policy.nodeLostAfterMs) {
      lostNodes.add(node.spec.id);
      if (node.lostAt === undefined) {
        node.lostAt = now;
        changes.lost.push(node.spec.id);
      }
      // Lost is NotReady, drained or not: it gets nothing until its agent registers again.
      if (node.status === 'Ready') node.status = 'NotReady';
    }
    if (silent >= policy.nodeNotReadyAfterMs && node.status === 'Ready') {
      node.status = 'NotReady';
      changes.notReady.push(node.spec.id);
    }
  }
  for (const lease of leases) {
    const stopBy = preemptionDeadline(lease, defaultGraceMs);
    if (lostNodes.has(lease.nodeId)) changes.revoke.push({ lease, reason: 'NodeLost' });
    else if (stopBy !== undefined && now >= stopBy) changes.revoke.push({ lease, reason: 'GracePeriodExpired' });
    else if (lease.expiresAt !== undefined && now >= lease.expiresAt) {
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
  defaultGraceMs = 30_000,
): number | undefined {
  let next: number | undefined;
  const consider = (t: number): void => {
    if (next === undefined || t < next) next = t;
  };
  for (const node of nodes) {
    if (node.status === 'Ready') consider(lastSeen(node) + policy.nodeNotReadyAfterMs);
    else if (node.lostAt === undefined) consider(lastSeen(node) + policy.nodeLostAfterMs);
  }
  for (const lease of leases) {
    if (lease.expiresAt !== undefined) consider(lease.expiresAt);
    const stopBy = preemptionDeadline(lease, defaultGraceMs);
    if (stopBy !== undefined) consider(stopBy);
  }
  return next;
}

/**
 * The shortest `nodeLostAfterMs` allowed, ms: an agent that cannot reach Temporal starts stopping
 * its workloads after a third of it, and must have stopped them, and heartbeated several times
 * before, well within it.
 */
export const MIN_NODE_LOST_AFTER_MS = 30_000;

/** The shortest lease TTL allowed, ms: steps renew at a third of it, and need a margin. */
export const MIN_LEASE_TTL_MS = 3_000;

/**
 * Checks a partial health policy from outside (an Update) against the policy in force; returns
 * every problem.
 */
export function validateHealthPolicy(value: unknown, current: HealthPolicy = DEFAULT_HEALTH): Issue[] {
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
  const merged = { ...current, ...(value as Partial<HealthPolicy>) };
  if (issues.length === 0 && merged.leaseTtlMs < MIN_LEASE_TTL_MS) {
    issues.push({
      code: 'invalid_duration',
      path: ['leaseTtlMs'],
      message: `must be at least ${MIN_LEASE_TTL_MS} ms, got ${merged.leaseTtlMs}: steps renew at a third of it`,
    });
  }
  if (issues.length === 0 && merged.nodeLostAfterMs < MIN_NODE_LOST_AFTER_MS) {
    issues.push({
      code: 'invalid_duration',
      path: ['nodeLostAfterMs'],
      message:
        `must be at least ${MIN_NODE_LOST_AFTER_MS} ms, got ${merged.nodeLostAfterMs}: an agent cut off from Temporal ` +
        'stops its workloads within two thirds of it, and needs the time',
    });
  }
  if (issues.length === 0 && merged.nodeLostAfterMs < merged.nodeNotReadyAfterMs) {
    const which = 'nodeLostAfterMs' in (value as object) ? 'nodeLostAfterMs' : 'nodeNotReadyAfterMs';
    issues.push({
      code: 'invalid_duration',
      path: [which],
      message:
        which === 'nodeLostAfterMs'
          ? `must be at least nodeNotReadyAfterMs (${merged.nodeNotReadyAfterMs}), got ${merged.nodeLostAfterMs}`
          : `must be at most nodeLostAfterMs (${merged.nodeLostAfterMs}), got ${merged.nodeNotReadyAfterMs}`,
    });
  }
  return issues;
}
