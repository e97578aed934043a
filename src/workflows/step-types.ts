/**
 * Inputs and results of a step.
 */
import type { ResourceSpec } from '../core';
import type { RequestedResources, StepUsage } from './usage-types';

export type { RequestedResources, StepUsage, UsageStat } from './usage-types';

/** The states a step goes through; also the values of the `AllotState` search attribute. */
export type StepState = 'queued' | 'running' | 'preempted' | 'succeeded' | 'failed' | 'cancelled';

/** What a step runs and what it needs. */
export interface StepInput {
  /** Step name, shown in status and the UI (`AllotStep`). */
  name: string;
  /** The workload as argv: never run through a shell. */
  command: string[];
  /** Resources to acquire. @default { cpu: "1", memory: "1Gi" } */
  resources?: ResourceSpec;
  /** Pool to acquire from. @default "default" */
  pool?: string;
  /** Larger runs first. @default 0 */
  priority?: number;
  /** Team the step is accounted to. @default "default" */
  team?: string;
  /** Extra environment variables for the workload. */
  env?: Record<string, string>;
  /**
   * Working directory of the workload; a relative one is taken from the agent's working directory.
   * @default the attempt's own work dir on the node (`ALLOT_WORK_DIR`), removed after the step
   */
  cwd?: string;
  /**
   * Files or folders the step produces, by name, as paths relative to its work dir
   * (`ALLOT_WORK_DIR`): `{ model: 'out/model.npz' }`. After a successful run the agent uploads each
   * to the store, and the result's `artifacts` carries a reference to it. The workload finds each
   * path in `ALLOT_OUTPUT_<NAME>` (upper snake case). @default none
   */
  outputs?: Record<string, string>;
  /**
   * Artifacts the step consumes, by name: references from earlier steps' results
   * (`{ model: train.artifacts.model }`). The agent downloads each into the work dir before the
   * run, checks its sha256, and names its path in `ALLOT_INPUT_<NAME>`. @default none
   */
  inputs?: Record<string, ArtifactRef>;
  /**
   * What becomes of the step's checkpoint in the store once the step has succeeded: `"remove"` it,
   * or `"keep"` it. @default "remove"
   */
  checkpointRetention?: CheckpointRetention;
  /** Keep the attempt's work dir on the node after the step (to look at what it left). @default false */
  keepWorkDir?: boolean;
  /** Time between SIGTERM and SIGKILL when the step is cancelled, in ms. @default 30000 */
  gracePeriodMs?: number;
  /** Wall-clock limit of one run, in ms; past it the step fails as `TimeLimitExceeded`. @default none */
  timeLimitMs?: number;
  /**
   * Memory at which the workload is killed and the step fails as `MemoryLimitExceeded`, like Slurm's
   * `--mem`: `"12Gi"`. At least `resources.memory`. @default resources.memory
   */
  memoryLimit?: number | string;
  /**
   * CPU the workload is held to (cgroup `cpu.max` where the node has cgroup v2; advisory elsewhere):
   * `4`, `"2500m"`. At least `resources.cpu`. @default resources.cpu
   */
  cpuLimit?: number | string;
  /** Whether a higher-priority or reclaiming step may evict it; it then resumes from its checkpoint. @default false */
  preemptible?: boolean;
  /**
   * Gang size: this many copies of `resources`, granted all at once or not at all, launched
   * together with torchrun's variables (`NNODES`, `NODE_RANK`, `MASTER_ADDR`, `MASTER_PORT`,
   * `WORLD_SIZE`, `RANK`, `LOCAL_WORLD_SIZE`) and stopped together. @default 1
   */
  replicas?: number;
  /**
   * Where a gang's replicas go: `"spread"`, one per node; `"pack"`, several on one node where they
   * fit. @default "spread"
   */
  replicaPlacement?: ReplicaPlacement;
  /**
   * Units of the pool's named limits the step holds while it runs, acquired together with its
   * resources: `{ 'feature-store': 1 }` (set them with `allot limit set`). A gang holds them once.
   * @default none
   */
  limits?: Record<string, number>;
  /** Running the step again after its workload failed. @default one attempt, no retry */
  retry?: StepRetryPolicy;
  /**
   * Number of the first attempt; set by `step()` when it runs the step again under its retry
   * policy, so that `ALLOT_ATTEMPT` keeps counting. @default 1
   */
  firstAttempt?: number;
}

/** How a gang's replicas are placed. */
export type ReplicaPlacement = 'spread' | 'pack';

/** What becomes of a step's checkpoint in the store after the step succeeds. */
export type CheckpointRetention = 'remove' | 'keep';

/**
 * A file or folder in the store, as a step's result names it and a later step's `inputs` take it.
 * Small enough for a workflow history: the content stays in the store.
 */
export interface ArtifactRef {
  /** Where it lives: `s3://bucket/prefix/artifacts/...` or `file:///path/artifacts/...`. */
  uri: string;
  /** Bytes (of all its files, for a folder). */
  size: number;
  /** sha256 (hex) of the file; for a folder, of its manifest (every file's path, size and sha256). */
  sha256: string;
  /** `"directory"` for a folder; absent for a file. */
  kind?: 'directory';
  /** Files in a folder. */
  files?: number;
}

/**
 * When and how `step()` runs a failed step again. Like Temporal's `RetryPolicy`, with exit codes
 * in place of error types. Infrastructure failures (a lost node, an expired lease) and preemption
 * are retried by the step itself and do not count here.
 */
export interface StepRetryPolicy {
  /** Attempts in all, the first included; `1` means no retry. @default 1 */
  maximumAttempts?: number;
  /** Wait before the first retry, ms. @default 1000 */
  initialIntervalMs?: number;
  /** Each wait is the previous one times this. @default 2 */
  backoffCoefficient?: number;
  /** Longest wait between attempts, ms. @default 100 × initialIntervalMs */
  maximumIntervalMs?: number;
  /** Exit codes that are never retried (a bad argument will not get better). @default [] */
  nonRetryableExitCodes?: number[];
}

