/**
 * Plain-JSON shapes shared by the core, the workflows and the clients. Everything here must survive
 * `JSON.stringify` unchanged: it travels in Temporal payloads and continue-as-new state.
 */
import type { Reason } from './reasons';

/** What a user writes for a step's resources (Kubernetes-style quantities). */
export interface ResourceSpec {
  /** Whole GPUs (`2`) or a fraction of one GPU (`0.5`). @default 0 */
  gpu?: number | string;
  /** CPU cores: `2`, `"1.5"`, `"500m"`. @default "1" */
  cpu?: number | string;
  /** Memory: `"512Mi"`, `"8Gi"`. @default "1Gi" */
  memory?: number | string;
  /** Minimum memory of each granted GPU, e.g. `"40Gi"`. @default any */
  gpuMemory?: number | string;
  /** GPU model, or alternatives separated by `|`: `"A100|H100"`. @default any */
  gpuModel?: string;
  /** Node labels that must all match, e.g. `{ zone: "a" }`. @default none */
  labels?: Record<string, string>;
  /** Custom integer resources per node, e.g. `{ licenses: 1 }`. @default none */
  custom?: Record<string, number>;
}

/** A resource request in integer units, as the scheduler sees it. */
export interface ResourceRequest {
  /** Milli-CPU. */
  cpuMilli: number;
  /** Memory in MiB. */
  memoryMiB: number;
  /** Milli-GPU: a multiple of 1000 for whole GPUs, or 10..990 for a share of one GPU. */
  gpuMilli: number;
  /** Minimum memory per GPU in MiB; 0 means any. For a share of a GPU, the memory it reserves on that GPU. */
  gpuMemoryMiB: number;
  /** Acceptable GPU models; empty means any. */
  gpuModels: string[];
  /** Node labels that must all match. */
  labels: Record<string, string>;
  /** Custom integer resources (licenses, say), by name; absent means none. */
  custom?: Record<string, number>;
}

/** One GPU of a node. */
export interface GpuDevice {
  /** Index as `nvidia-smi` and `CUDA_VISIBLE_DEVICES` number it. */
  index: number;
  /** Model name, e.g. `A100`. */
  model: string;
  /** Device memory in MiB. */
  memoryMiB: number;
  /** Device UUID where known. */
  uuid?: string;
}

/** What a node offers to the pool. */
export interface NodeSpec {
  /** Node id; the agent polls the task queue `allot-node-<id>`. */
  id: string;
  /** Allocatable milli-CPU. */
  cpuMilli: number;
  /** Allocatable memory in MiB. */
  memoryMiB: number;
  /** GPUs of the node. */
  gpus: GpuDevice[];
  /** Labels used by selectors. */
  labels: Record<string, string>;
  /** Custom integer resources the node offers, by name (licenses, say); absent means none. */
  custom?: Record<string, number>;
  /** Where other nodes reach it (host name or IP address): a gang's `MASTER_ADDR` when its replica 0 runs here. */
  address?: string;
}

/** Readiness of a registered node. */
export type NodeStatus = 'Ready' | 'NotReady' | 'Draining';

/** A node as the pool tracks it. */
export interface NodeRecord {
  spec: NodeSpec;
  status: NodeStatus;
  /** Workflow time (ms) of the last registration. */
  registeredAt: number;
  /** Workflow time (ms) of the last heartbeat (or registration). @default registeredAt */
  lastSeenAt?: number;
  /** Workflow time (ms) it was declared lost; heartbeats do not bring it back, a registration does. */
  lostAt?: number;
}

/** The share of one GPU held by a lease. */
export interface GpuShare {
  index: number;
  /** Milli-GPU held on this device (1000 for a whole GPU). */
  milli: number;
  /** GPU memory reserved on this device in MiB (the whole device for a whole GPU). */
  memoryMiB: number;
}

/** Who is waiting for a grant: a step workflow (told by signal) or a client (polls by query). */
export type RequestOwner = { kind: 'workflow'; workflowId: string } | { kind: 'client'; name: string };

/** How a gang's copies are placed: `spread` one per node, `pack` several on one node where they fit. */
export type ReplicaPlacement = 'spread' | 'pack';

