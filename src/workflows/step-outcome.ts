/**
 * What an attempt of a step comes to: the step launches, succeeds, fails, queues again (it lost
 * its node or lease, or was preempted), or asks again later (the pool's queue was full). Pure: it
 * reads the attempt as plain data, so that every rule is tested without Temporal.
 */
import { NON_ZERO_EXIT, PoolReason } from './failures';

/** How often a step runs again after losing its node or lease before it gives up. */
export const MAX_INFRASTRUCTURE_RETRIES = 10;

/** How long a step turned away by a full queue (`QueueFull`) waits before it asks again, ms. */
export const QUEUE_FULL_RETRY_MS = 30_000;

/** How long a step waits for a silent node to stop its workload when the lease does not say, ms. */
export const DEFAULT_FENCE_MS = 60_000;

/**
 * A launch's heartbeat timeout, ms: an agent that hears nothing back learns of a timeout at its
 * next heartbeat, which the SDK sends within this.
 */
export const LAUNCH_HEARTBEAT_TIMEOUT_MS = 20_000;

/** Why an attempt ended without a result of the workload (or why the pool refused it). */
export interface Interrupted {
  reason: string;
  message: string;
}

/** A launch that failed, as plain facts. */
export interface LaunchFailureFacts {
  /** What the pool told the attempt meanwhile (a preemption, a revocation), if anything. */
  interrupted?: Interrupted;
  /** Set when the failure says nothing of the workload, only of its node or agent. */
  infrastructure?: Interrupted;
  /** Set when the workload broke its memory or time limit (`reason` is the failure type). */
  limit?: Interrupted;
  /** The failure is a cancellation: of the step, or of the launch by an interruption. */
  cancellation: boolean;
  /** The agent stopped answering, so the workload may still run where it cannot reach Temporal. */
  mayStillRun: boolean;
  /** The failure's own message. */
  message: string;
  /** The lease's fence time, ms (@default DEFAULT_FENCE_MS when the lease does not say). */
  fenceMs?: number;
  /** The grace period the launch was given, ms. */
  graceMs: number;
}

/** Where an attempt stands when its meaning is decided. */
export type AttemptEnd =
  /** The pool answered without a grant: a rejection, or the request withdrawn. */
  | { kind: 'notGranted'; rejection?: Interrupted; withdrawn?: Interrupted }
  /** Granted; `interrupted` when preempted or revoked in the very task of the grant. */
  | { kind: 'granted'; interrupted?: Interrupted }
  /** The launch failed. */
  | ({ kind: 'launchFailed' } & LaunchFailureFacts)
  /** The workload ran and ended. */
  | { kind: 'exited'; exitCode: number | null; signal: string | null; replica?: string };

/** What the step knows of itself besides the attempt. */
export interface StepContext {
  /** The step's name. */
  name: string;
  /** The attempt's number, from 1. */
  attempt: number;
  /** Attempts so far run again after losing their node or lease (preemptions do not count). */
  infrastructureRetries: number;
  /** The step itself was cancelled. */
  cancelled: boolean;
}

/** How a failing step fails. */
export type StepFailure =
  /** With a failure of its own; `withResult`: the step's result goes in its details. */
  | { cause: 'step'; type: string; message: string; withResult?: boolean }
  /** With the workload's limit failure, as the step's own. */
  | { cause: 'limit' }
  /** With the launch's failure as it came. */
  | { cause: 'launch' };

/** What an attempt comes to. */
export type Outcome =
  /** Launch the workload on the grant. */
  | { kind: 'launch' }
  /** The workload succeeded. */
  | { kind: 'succeed' }
  /**
   * Give the lease back and queue again as the next attempt, with the original submit time.
   * `preempted`: shown as preempted meanwhile. `waitForStopMs`: first wait up to this long for
   * word that the workload has stopped.
   */
  | { kind: 'requeue'; why: Interrupted; preempted: boolean; infrastructureRetries: number; waitForStopMs?: number }
  /** Ask the pool again, as a new request, after `afterMs`. */
  | { kind: 'askAgainLater'; why: Interrupted; afterMs: number }
  /** The step fails; `error` is what its progress shows. */
  | { kind: 'fail'; error: string; failure: StepFailure }
  /** The step was cancelled: it fails with the cancellation. */
  | { kind: 'cancelled' };