/** What a finished step returns. */
export interface StepResult {
  /** The step workflow id, also `ALLOT_STEP_ID`. */
  stepId: string;
  name: string;
  exitCode: number | null;
  /** Signal name when the workload died by a signal. */
  signal: string | null;
  nodeId: string;
  gpuIndices: number[];
  /** JSON the workload wrote to `$ALLOT_OUTPUT`, or `{}`. */
  outputs: Record<string, unknown>;
  /** The files and folders of the step's `outputs`, uploaded to the store, by name. */
  artifacts?: Record<string, ArtifactRef>;
  /** Where the step's checkpoint lives in the store (kept or removed after success by `checkpointRetention`). */
  checkpoint?: string;
  /** Time from submission to grant, ms. */
  queuedMs: number;
  /** Time the workload ran, ms. */
  runningMs: number;
  /** Log file on the node. */
  logFile: string;
  /** Last lines of the log. */
  logTail: string[];
  /** What the workload used (mean and peak), beside what the step asked for. */
  usage?: StepUsage;
  /**
   * A gang's replicas, by rank: each one's node, GPUs, exit and log. The step's own `exitCode`,
   * `outputs`, `artifacts` and `checkpoint` are replica 0's. Absent for a single step.
   */
  replicas?: ReplicaResult[];
}

/** How one replica of a gang ended. */
export interface ReplicaResult {
  rank: number;
  nodeId: string;
  gpuIndices: number[];
  /** `null` when it did not run to its end (stopped with the gang, or never started). */
  exitCode: number | null;
  signal: string | null;
  runningMs?: number;
  logFile?: string;
  logTail?: string[];
  /** Why it ended without an exit of its own, when it did. */
  error?: string;
}

/** A step's state as its `progress` query reports it. */
export interface StepProgress {
  stepId: string;
  /** The request id this step holds in the pool (for the pool's `request` query). */
  requestId: string;
  name: string;
  state: StepState;
  pool: string;
  nodeId?: string;
  gpuIndices?: number[];
  /** A running gang's replicas, by rank: node and GPUs. */
  replicas?: { nodeId: string; gpuIndices: number[] }[];
  /** Why it waits, while queued. */
  reason?: string;
  message?: string;
  submittedAt: number;
  startedAt?: number;
  endedAt?: number;
  result?: StepResult;
  error?: string;
}

/** What the `launch` activity needs to start a workload on a node. */
export interface LaunchInput {
  stepId: string;
  name: string;
  attempt: number;
  leaseId: string;
  /** Pool that granted the lease (the agent checks the lease with it before launching). */
  pool?: string;
  /** The request the lease answers: the agent gives it back to the pool as soon as the workload has ended. */
  requestId?: string;
  command: string[];
  env: Record<string, string>;
  cwd?: string;
  /** Declared outputs: name → path relative to the work dir. @default none */
  outputs?: Record<string, string>;
  /** Artifacts to download before the run, by name. @default none */
  inputs?: Record<string, ArtifactRef>;
  /** @default "remove" */
  checkpointRetention?: CheckpointRetention;
  /** @default false */
  keepWorkDir?: boolean;
  gpuIndices: number[];
  /** Share of one GPU, when the step holds part of one. */
  gpuFraction?: number;
  /** Custom resources the lease holds on the node, by name (`ALLOT_RESOURCE_<NAME>`). @default none */
  custom?: Record<string, number>;
  /** SIGTERM → SIGKILL, ms: the step's own, or for a preemptible step at most the pool's. */
  gracePeriodMs: number;
  /**
   * The pool's node-lost time when the lease was granted, ms: an agent that cannot reach Temporal
   * stops the workload well within it (within the agent's own knowledge of it, if shorter). @default none
   */
  fenceMs?: number;
  /** Memory limit, MiB: past it the agent kills the workload (`MemoryLimitExceeded`). @default none */
  memoryLimitMiB?: number;
  /** CPU limit, milli-CPU: cgroup `cpu.max` where the node has it, advisory elsewhere. @default none */
  cpuLimitMilli?: number;
  /** Wall-clock limit, ms: past it the agent stops the workload (`TimeLimitExceeded`). @default none */
  timeLimitMs?: number;
  /** What the step asked for, reported beside its usage. */
  requested?: RequestedResources;
  /** This launch is one replica of a gang. @default a single step */
  gang?: GangLaunch;
}

/** Where one replica of a gang stands in it, and how its replicas find each other. */
export interface GangLaunch {
  /** The gang's id (`ALLOT_GANG_ID`): the same for every replica of an attempt. */
  id: string;
  /** `NODE_RANK`, from 0. */
  rank: number;
  /** `NNODES`: the number of replicas. */
  size: number;
  /** `MASTER_ADDR`: the advertised address of replica 0's node. */
  masterAddr: string;
  /** `MASTER_PORT`: a free port on replica 0's node, chosen by its agent. */
  masterPort: number;
}

/** What the `launch` activity reports when the workload has ended. */
export interface LaunchResult {
  exitCode: number | null;
  signal: string | null;
  outputs: Record<string, unknown>;
  /** The declared outputs, uploaded after a successful run. */
  artifacts?: Record<string, ArtifactRef>;
  /** Where the step's checkpoint lives in the store, when the agent has one. */
  checkpoint?: string;
  runningMs: number;
  logFile: string;
  logTail: string[];
  /** What the workload used (mean and peak). */
  usage?: StepUsage;
  /** Whether the agent has already given the lease back to the pool (then the step need not). */
  released?: boolean;
}
