/**
 * The failure types of a launch and of a step, in one place: the agent raises them (as the type of
 * an `ApplicationFailure`), the step workflow and the CLI read them.
 */

/** Why a launch failed. */
export const LaunchFailure = {
  /** Fencing: the agent's pool does not hold exactly this lease for this node and step. */
  StaleLease: 'StaleLease',
  /** Fencing: the agent's pool did not answer in time; nothing runs on an unconfirmed grant. */
  FencingUnavailable: 'FencingUnavailable',
  /** The device ledger: another lease still holds the GPUs. */
  DeviceConflict: 'DeviceConflict',
  /** The agent is draining and handed the step back. */
  NodeDraining: 'NodeDraining',
  /** The agent could not reach Temporal and stopped the workload so that it can run elsewhere. */
  NodeFenced: 'NodeFenced',
  /** The pool no longer holds the lease: the agent stopped the workload. */
  LeaseNotHeld: 'LeaseNotHeld',
  /** The agent's worker stopped without draining. */
  WorkerShutdown: 'WorkerShutdown',
  /** The workload broke its memory limit. */
  MemoryLimitExceeded: 'MemoryLimitExceeded',
  /** The workload ran past its time limit. */
  TimeLimitExceeded: 'TimeLimitExceeded',
  /** The command could not start. */
  LaunchFailed: 'LaunchFailed',
  /** An input artifact is missing, or does not match its sha256: the step fails before its workload starts. */
  InputUnavailable: 'InputUnavailable',
  /** The workload succeeded but did not leave a declared output: the step fails. */
  OutputMissing: 'OutputMissing',
  /** The store could not be read or written (the checkpoint before a run, the outputs after it): the step runs again. */
  StoreUnavailable: 'StoreUnavailable',
} as const;

export type LaunchFailureType = (typeof LaunchFailure)[keyof typeof LaunchFailure];

/**
 * Launch failures that say nothing of the workload, only of its node: refused by fencing or the
 * device ledger, stopped by a draining, cut-off or stopping agent. The step runs again.
 */
export const INFRASTRUCTURE_FAILURES: ReadonlySet<string> = new Set<LaunchFailureType>([
  LaunchFailure.DeviceConflict,
  LaunchFailure.StaleLease,
  LaunchFailure.NodeDraining,
  LaunchFailure.NodeFenced,
  LaunchFailure.LeaseNotHeld,
  LaunchFailure.FencingUnavailable,
  LaunchFailure.StoreUnavailable,
]);

/** The failure type of a step whose workload exited with a non-zero code (its result in the details). */
export const NON_ZERO_EXIT = 'NonZeroExit';

/**
 * Reasons of a revocation that prove the workload of the lease no longer runs: the node was lost
 * (its agent stopped what it ran before that), its agent restarted (what it ran died with it), or
 * its agent said that the workload has ended.
 */
export const STOPPED_REASONS: ReadonlySet<string> = new Set(['NodeLost', 'NodeRestarted', 'WorkloadStopped']);

/** Reasons the pool gives a step for refusing, withdrawing or interrupting its request. */
export const PoolReason = {
  /** The pool's queue is at its limit: the step asks again later. */
  QueueFull: 'QueueFull',
  /** No node or quota could ever satisfy the request (the step fails with this type). */
  Unschedulable: 'Unschedulable',
  /** The pool took the lease back for a request that outranks it: the step queues again. */
  Preempted: 'Preempted',
} as const;

/** The failure type of a step whose pool's workflow is not running. */
export const POOL_NOT_RUNNING = 'PoolNotRunning';

/** The reason of an attempt whose agent stopped answering (its launch timed out): the step runs again. */
export const NODE_UNRESPONSIVE = 'NodeUnresponsive';