/** Decides what an attempt comes to. */
export function decideOutcome(end: AttemptEnd, step: StepContext): Outcome {
  switch (end.kind) {
    case 'notGranted': {
      if (!end.rejection && end.withdrawn) {
        // The pool holds nothing for this request any more (withdrawn by someone else): ask again.
        return {
          kind: 'requeue',
          why: end.withdrawn,
          preempted: false,
          infrastructureRetries: step.infrastructureRetries,
        };
      }
      if (end.rejection?.reason === PoolReason.QueueFull) {
        return { kind: 'askAgainLater', why: end.rejection, afterMs: QUEUE_FULL_RETRY_MS };
      }
      const r = end.rejection ?? { reason: PoolReason.Unschedulable, message: 'rejected by the pool' };
      const message = `step ${step.name} cannot be scheduled: ${r.message}`;
      return { kind: 'fail', error: `${r.reason}: ${r.message}`, failure: { cause: 'step', type: r.reason, message } };
    }
    case 'granted':
      // Preempted (or revoked) in the very task that granted it: never launch. A cancelled step
      // launches, and the launch ends at once.
      if (!end.interrupted || step.cancelled) return { kind: 'launch' };
      return requeueOrGiveUp(end.interrupted, step) ?? giveUp(end.interrupted, step);
    case 'launchFailed': {
      const lost = step.cancelled ? undefined : (end.interrupted ?? end.infrastructure);
      const requeue = lost && requeueOrGiveUp(lost, step);
      if (requeue) {
        if (!end.mayStillRun) return requeue;
        // The agent stopped answering: keep the lease until the workload is known to be gone, or
        // until it must be: a cut-off agent stops it within the fence time, and one that hears of
        // the timeout stops it within its grace period.
        const waitForStopMs = (end.fenceMs ?? DEFAULT_FENCE_MS) + end.graceMs + LAUNCH_HEARTBEAT_TIMEOUT_MS;
        return { ...requeue, waitForStopMs };
      }
      if (end.cancellation) return { kind: 'cancelled' };
      if (lost) return giveUp(lost, step);
      if (end.limit)
        return { kind: 'fail', error: `${end.limit.reason}: ${end.limit.message}`, failure: { cause: 'limit' } };
      return { kind: 'fail', error: end.message, failure: { cause: 'launch' } };
    }
    case 'exited': {
      if (end.exitCode === 0) return { kind: 'succeed' };
      const exit = end.signal ? `was killed by ${end.signal}` : `exited with code ${String(end.exitCode)}`;
      // A gang's failure names the replica that ended it: `step train: replica 1 (node b) exited with code 1`.
      const how = end.replica ? `${end.replica} ${exit}` : exit;
      const failure = {
        cause: 'step',
        type: NON_ZERO_EXIT,
        message: end.replica ? `step ${step.name}: ${how}` : `step ${step.name} ${how}`,
        withResult: true,
      } as const;
      return { kind: 'fail', error: end.replica ? `${step.name}: ${how}` : `${step.name} ${how}`, failure };
    }
  }
}

/**
 * Queues a lost attempt again: always after a preemption, which is the pool's choice; after a lost
 * node or lease, up to MAX_INFRASTRUCTURE_RETRIES times. Undefined once those are spent.
 */
function requeueOrGiveUp(lost: Interrupted, step: StepContext): (Outcome & { kind: 'requeue' }) | undefined {
  const preempted = lost.reason === PoolReason.Preempted;
  const infrastructureRetries = preempted ? step.infrastructureRetries : step.infrastructureRetries + 1;
  if (!preempted && infrastructureRetries > MAX_INFRASTRUCTURE_RETRIES) return undefined;
  return { kind: 'requeue', why: lost, preempted, infrastructureRetries };
}

/** The step gives up after losing its node or lease too often. */
function giveUp(lost: Interrupted, step: StepContext): Outcome {
  return {
    kind: 'fail',
    error: `${lost.reason}: ${lost.message} (gave up after ${step.attempt} attempts)`,
    failure: {
      cause: 'step',
      type: lost.reason,
      message: `step ${step.name} gave up after ${step.attempt} attempts: ${lost.message}`,
    },
  };
}
