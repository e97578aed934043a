/**
 * What an attempt of a step comes to, decided without Temporal: one row per rule.
 */
import { describe, expect, it } from 'vitest';
import { LaunchFailure, NON_ZERO_EXIT, PoolReason } from '../../src/workflows/failures';
import type { AttemptEnd, LaunchFailureFacts, Outcome, StepContext } from '../../src/workflows/step-outcome';
import {
  DEFAULT_FENCE_MS,
  LAUNCH_HEARTBEAT_TIMEOUT_MS,
  MAX_INFRASTRUCTURE_RETRIES,
  QUEUE_FULL_RETRY_MS,
  decideOutcome,
} from '../../src/workflows/step-outcome';

const step: StepContext = { name: 'train', attempt: 3, infrastructureRetries: 0, cancelled: false };
const preempted = { reason: PoolReason.Preempted, message: 'preempted by urgent' };
const nodeLost = { reason: 'NodeLost', message: 'node n1 was lost' };
const fenced = { reason: LaunchFailure.NodeFenced, message: 'the agent fenced itself' };
const oom = { reason: LaunchFailure.MemoryLimitExceeded, message: 'used 9Gi of 8Gi' };

/** A launch failure: the launch's own error, nothing told, unless the row says. */
function launchFailed(facts: Partial<LaunchFailureFacts> = {}): AttemptEnd {
  return { kind: 'launchFailed', cancellation: false, mayStillRun: false, message: 'boom', graceMs: 500, ...facts };
}

const spent: Partial<StepContext> = { infrastructureRetries: MAX_INFRASTRUCTURE_RETRIES };

