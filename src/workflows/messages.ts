/**
 * Every signal, update and query of allot's workflows, defined once and imported by workflows,
 * workers and clients alike.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  AcquireInput,
  AcquireOutcome,
  DemandGroup,
  NodeTemplate,
  NodeTemplateInput,
  ScalingPolicy,
  HealthPolicy,
  Lease,
  LimitStatus,
  NamedLimit,
  NodeReport,
  NodeSpec,
  PoolStatus,
  StatusOptions,
  Rejection,
  ResourceVector,
  TeamShare,
  SchedulingPolicy,
  TeamQuotaInput,
} from '../core';

/** Demand and templates, for `allot status`, autoscalers (KEDA) and metrics. */
export interface CapacityReport {
  demand: DemandGroup[];
  templates: { name: string; shape: string; max: number; nodes: string[]; pending: number; removing: string[] }[];
  /** The templates as declared. */
  templateSpecs?: NodeTemplate[];
  scaling: ScalingPolicy;
}

/** Quotas and usage per team, in integer units (`gpu` milli-GPU, `cpu` milli-CPU, `memory` MiB). */
export interface QuotaReport {
  teams: { name: string; nominal: ResourceVector; borrowingLimit?: ResourceVector; usage: ResourceVector }[];
  /** Usage of teams without a quota. */
  unlimited: { name: string; usage: ResourceVector }[];
  /** Fair share: whether it is on, its half-life, and each team's weight, share and decayed usage. */
  fairShare?: { on: boolean; halfLifeMs: number; teams: TeamShare[] };
}
/** The pool's named limits, each with its use, holders and waiting requests. */
export interface LimitReport {
  limits: LimitStatus[];
}
import type { StepProgress } from './step-types';

/** Task queue of the control worker (pool, step and pipeline workflows). */
export const CONTROL_TASK_QUEUE = 'allot';

/** The pool used when none is named. */
export const DEFAULT_POOL = 'default';

/** Workflow id of a pool. */
export function poolWorkflowId(pool: string): string {
  return `allot-pool/${pool}`;
}

/** Task queue polled by the agent of a node. */
export function nodeTaskQueue(nodeId: string): string {
  return `allot-node-${nodeId}`;
}

// Client → pool (answered at once).

/** What an agent reports when it registers: the leases it runs, and those that died with its earlier life. */
export interface RegisterOptions {
  runningLeases?: string[];
  /** Leases whose workloads the agent's earlier life ran, now dead (killed when it died or stopped). */
  deadLeases?: string[];
}

/** The pool's answer to a registration: which of the reported leases to kill (the pool no longer holds them). */
export interface RegisterResult {
  status: 'registered' | 'updated';
  pool: string;
  kill: string[];
  /** The pool's node-lost time, ms: an agent cut off from Temporal stops its workloads well within it. */
  nodeLostAfterMs?: number;
  /** The pool's store, which an agent without one of its own uses. */
  store?: string;
}

/** Registers a node (or refreshes its inventory) and reconciles what it still runs. */
export const registerUpdate = defineUpdate<RegisterResult, [NodeSpec, RegisterOptions]>('register');

/**
 * The same as a signal, which agents use: a restarting agent's registration then never shares a
 * workflow task with a fired timer as an Update (see `registrationQuery`), the case an upstream
 * SDK bug cannot replay. `token` names this registration; its outcome is read with the query.
 */
export const registerSignal = defineSignal<[NodeSpec, RegisterOptions & { token: string }]>('registerNode');

/** How the latest registration of a node went: its token, and the result or why it was refused. */
export type RegistrationOutcome = { token: string } & ({ result: RegisterResult } | { error: string });

/** The outcome of a node's latest `registerSignal` in this run (`null`: none yet). */
export const registrationQuery = defineQuery<RegistrationOutcome | null, [string]>('registration');
/** Drains a node (`drain: true`: no new grants, running steps finish) or undrains it; returns its status. */
export const drainUpdate = defineUpdate<{ nodeId: string; status: string }, [{ nodeId: string; drain: boolean }]>(
  'drain',
);
/** Sets (or replaces) a team's quota; returns every team's quota and usage. */
export const setQuotaUpdate = defineUpdate<QuotaReport, [TeamQuotaInput]>('setQuota');
/** Removes a team's quota. */
export const removeQuotaUpdate = defineUpdate<QuotaReport, [string]>('removeQuota');
/** Sets (or changes) a named limit's max; returns every limit. A max below what is in use revokes nothing. */
export const setLimitUpdate = defineUpdate<LimitReport, [NamedLimit]>('setLimit');
/** Removes a named limit; refused while leases hold units of it. Returns every limit. */
/** Names the pool's store (`url: null`: none), which agents without one of their own use; returns it. */
export const setStoreUpdate = defineUpdate<{ store: string | null }, [{ url: string | null }]>('setStore');
/** Removes a named limit; refused while leases hold units of it. Returns every limit. */
export const removeLimitUpdate = defineUpdate<LimitReport, [{ name: string }]>('removeLimit');
/** Changes the scheduling policy (placement, preemption, backfill, fairShare, ...); returns the policy in force. */
export const setPolicyUpdate = defineUpdate<SchedulingPolicy, [Partial<SchedulingPolicy>]>('setPolicy');
/** Replaces the pool's node templates (and optionally the scaling timing); returns templates and demand. */
export const setTemplatesUpdate = defineUpdate<
  CapacityReport,
  [{ templates: NodeTemplateInput[]; scaling?: Partial<ScalingPolicy> }]
