/**
 * `allotStep`: one step as an acquire → launch → release saga. The release runs in a
 * non-cancellable scope, so a step that fails or is cancelled still gives its resources back.
 *
 * While it runs, the step renews its lease. When the pool takes the lease back (it expired, or
 * the node was lost), or the launch is lost with its node (heartbeat timeout), the step stops what
 * is left of the workload, releases, and queues again with its original submit time, as attempt
 * n + 1 with the same checkpoint directory. What each attempt comes to is decided in
 * `step-outcome.ts`; this file acts on it.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
} from '@temporalio/workflow';
import type { Lease } from '../core';
import { formatIssues } from '../core';
import { acquire, waitToAskAgain } from './step-acquire';
import { launchOnGrant, limitExceeded } from './step-attempt';
import { launchGang, lostReplica, replicaName, replicaResults } from './step-gang';
import type { AttemptEnd, LaunchFailureFacts, Outcome } from './step-outcome';
import { decideOutcome } from './step-outcome';
import { StepRun } from './step-run';
import type { LaunchResult, StepInput, StepResult } from './step-types';
import { validateStepInput } from './step-validation';

export { DEFAULT_GRACE_PERIOD_MS } from './step-run';
export {
  DEFAULT_FENCE_MS,
  LAUNCH_HEARTBEAT_TIMEOUT_MS,
  MAX_INFRASTRUCTURE_RETRIES,
  QUEUE_FULL_RETRY_MS,
} from './step-outcome';

/** The step workflow. */
export async function allotStep(input: StepInput): Promise<StepResult> {
  const { request, issues } = validateStepInput(input);
  if (!request || issues.length > 0)
    throw ApplicationFailure.nonRetryable(`invalid step options:\n${formatIssues(issues)}`, 'InvalidInput', issues);
  const run = new StepRun(input, request);
  const decide = (end: AttemptEnd, attempt: number): Outcome =>
    decideOutcome(end, {
      name: input.name,
      attempt,
      infrastructureRetries: run.infrastructureRetries,
      cancelled: run.cancelled,
    });

  for (let attempt = 1; ; attempt++) {
    run.beginAttempt(attempt);
    const answer = await acquire(run);
    const leases = answer.lease ? (run.told.leases ?? [answer.lease]) : [];
    if (answer.lease) run.hold(leases);
    const granted = decide(answer.end, attempt);
    if (granted.kind === 'askAgainLater') {
      await waitToAskAgain(run, granted.why, granted.afterMs);
      continue;
    }
    if (granted.kind === 'requeue') {
      await requeue(run, granted, attempt);
      continue;
    }
    if (granted.kind !== 'launch' || !answer.lease) return fail(run, granted, { held: answer.lease !== undefined });
    if (leases.length > 1) {
      const result = await runGang(run, leases, attempt, decide);
      if (result) return result;
      continue;
    }

    const ended = await launchOnGrant(run, answer.lease, attempt);
    if ('failed' in ended) {
      const outcome = decide({ kind: 'launchFailed', ...ended.facts }, attempt);
      if (outcome.kind === 'requeue') {
        await requeue(run, outcome, attempt);
        continue;
      }
      run.stopRenewing();
      return fail(run, outcome, { held: true, err: ended.failed });
    }
    run.stopRenewing();
    const { launched } = ended;
    // The agent gave the lease back the moment the workload ended, so that the next step starts sooner.
    const releasedByAgent = launched.released === true;
    const result = stepResult(run, answer.lease, launched);
    run.progress.result = result;
    run.progress.endedAt = Date.now();
    run.noteUsage([launched.usage]);
    const outcome = decide({ kind: 'exited', exitCode: launched.exitCode, signal: launched.signal }, attempt);
    if (outcome.kind !== 'succeed') return fail(run, outcome, { held: true, releasedByAgent, result });
    run.setState('succeeded');
    await run.release(releasedByAgent);
    return result;
  }
}

