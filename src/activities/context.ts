/**
 * What the agent gives its activities, and what they tell it back: the types shared by the launch,
 * fencing and the process group.
 */
import type { Lease } from '../core';
import type { Store } from '../store/types';
import type { LaunchInput } from '../workflows/step-types';
import type { StepUsage } from '../workflows/usage-types';
import type { CgroupSupport } from './cgroup';
import type { LeaseLedger } from './ledger';
import type { CurrentUsage, GpuUsageSource } from './monitor';

/** A launch in progress, as the agent's status and metrics see it. */
export interface RunningLaunch {
  input: LaunchInput;
  startedAt: number;
  logFile: string;
  /** Mean and peak so far. */
  usage(): StepUsage;
  /** The latest sample. */
  current(): CurrentUsage;
  /**
   * Stops the workload (SIGTERM, then SIGKILL after `graceMs`) for the agent's own reasons: it
   * cannot reach Temporal (`fenced`), or the pool no longer holds its lease (`not-held`).
   */
  stop(why: 'fenced' | 'not-held', graceMs: number): void;
}

/** How a launch ended, for metrics. */
export type LaunchOutcome =
  'succeeded' | 'failed' | 'memory_limit' | 'time_limit' | 'cancelled' | 'handed_back' | 'launch_failed';

/** What the agent gives its activities. */
export interface AgentContext {
  nodeId: string;
  /** The address other nodes reach this one at (a gang's `MASTER_ADDR` when its replica 0 runs here). */
  advertiseAddress?: string;
  /** Root of logs, outputs, checkpoints and work dirs on this node. */
  dataDir: string;
  /**
   * The store that checkpoints and artifacts live in, once the agent knows it (its own, or its
   * pool's); without one, checkpoints stay on the node and steps cannot declare outputs.
   */
  store?: Promise<Store | undefined>;
  /** Time between checkpoint saves while a workload runs, ms. @default 2000 */
  checkpointSyncMs?: number;
  /** Bytes moved to and from the store, and failed checkpoint saves (for metrics). */
  storeEvents?: StoreEvents;
  /** Launches whose workload has ended but whose checkpoint or outputs are still being sent, by lease id. */
  finishing?: Set<string>;
  ledger: LeaseLedger;
  /** Agent variables passed through to workloads. @default DEFAULT_ENV_ALLOWLIST */
  envAllowlist?: string[];
  /** Interval between heartbeats, ms. @default 1000 */
  heartbeatMs?: number;
  /** The pool this agent serves: launches of any other pool are refused. */
  pool?: string;
  /**
   * Asks this agent's pool for a lease (fencing): the lease, or `null` when the pool does not hold
   * it; throws when the pool cannot be asked. Without it, launches are not fenced (tests).
   */
  lookupLease?: (leaseId: string) => Promise<Lease | null>;
  /** Longest a launch waits for the pool to answer its fencing query before it is refused, ms. @default 30000 */
  fencingWaitMs?: number;
  /** Longest a launch waits for devices that a stopping workload still holds, ms. @default 60000 */
  deviceWaitMs?: number;
  /** Device index → the id `CUDA_VISIBLE_DEVICES` takes for it. @default the index itself */
  visibleIds?: Record<number, string>;
  /** Where workloads get cgroups for their limits; without, memory is watched by polling. */
  cgroups?: CgroupSupport;
  /** GPU samples of the node (usage); absent on a node without `nvidia-smi`. */
  gpu?: GpuUsageSource;
  /** Time between usage samples (and memory checks when polling), ms. @default 500 */
  sampleMs?: number;
  /** Launches running now, by lease id; kept up to date when given. */
  running?: Map<string, RunningLaunch>;
  /** Called when a launch that got as far as the ledger ends, with what its workload used. */
  onEnded?: (input: LaunchInput, outcome: LaunchOutcome, usage?: StepUsage) => void;
  /**
   * Aborted when the agent hands its steps back (it is stopping after a drain deadline): running
   * workloads get SIGTERM, then SIGKILL after their grace period, and fail as `NodeDraining`.
   */
  handback?: AbortSignal;
  /** True while the agent drains: new launches are refused (`NodeDraining`) and run elsewhere. */
  draining?: () => boolean;
}

/** What the agent counts of its traffic with the store. */
export interface StoreEvents {
  transferred(what: 'checkpoint' | 'artifact', direction: 'upload' | 'download', bytes: number): void;
  checkpointSaveFailed(): void;
}

/** Why the agent stopped a workload itself, if it did. */
export type Stopped =
  | { why: 'memory'; peakBytes: number }
  | { why: 'time' }
  | { why: 'handback' }
  | { why: 'fenced' }
  | { why: 'not-held' };