const rows: { name: string; end: AttemptEnd; step?: Partial<StepContext>; outcome: Outcome }[] = [
  // The pool's answer.
  {
    name: 'a request withdrawn by someone else queues again, without counting a retry',
    end: { kind: 'notGranted', withdrawn: nodeLost },
    outcome: { kind: 'requeue', why: nodeLost, preempted: false, infrastructureRetries: 0 },
  },
  {
    name: 'a full queue is asked again later',
    end: { kind: 'notGranted', rejection: { reason: PoolReason.QueueFull, message: 'queue full' } },
    outcome: {
      kind: 'askAgainLater',
      why: { reason: PoolReason.QueueFull, message: 'queue full' },
      afterMs: QUEUE_FULL_RETRY_MS,
    },
  },
  {
    name: 'a rejection fails the step with its reason, even when the request was also withdrawn',
    end: {
      kind: 'notGranted',
      rejection: { reason: PoolReason.Unschedulable, message: 'no node has 64 GPUs' },
      withdrawn: nodeLost,
    },
    outcome: {
      kind: 'fail',
      error: 'Unschedulable: no node has 64 GPUs',
      failure: { cause: 'step', type: 'Unschedulable', message: 'step train cannot be scheduled: no node has 64 GPUs' },
    },
  },
  {
    name: 'no grant and no word at all is unschedulable',
    end: { kind: 'notGranted' },
    outcome: {
      kind: 'fail',
      error: 'Unschedulable: rejected by the pool',
      failure: {
        cause: 'step',
        type: 'Unschedulable',
        message: 'step train cannot be scheduled: rejected by the pool',
      },
    },
  },
  // The grant.
  { name: 'a grant launches', end: { kind: 'granted' }, outcome: { kind: 'launch' } },
  {
    name: 'a grant preempted in its own task queues again as preempted, without counting a retry',
    end: { kind: 'granted', interrupted: preempted },
    step: spent,
    outcome: { kind: 'requeue', why: preempted, preempted: true, infrastructureRetries: MAX_INFRASTRUCTURE_RETRIES },
  },
  {
    name: 'a grant revoked in its own task queues again, counting a retry',
    end: { kind: 'granted', interrupted: nodeLost },
    outcome: { kind: 'requeue', why: nodeLost, preempted: false, infrastructureRetries: 1 },
  },
  {
    name: 'a grant revoked once too often gives up',
    end: { kind: 'granted', interrupted: nodeLost },
    step: spent,
    outcome: {
      kind: 'fail',
      error: 'NodeLost: node n1 was lost (gave up after 3 attempts)',
      failure: { cause: 'step', type: 'NodeLost', message: 'step train gave up after 3 attempts: node n1 was lost' },
    },
  },
  {
    name: 'a cancelled step launches even when interrupted (the launch ends at once)',
    end: { kind: 'granted', interrupted: preempted },
    step: { cancelled: true },
    outcome: { kind: 'launch' },
  },
  // The launch.
  {
    name: 'a launch preempted meanwhile queues again as preempted',
    end: launchFailed({ interrupted: preempted, cancellation: true }),
    outcome: { kind: 'requeue', why: preempted, preempted: true, infrastructureRetries: 0 },
  },
  {
    name: 'an infrastructure failure queues again, counting a retry',
    end: launchFailed({ infrastructure: fenced }),
    step: { infrastructureRetries: 4 },
    outcome: { kind: 'requeue', why: fenced, preempted: false, infrastructureRetries: 5 },
  },
  {
    name: 'what the pool said outranks what the launch says',
    end: launchFailed({ interrupted: nodeLost, infrastructure: fenced }),
    outcome: { kind: 'requeue', why: nodeLost, preempted: false, infrastructureRetries: 1 },
  },
  {
    name: 'a silent agent is waited for, for the fence time, the grace and a heartbeat',
    end: launchFailed({ infrastructure: nodeLost, mayStillRun: true, fenceMs: 9_000 }),
    outcome: {
      kind: 'requeue',
      why: nodeLost,
      preempted: false,
      infrastructureRetries: 1,
      waitForStopMs: 9_000 + 500 + LAUNCH_HEARTBEAT_TIMEOUT_MS,
    },
  },
  {
    name: 'a lease without a fence time is waited for the default',
    end: launchFailed({ infrastructure: nodeLost, mayStillRun: true }),
    outcome: {
      kind: 'requeue',
      why: nodeLost,
      preempted: false,
      infrastructureRetries: 1,
      waitForStopMs: DEFAULT_FENCE_MS + 500 + LAUNCH_HEARTBEAT_TIMEOUT_MS,
    },
  },
  {
    name: 'the last infrastructure retry still queues again',
    end: launchFailed({ infrastructure: fenced }),
    step: { infrastructureRetries: MAX_INFRASTRUCTURE_RETRIES - 1 },
    outcome: { kind: 'requeue', why: fenced, preempted: false, infrastructureRetries: MAX_INFRASTRUCTURE_RETRIES },
  },
  {
    name: 'an infrastructure failure once too often gives up',
    end: launchFailed({ infrastructure: fenced }),
    step: spent,
    outcome: {
      kind: 'fail',
      error: 'NodeFenced: the agent fenced itself (gave up after 3 attempts)',
      failure: {
        cause: 'step',
        type: 'NodeFenced',
        message: 'step train gave up after 3 attempts: the agent fenced itself',
      },
    },
  },
  {
    name: 'a cancelled step is cancelled, whatever the pool said',
    end: launchFailed({ interrupted: preempted, cancellation: true }),
    step: { cancelled: true },
    outcome: { kind: 'cancelled' },
  },
  {
    name: 'a launch cancelled by an interruption once too often ends as cancelled',
    end: launchFailed({ interrupted: nodeLost, cancellation: true }),
    step: spent,
    outcome: { kind: 'cancelled' },
  },
  {
    name: 'a broken memory limit fails the step with the limit failure',
    end: launchFailed({ limit: oom }),
    outcome: { kind: 'fail', error: 'MemoryLimitExceeded: used 9Gi of 8Gi', failure: { cause: 'limit' } },
  },
  {
    name: 'any other launch failure fails the step with it',
    end: launchFailed(),
    outcome: { kind: 'fail', error: 'boom', failure: { cause: 'launch' } },
  },
  // The workload.
  { name: 'exit code 0 succeeds', end: { kind: 'exited', exitCode: 0, signal: null }, outcome: { kind: 'succeed' } },
  {
    name: 'a non-zero exit code fails the step with its result',
    end: { kind: 'exited', exitCode: 3, signal: null },
    outcome: {
      kind: 'fail',
      error: 'train exited with code 3',
      failure: { cause: 'step', type: NON_ZERO_EXIT, message: 'step train exited with code 3', withResult: true },
    },
  },
  {
    name: 'a killed workload fails the step, naming the signal',
    end: { kind: 'exited', exitCode: null, signal: 'SIGKILL' },
    outcome: {
      kind: 'fail',
      error: 'train was killed by SIGKILL',
      failure: { cause: 'step', type: NON_ZERO_EXIT, message: 'step train was killed by SIGKILL', withResult: true },
    },
  },
];

describe('what an attempt comes to', () => {
  it.each(rows)('$name', ({ end, step: overrides, outcome }) => {
    expect(decideOutcome(end, { ...step, ...overrides })).toEqual(outcome);
  });
});