/** A request waiting in the pool's queue. */
export interface PendingRequest {
  /** Idempotency key: a second acquire with the same id changes nothing. */
  requestId: string;
  owner: RequestOwner;
  resources: ResourceRequest;
  /** Larger runs first. */
  priority: number;
  team: string;
  /** Human label of the step (for status output). */
  label: string;
  /** Workflow time (ms) when first submitted: the order among equal priorities. */
  submittedAt: number;
  /** Pool time (ms) when this request entered the queue. @default submittedAt */
  queuedAt?: number;
  /** Time (ms) the step waited in the queue in its earlier attempts, as the pool saw it; aging counts it. @default 0 */
  waitedMs?: number;
  /** Arrival sequence number in the pool: the final tiebreak. */
  seq: number;
  /** Why it waits, as a reason code (`Resources`, `Priority`, `NoNodes`, ...). */
  reason: Reason;
  /** The reason in words. */
  message: string;
  /** Gang size: this many allocations of `resources`, granted all at once or not at all. @default 1 */
  replicas?: number;
  /**
   * How a gang's copies are placed: `spread` one per node (multi-node training wants each on its
   * own machine), `pack` several on one node where they fit. @default 'spread'
   */
  replicaPlacement?: ReplicaPlacement;
  /** Units of the pool's named limits it needs, by name, once for the whole request (see `named-limits.ts`). @default none */
  limits?: Record<string, number>;
  /** Longest the work may run once granted, in ms; backfill relies on it. @default none (never backfilled) */
  timeLimitMs?: number;
  /** Whether a higher-priority or reclaiming request may evict it once granted. @default false */
  preemptible?: boolean;
  /** The step's own grace period between SIGTERM and SIGKILL, ms; the pool's policy bounds it. @default the policy's */
  gracePeriodMs?: number;
  /**
   * When (pool time, ms) it first evicted running work, while it is not granted yet: such requests
   * go first in the queue, the earliest first, so that the room their victims free is theirs (and
   * not a victim's queued again, a later borrower's, or a later preemptor's).
   */
  preempting?: number;
  /**
   * The steps it has evicted so far (owner workflow ids, or request ids for other owners): none of
   * them is evicted for it again, whatever happened to the room they freed.
   */
  evicted?: string[];
}

/** Resources granted to one request on one node. */
export interface Lease {
  leaseId: string;
  requestId: string;
  owner: RequestOwner;
  nodeId: string;
  cpuMilli: number;
  memoryMiB: number;
  gpus: GpuShare[];
  priority: number;
  team: string;
  label: string;
  submittedAt: number;
  /** Workflow time (ms) of the grant. */
  grantedAt: number;
  /** Workflow time (ms) after which the lease is freed unless renewed. @default never */
  expiresAt?: number;
  /** Custom integer resources held, by name. */
  custom?: Record<string, number>;
  /** Units of the pool's named limits held, by name; a gang holds them on its first copy's lease only. */
  limits?: Record<string, number>;
  /** Copied from the request: whether the scheduler may evict it. @default false */
  preemptible?: boolean;
  /** Copied from the request: the run ends by `grantedAt + timeLimitMs` (ms). @default unknown */
  timeLimitMs?: number;
  /** Time (ms) the scheduler chose to preempt it; it frees its resources within the grace period. */
  preemptedAt?: number;
  /** The request that needs its resources, once preempted. */
  preemptedFor?: string;
  /** Time (ms) its request waited before the grant, all attempts together; it keeps this priority while it runs. @default 0 */
  waitedMs?: number;
  /** How long (ms) it has to stop once preempted: the pool's grace period, or the step's own if shorter. @default the policy's */
  gracePeriodMs?: number;
  /** Its time to live (ms): renewals extend it by this much; set at the grant, so a later policy change leaves it be. @default the policy's */
  ttlMs?: number;
  /** The pool's node-lost time at the grant (ms): a cut-off agent stops the workload well within it. */
  fenceMs?: number;
  /** Which copy of a gang it grants, from 0 (the gang's rank); absent for a single request. */
  replica?: number;
  /** The gang's size; absent for a single request. */
  replicas?: number;
}

/** A request that can never be satisfied, with the reason. */
export interface Rejection {
  requestId: string;
  owner: RequestOwner;
  /** Why, as a reason code (`Unschedulable`, `QueueFull`, `UnknownTeam`). */
  reason: Reason;
  message: string;
}
