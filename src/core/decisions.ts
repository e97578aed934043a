/**
 * What a scheduling cycle reads (a snapshot of the pool, and options) and what it decides: grants,
 * rejections, requests left waiting and their reasons, and preemptions. Plain data.
 */
import type { NodeTemplate } from './capacity';
import type { FragmentationModel } from './fragmentation';
import type { NamedLimit } from './named-limits';
import type { Placement } from './placer';
import type { SchedulingPolicy } from './policy';
import type { TeamQuota } from './quota';
import type { Reason } from './reasons';
import type { GpuShare, Lease, NodeRecord, PendingRequest } from './types';
import type { TeamWeight } from './fair-share';
import type { UsageHistory } from './usage-history';

/** What the scheduler looks at. */
export interface Snapshot {
  nodes: readonly NodeRecord[];
  leases: readonly Lease[];
  queue: readonly PendingRequest[];
  /** Team quotas (one cohort); absent or empty: no quotas. */
  teams?: readonly TeamQuota[];
  /** Kinds of node that can be added; a request that fits one waits (`WaitingForCapacity`) instead of being rejected. */
  templates?: readonly NodeTemplate[];
  /** Cluster-wide named limits; absent or empty: none (see `named-limits.ts`). */
  limits?: readonly NamedLimit[];
}

/** What a cycle depends on beyond the snapshot. */
export interface DecideOptions {
  /** Time (ms) of the cycle; backfill and aging need it. @default unknown: no backfill, no aging */
  now?: number;
  /** Policy fields to change from `DEFAULT_POLICY`. */
  policy?: Partial<SchedulingPolicy>;
  /** Expected workload for fragmentation-aware placement. @default the shapes in the queue */
  workload?: FragmentationModel;
  /** What fair share reads besides the leases, when the policy turns it on. @default no history, weights of 1 */
  fairShare?: FairShareInput;
}

/** What fair share reads besides the leases (see `fair-share.ts`). */
export interface FairShareInput {
  /** Each team's decayed usage, accrued to the cycle's time. @default none: current leases only */
  history?: UsageHistory;
  /** Team weights. @default 1 for every team */
  weights?: readonly TeamWeight[];
  /**
   * Shares fixed at the cycle's start, from leases only: how pools decided before progressive
   * filling and history, for runs recorded then. @default false
   */
  fixed?: boolean;
}

/** A request to grant now, and where. */
export interface GrantDecision {
  requestId: string;
  /** Node of the first (for most requests, the only) allocation. */
  nodeId: string;
  /** GPUs of the first allocation. */
  gpus: GpuShare[];
  /** Every allocation: one per replica of a gang. */
  allocations: Placement[];
}

/** A request to keep waiting (or to reject), and why. */
export interface WaitDecision {
  requestId: string;
  /** `Resources`, `Priority`, `QuotaExhausted`, `Preempting`, `WaitingForCapacity`, `NoNodes`, or `Unschedulable` for rejections. */
  reason: Reason;
  message: string;
}

/** Running work to evict so that a waiting request can start. */
export interface PreemptDecision {
  /** The victim's request id. */
  requestId: string;
  /** Every lease of the victim (a gang is evicted whole). */
  leaseIds: string[];
  /** The request that needs the room. */
  preemptor: string;
  reason: 'Preempted';
  message: string;
}

/** The outcome of one cycle. */
export interface Decisions {
  grants: GrantDecision[];
  /** Requests that no node (or quota) could ever satisfy. */
  rejections: WaitDecision[];
  waiting: WaitDecision[];
  preemptions: PreemptDecision[];
}

/** Decisions with nothing in them yet. */
export function noDecisions(): Decisions {
  return { grants: [], rejections: [], waiting: [], preemptions: [] };
}