/**
 * One attempt of a gang (see `step-gang.ts`): the step's result once every replica succeeded,
 * `undefined` when it queues again; otherwise it fails naming the replica that ended it.
 */
async function runGang(
  run: StepRun,
  leases: Lease[],
  attempt: number,
  decide: (end: AttemptEnd, attempt: number) => Outcome,
): Promise<StepResult | undefined> {
  const gang = await launchGang(run, leases, attempt);
  const { ends } = gang;
  const first = leases[0] as Lease;
  const replicas = replicaResults(leases, ends);
  const results = ends.map((e) => (e && 'launched' in e ? e.launched : undefined));
  run.noteUsage(results.map((r) => r?.usage));
  const rank0 = results[0];
  if (rank0 && results.length === leases.length && results.every((r) => r?.exitCode === 0)) {
    run.stopRenewing();
    // The gang ran as long as its longest replica.
    const runningMs = Math.max(...results.map((r) => r?.runningMs ?? 0));
    const result: StepResult = { ...stepResult(run, first, rank0), runningMs, replicas };
    run.progress.result = result;
    run.progress.endedAt = Date.now();
    run.setState('succeeded');
    await run.release();
    return result;
  }
  // What ended the gang: a replica that lost its node (the others' failures follow from it), or
  // else the replica that failed first, or else (an interruption stopped every replica alike) the
  // first that failed or exited non-zero.
  const causeRank =
    lostReplica(ends) ??
    gang.cause ??
    firstIndex(ends, (e) => 'failed' in e) ??
    firstIndex(ends, (e) => 'launched' in e && e.launched.exitCode !== 0) ??
    0;
  const cause = gang.rendezvousFailed
    ? { failed: gang.rendezvousFailed.err, facts: gang.rendezvousFailed.facts }
    : ends[causeRank];
  const who = replicaName(causeRank, leases[causeRank]);
  if (cause && 'launched' in cause) {
    const launched = cause.launched;
    // A failed gang's result is the failing replica's, with every replica's beside it.
    const result: StepResult = { ...stepResult(run, leases[causeRank] ?? first, launched), replicas };
    run.progress.result = result;
    run.progress.endedAt = Date.now();
    run.stopRenewing();
    const outcome = decide(
      { kind: 'exited', exitCode: launched.exitCode, signal: launched.signal, replica: who },
      attempt,
    );
    return fail(run, outcome, { held: true, result });
  }
  const facts: LaunchFailureFacts = cause
    ? { ...cause.facts, interrupted: run.told.interrupted, message: `${who}: ${cause.facts.message}` }
    : {
        interrupted: run.told.interrupted,
        cancellation: run.cancelled,
        mayStillRun: false,
        message: `${who} did not run`,
        graceMs: run.grace,
      };
  if (facts.infrastructure && (gang.cause !== undefined || lostReplica(ends) !== undefined))
    facts.infrastructure = { ...facts.infrastructure, message: `${who}: ${facts.infrastructure.message}` };
  if (facts.limit) facts.limit = { ...facts.limit, message: `${who}: ${facts.limit.message}` };
  // A replica whose agent stopped answering may still run: the gang waits for it as a single step would.
  if (ends.some((e) => e && 'failed' in e && e.facts.mayStillRun)) facts.mayStillRun = true;
  const outcome = decide({ kind: 'launchFailed', ...facts }, attempt);
  if (outcome.kind === 'requeue') {
    // One replica's stop proves nothing of another's: wait to hear of each that may still run.
    const silent = leases.filter((_, rank) => {
      const end = ends[rank];
      return end !== undefined && 'failed' in end && end.facts.mayStillRun;
    });
    await requeue(
      run,
      outcome,
      attempt,
      () => silent.every((l) => run.told.stoppedLeases?.includes(l.leaseId) === true),
      [...new Set(silent.map((l) => l.nodeId))].join(', '),
    );
    return undefined;
  }
  run.stopRenewing();
  return fail(run, outcome, {
    held: true,
    err: cause?.failed,
    replica: who,
    result: { ...stepResult(run, leases[causeRank] ?? first, results[causeRank]), replicas },
  });
}

