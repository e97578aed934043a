/**
 * The pool's `status` query: a readable picture of the pool for `allot status`, and the checks of
 * the query's options. It reads the state and changes nothing.
 */
import { orderQueue } from './ordering';
import { usageByNode } from './node-usage';
import type { PoolStateData } from './pool-data';
import { describeValue } from './errors';
import { MAX_QUEUED } from './request-queue';
import type { TeamShare } from './fair-share';
import type { Lease, ResourceRequest } from './types';
import type { Reason } from './reasons';
import type { LimitStatus } from './named-limits';
import { limitStatus } from './named-limits';

/** How many queued requests the `status` query lists unless asked for more or fewer. */
export const STATUS_QUEUE_LIMIT = 1_000;

/** Options of the `status` query. */
export interface StatusOptions {
  /** List at most this many queued requests, 0 to {@link MAX_QUEUED}. @default STATUS_QUEUE_LIMIT */
  queueLimit?: number;
}

/** Checks the `status` query's options; returns the queue limit, or a message naming what is wrong. */
export function statusQueueLimit(options: unknown): number | string {
  if (options === undefined || options === null) return STATUS_QUEUE_LIMIT;
  if (typeof options !== 'object' || Array.isArray(options)) {
    return `status options must be an object like {"queueLimit": 100}, got ${describeValue(options)}`;
  }
  const limit = (options as StatusOptions).queueLimit;
  if (limit === undefined) return STATUS_QUEUE_LIMIT;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0 || limit > MAX_QUEUED) {
    return `queueLimit must be an integer from 0 to ${MAX_QUEUED}, got ${describeValue(limit)}`;
  }
  return limit;
}

/** The answer of the pool's `status` query. */
export interface PoolStatus {
  pool: string;
  nodes: {
    id: string;
    status: string;
    labels: Record<string, string>;
    /** Where other nodes reach it, as its agent advertised. */
    address?: string;
    cpu: { capacityMilli: number; usedMilli: number };
    memory: { capacityMiB: number; usedMiB: number };
    gpus: {
      index: number;
      model: string;
      memoryMiB: number;
      /** Share in use, 0 to 1. */
      used: number;
      holders: { leaseId: string; label: string }[];
    }[];
    /** Custom resources the node offers and how much of each its leases hold; absent when none. */
    custom?: Record<string, { capacity: number; used: number }>;
  }[];
  leases: (Lease & { heldMs: number })[];
  /** Requests queued in all; `queue` lists the first of them. */
  queued: number;
  /** Queued requests and the GPUs they ask for (milli-GPU, all replicas), per team. */
  queuedByTeam: { team: string; count: number; gpuMilli: number }[];
  /** Queued requests per waiting reason, in all (the queue may list fewer). */
  queuedByReason: { reason: Reason; count: number }[];
  /** The first queued requests in order, at most the query's `queueLimit`. */
  queue: {
    position: number;
    requestId: string;
    label: string;
    team: string;
    priority: number;
    resources: ResourceRequest;
    /** Units of named limits it asks for; absent when none. */
    limits?: Record<string, number>;
    /** A gang's size (`resources` is each replica's); absent for a single request. */
    replicas?: number;
    reason: Reason;
    message: string;
    waitedMs: number;
  }[];
  /** While fair share is on: each team's weight, share and decayed usage (see `fair-share.ts`). */
  fairShare?: { halfLifeMs: number; teams: TeamShare[] };
  /** Named limits with their use, holders and waiting requests; absent when the pool has none. */
  limits?: LimitStatus[];
  /** The store agents use for checkpoints and artifacts, when the pool names one. */
  store?: string;
}

/**
 * A readable picture of the pool for `allot status`: every node and lease, and the first
 * `queueLimit` queued requests in order (a query's answer must stay within Temporal's 2 MiB).
 */
export function poolStatus(data: Readonly<PoolStateData>, now: number, queueLimit = STATUS_QUEUE_LIMIT): PoolStatus {
  const usage = usageByNode(data.leases);
  const byTeam = new Map<string, { team: string; count: number; gpuMilli: number }>();
  const byReason = new Map<Reason, number>();
  for (const r of data.queue) {
    const t = byTeam.get(r.team) ?? { team: r.team, count: 0, gpuMilli: 0 };
    t.count++;
    t.gpuMilli += r.resources.gpuMilli * (r.replicas ?? 1);
    byTeam.set(r.team, t);
    byReason.set(r.reason, (byReason.get(r.reason) ?? 0) + 1);
  }
  return {
    pool: data.name,
    nodes: data.nodes.map((n) => {
      const u = usage.get(n.spec.id);
      const leases = data.leases.filter((l) => l.nodeId === n.spec.id);
      return {
        id: n.spec.id,
        status: n.status,
        labels: n.spec.labels,
        ...(n.spec.address !== undefined ? { address: n.spec.address } : {}),
        cpu: { capacityMilli: n.spec.cpuMilli, usedMilli: u?.cpuMilli ?? 0 },
        memory: { capacityMiB: n.spec.memoryMiB, usedMiB: u?.memoryMiB ?? 0 },
        gpus: n.spec.gpus.map((d) => ({
          index: d.index,
          model: d.model,
          memoryMiB: d.memoryMiB,
          used: (u?.gpuMilli[d.index] ?? 0) / 1000,
          holders: leases
            .filter((l) => l.gpus.some((g) => g.index === d.index))
            .map((l) => ({ leaseId: l.leaseId, label: l.label })),
        })),
        ...(n.spec.custom ? { custom: customUse(n.spec.custom, leases) } : {}),
      };
    }),
    leases: data.leases.map((l) => ({ ...l, heldMs: now - l.grantedAt })),
    queued: data.queue.length,
    queuedByTeam: [...byTeam.values()].sort((a, b) => a.team.localeCompare(b.team)),
    queuedByReason: [...byReason]
      .map(([reason, count]) => ({ reason, count }))
      .sort((a, b) => a.reason.localeCompare(b.reason)),
    queue: orderQueue(data.queue)
      .slice(0, queueLimit)
      .map((r, i) => ({
        position: i + 1,
        requestId: r.requestId,
        label: r.label,
        team: r.team,
        priority: r.priority,
        resources: r.resources,
        ...(r.limits ? { limits: r.limits } : {}),
        ...((r.replicas ?? 1) > 1 ? { replicas: r.replicas } : {}),
        reason: r.reason,
        message: r.message,
        waitedMs: now - r.submittedAt,
      })),
    ...(data.limits && data.limits.length > 0 ? { limits: limitStatus(data.limits, data.leases, data.queue) } : {}),
    ...(data.store !== undefined ? { store: data.store } : {}),
  };
}

/** Each custom resource of a node: its capacity and what the node's leases hold of it. */
function customUse(
  capacity: Readonly<Record<string, number>>,
  leases: readonly Lease[],
): Record<string, { capacity: number; used: number }> {
  const use = new Map(Object.entries(capacity).map(([name, total]) => [name, { capacity: total, used: 0 }]));
  for (const l of leases) {
    for (const [name, n] of Object.entries(l.custom ?? {})) {
      const c = use.get(name) ?? { capacity: 0, used: 0 };
      c.used += n;
      use.set(name, c);
    }
  }
  return Object.fromEntries(use);
}
