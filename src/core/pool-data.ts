/**
 * The plain-JSON state of one pool, carried across continue-as-new, and the messages that cross
 * its edge: what a step or client asks (`AcquireInput`), where an acquire stands, and what the
 * pool must tell owners (`Effect`). Each field of the state has one owner among the pool's
 * modules, named on the field; `PoolState` puts the owners together.
 */
import type { NodeTemplate, ScalingPolicy, ScalingState } from './capacity';
import type { TeamWeight } from './fair-share';
import type { HealthPolicy } from './health';
import type { NamedLimit } from './named-limits';
import type { SchedulingPolicy } from './policy';
import type { TeamQuota } from './quota';
import type { Reason } from './reasons';
import type { Lease, NodeRecord, PendingRequest, Rejection, RequestOwner, ResourceRequest } from './types';
import type { UsageHistory } from './usage-history';

/** The serialised state of a pool: carried across continue-as-new. */
export interface PoolStateData {
  name: string;
  /** The nodes, sorted by id (`node-registry.ts`). */
  nodes: NodeRecord[];
  /** Granted by `apply-decisions.ts`, renewed and taken back by `pool-health.ts`, given back through `request-queue.ts`. */
  leases: Lease[];
  /** Waiting requests (`request-queue.ts`; a cycle's decisions change them through `apply-decisions.ts`). */
  queue: PendingRequest[];
  /** Next arrival sequence number (`request-queue.ts`). */
  seq: number;
  /** Next lease number (`PoolState.schedule`). */
  leaseCounter: number;
  /** Recently released request ids, oldest first (states written before `releasedKeys`; `request-memory.ts`). */
  released: string[];
  /** Recently released request ids as {@link hash53} keys, oldest first (`request-memory.ts`). */
  releasedKeys?: string[];
  /** Lease and node-health timing (`pool-settings.ts`). @default DEFAULT_HEALTH */
  health?: Partial<HealthPolicy>;
  /** Team quotas, one cohort (`pool-settings.ts`). @default none: no quotas */
  teams?: TeamQuota[];
  /** Scheduling policy changes from DEFAULT_POLICY (`pool-settings.ts`). @default none */
  policy?: Partial<SchedulingPolicy>;
  /** Kinds of node the pool may add through its scaler (`pool-scaling.ts`). @default none */
  templates?: NodeTemplate[];
  /** Scaling timing changes from DEFAULT_SCALING (`pool-scaling.ts`). @default none */
  scalingPolicy?: Partial<ScalingPolicy>;
  /** Where scaling stands (`pool-scaling.ts`). */
  scaling?: ScalingState;
  /** Per node: last time (ms) it was seen holding a lease, or registered (`pool-scaling.ts`). */
  idleSince?: Record<string, number>;
  /**
   * Waiting that steps carry into their next attempt: a step whose lease was preempted or taken
   * back queues again, and aging counts what it waited before, as the pool saw it. Oldest first
   * (`request-memory.ts`).
   */
  carriedWaits?: { owner: string; waitedMs: number }[];
  /**
   * A lowered `nodeLostAfterMs` takes effect once the old one has passed: agents learn it
   * meanwhile (`pool-settings.ts`).
   */
  previousNodeLost?: { nodeLostAfterMs: number; until: number };
  /** Team weights in fair share, by team name; a team not listed has weight 1 (`pool-settings.ts`). */
  teamWeights?: TeamWeight[];
  /** Each team's decayed usage, while fair share with history is on (`PoolState`, `usage-history.ts`). */
  usageHistory?: UsageHistory;
  /** Cluster-wide named limits, sorted by name (`pool-settings.ts`). @default none */
  limits?: NamedLimit[];
  /**
   * The store whose URL agents without one of their own use for checkpoints and artifacts
   * (`file:///path` or `s3://bucket/prefix`; never credentials). @default none
   */
  store?: string;
}

/** A fresh, empty pool. */
export function emptyPoolState(name: string): PoolStateData {
  return { name, nodes: [], leases: [], queue: [], seq: 0, leaseCounter: 0, released: [], releasedKeys: [] };
}

/** What a step or client asks of the pool. */
export interface AcquireInput {
  requestId: string;
  owner: RequestOwner;
  resources: ResourceRequest;
  priority?: number;
  team?: string;
  label?: string;
  /** Workflow time (ms) of the first submission; defaults to now. */
  submittedAt?: number;
  /** Whether higher-priority or reclaiming work may evict it. @default false */
  preemptible?: boolean;
  /** Longest it runs once granted, ms (backfill relies on it). @default none */
  timeLimitMs?: number;
  /** Its own grace period between SIGTERM and SIGKILL, ms; the pool's policy bounds it. @default the policy's */
  gracePeriodMs?: number;
  /** Units of the pool's named limits it needs, by name (`{ "feature-store": 1 }`). @default none */
  limits?: Record<string, number>;
  /** Gang size: this many copies of `resources`, granted all at once or not at all. @default 1 */
  replicas?: number;
  /** How a gang's copies are placed: one per node (`spread`) or several on a node where they fit (`pack`). @default "spread" */
  replicaPlacement?: 'spread' | 'pack';
}

/** Where an acquire stands. */
export type AcquireOutcome =
  | { status: 'granted'; lease: Lease }
  | { status: 'queued'; ticket: string; position: number; reason: Reason; message: string }
  | { status: 'rejected'; reason: Reason; message: string }
  | { status: 'released' };

/** Something the pool must tell a request's owner. */
export type Effect =
  | { kind: 'grant'; lease: Lease }
  | { kind: 'reject'; rejection: Rejection }
  | { kind: 'revoke'; lease: Lease; reason: string; message: string }
  | { kind: 'preempt'; lease: Lease; message: string; preemptor: string }
  /**
   * The pool holds nothing for a request its owner still counts on: its queued request was
   * withdrawn, or its lease released, by someone else (`Withdrawn`, `NotHeld`).
   */
  | { kind: 'gone'; requestId: string; owner: RequestOwner; reason: 'Withdrawn' | 'NotHeld'; message: string };