/** The index of the first defined element that `test` holds for, if any. */
function firstIndex<T>(list: readonly (T | undefined)[], test: (e: T) => boolean): number | undefined {
  const i = list.findIndex((e) => e !== undefined && test(e));
  return i >= 0 ? i : undefined;
}

/** The step's result from a lease and a launch's result (a gang's replica 0). */
function stepResult(run: StepRun, lease: Lease, launched: LaunchResult | undefined): StepResult {
  return {
    stepId: run.info.workflowId,
    name: run.input.name,
    exitCode: launched?.exitCode ?? null,
    signal: launched?.signal ?? null,
    nodeId: lease.nodeId,
    gpuIndices: lease.gpus.map((g) => g.index),
    outputs: launched?.outputs ?? {},
    ...(launched?.artifacts ? { artifacts: launched.artifacts } : {}),
    ...(launched?.checkpoint ? { checkpoint: launched.checkpoint } : {}),
    queuedMs: lease.grantedAt - run.progress.submittedAt,
    runningMs: launched?.runningMs ?? 0,
    logFile: launched?.logFile ?? '',
    logTail: launched?.logTail ?? [],
    ...(launched?.usage ? { usage: launched.usage } : {}),
  };
}

/**
 * Queues the step again as the next attempt. A launch whose workload may still run keeps its
 * lease (renewing it) until the workload is known to be gone, or until it must be.
 */
async function requeue(
  run: StepRun,
  outcome: Outcome & { kind: 'requeue' },
  attempt: number,
  stopped: () => boolean = () => run.told.stopped !== undefined,
  nodes: string | undefined = run.progress.nodeId,
): Promise<void> {
  run.infrastructureRetries = outcome.infrastructureRetries;
  if (outcome.preempted) run.setState('preempted');
  if (outcome.waitForStopMs !== undefined) {
    const waitMs = outcome.waitForStopMs;
    run.progress.message = `${outcome.why.message}; waiting up to ${Math.round(waitMs / 1000)} s for node ${nodes} to stop it`;
    await CancellationScope.nonCancellable(() => condition(stopped, waitMs));
  }
  run.stopRenewing();
  await run.queueAgain(outcome.why, attempt);
}

/**
 * Ends the step with a failure, or with its cancellation: records it, gives back the lease it
 * holds (`held`), and throws. `err`: the launch's failure; `result`: the workload's result.
 */
async function fail(
  run: StepRun,
  outcome: Outcome,
  how: { held: boolean; releasedByAgent?: boolean; err?: unknown; result?: StepResult; replica?: string },
): Promise<never> {
  if (how.held) run.progress.endedAt = Date.now();
  if (outcome.kind === 'fail') {
    run.progress.error = outcome.error;
    run.setState('failed');
  } else run.setState('cancelled');
  if (how.held) await run.release(how.releasedByAgent);
  if (outcome.kind !== 'fail') throw how.err;
  const failure = outcome.failure;
  if (how.replica !== undefined && failure.cause !== 'step')
    throw replicaFailure(run.input.name, how.err, how.replica, how.result);
  if (failure.cause === 'limit') throw limitExceeded(how.err);
  if (failure.cause === 'launch') throw how.err;
  const details = failure.withResult ? [how.result] : [];
  throw ApplicationFailure.nonRetryable(failure.message, failure.type, ...details);
}

/** A gang replica's launch failure as the step's own, its message naming the replica. */
function replicaFailure(name: string, err: unknown, replica: string, result: StepResult | undefined): unknown {
  if (isCancellation(err)) return err;
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const message = cause instanceof Error ? cause.message : cause === undefined ? 'did not run' : String(cause);
  const type = cause instanceof ApplicationFailure ? (cause.type ?? 'LaunchFailed') : 'LaunchFailed';
  return ApplicationFailure.create({
    message: `step ${name}, ${replica}: ${message}`,
    type,
    nonRetryable: true,
    details: result ? [result] : undefined,
  });
}
