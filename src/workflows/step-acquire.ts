/**
 * A step's acquire: ask the pool, and wait for its answer (a grant, a rejection, or the request
 * withdrawn); when the pool's queue is full, wait and ask again.
 */
import { ApplicationFailure, condition, isCancellation, log, sleep } from '@temporalio/workflow';
import type { Lease } from '../core';
import { POOL_NOT_RUNNING } from './failures';
import { acquireSignal, poolWorkflowId } from './messages';
import type { AttemptEnd, Interrupted } from './step-outcome';
import type { StepRun } from './step-run';

/** The pool's answer to an attempt: a lease (perhaps interrupted at once), or none. */
export type PoolAnswer =
  | { lease: Lease; end: AttemptEnd & { kind: 'granted' } }
  | { lease?: undefined; end: AttemptEnd & { kind: 'notGranted' } };

/** Asks the pool for the current attempt and waits for its answer. A cancelled step gives back what it may hold. */
export async function acquire(run: StepRun): Promise<PoolAnswer> {
  try {
    await askPool(run);
    const told = run.told;
    await condition(() => told.lease !== undefined || told.rejection !== undefined || told.interrupted !== undefined);
  } catch (err) {
    if (isCancellation(err)) {
      await run.release();
      run.setState('cancelled');
    }
    throw err;
  }
  // Set by the signal handlers while the step waited.
  const { lease, rejection, interrupted } = run.told;
  if (rejection || !lease) return { end: { kind: 'notGranted', rejection, withdrawn: interrupted } };
  return { lease, end: { kind: 'granted', interrupted } };
}

/** Waits before asking again a pool whose queue was full (`why`), in this workflow. */
export async function waitToAskAgain(run: StepRun, why: Interrupted, afterMs: number): Promise<void> {
  run.progress.reason = why.reason;
  run.progress.message = `${why.message}; asking again in ${afterMs / 1000} s`;
  log.info('pool queue full; asking again later', { pool: run.pool, retryInMs: afterMs });
  try {
    await sleep(afterMs);
  } catch (err) {
    if (isCancellation(err)) run.setState('cancelled');
    throw err;
  }
}

/** Sends the acquire signal, turning a missing pool into a clear, non-retryable failure. */
async function askPool(run: StepRun): Promise<void> {
  try {
    await run.poolHandle.signal(acquireSignal, run.acquireInput());
  } catch (err) {
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.nonRetryable(
      `pool "${run.pool}" is not running (workflow ${poolWorkflowId(run.pool)}): start it with \`allot worker\` or \`allot dev\``,
      POOL_NOT_RUNNING,
    );
  }
}