>('setTemplates');
/** Changes lease TTL and node-health timing (ms); returns the timing in force. */
export const setHealthPolicyUpdate = defineUpdate<HealthPolicy, [Partial<HealthPolicy>]>('setHealthPolicy');
/** Acquires for a client-held lease: granted now, or queued with a ticket to poll with `requestQuery`. */
export const acquireUpdate = defineUpdate<AcquireOutcome, [AcquireInput]>('acquire');
/** Releases a lease or withdraws a queued request, by request id. */
export const releaseUpdate = defineUpdate<{ released: boolean }, [string]>('release');

// Step → pool (a workflow cannot send updates, so steps signal).

/** A step asks for resources; the answer comes back as `grantSignal` or `rejectSignal`. */
export const acquireSignal = defineSignal<[AcquireInput]>('acquire');
/**
 * A step gives back its lease, or withdraws its request. `requeue`: it queues again (after losing
 * its node, say), and its waiting so far carries into the next attempt. `stopped`: sent by an agent
 * whose launch timed out, once its workload has ended; the step, which waits to hear that before
 * it runs the workload elsewhere, is told (`WorkloadStopped`).
 */
export const releaseSignal = defineSignal<[{ requestId: string; requeue?: boolean; stopped?: boolean }]>('release');
/**
 * A running step keeps its lease alive. With `workflowId`, a renewal of a lease the pool no longer
 * holds is answered with `revokeSignal` (reason `NotHeld`), so that the step stops its workload.
 */
export const renewSignal = defineSignal<[{ requestId: string; workflowId?: string }]>('renew');

// Agent → pool.

/** An agent is alive. */
export const nodeHeartbeatSignal = defineSignal<[{ nodeId: string; stopping?: boolean }]>('nodeHeartbeat');

// Pool → step.

/** The pool granted a lease. */
export const grantSignal = defineSignal<[Lease]>('grant');
/** The pool will never grant the request. */
export const rejectSignal = defineSignal<[Rejection]>('reject');
/** The pool evicts a preemptible step for higher-priority or reclaiming work; it stops, releases and queues again. */
export const preemptSignal = defineSignal<[{ requestId: string; leaseId: string; message: string }]>('preempt');
/**
 * The pool took a lease back (expired, node lost, grace period over), or holds nothing more for
 * the request (`Withdrawn`, `NotHeld`: `leaseId` is empty); the step stops its workload, if any,
 * and queues again.
 */
export const revokeSignal =
  defineSignal<[{ requestId: string; leaseId: string; reason: string; message: string }]>('revoke');

// Queries.

/** The pool's nodes, leases and (the first `queueLimit` requests of) its queue. */
export const statusQuery = defineQuery<PoolStatus, [StatusOptions?]>('status');
/** Where one request stands (`null` when the pool has never seen it). */
export const requestQuery = defineQuery<AcquireOutcome | null, [string]>('request');
/** Unmet demand and the node templates with their nodes. */
export const capacityQuery = defineQuery<CapacityReport>('capacity');
/** Every team's quota and usage. */
export const quotasQuery = defineQuery<QuotaReport>('quotas');
/** Every named limit, with its use, holders and waiting requests. */
export const limitsQuery = defineQuery<LimitReport>('limits');
/** The scheduling policy and health timing in force. */
export const policyQuery = defineQuery<{ policy: SchedulingPolicy; health: HealthPolicy }>('policy');
/** The lease with this id, if the pool holds it (agents check before launching: fencing). */
export const leaseQuery = defineQuery<Lease | null, [string]>('lease');
/** What a node's agent needs to know of its node: lost or not, the node-lost time, its leases. */
export const nodeQuery = defineQuery<NodeReport, [string]>('node');
/** A step's state, for progress displays. */
export const progressQuery = defineQuery<StepProgress>('progress');
