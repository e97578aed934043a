/**
 * `allotPool`: the durable allocator. A thin shell around `PoolState` (src/core): handlers record
 * what arrives, the loop runs one scheduling cycle per workflow task and tells owners by signal.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  setHandler,
  workflowInfo,
  ApplicationFailure,
} from '@temporalio/workflow';
import type { AcquireInput, Effect, PoolStateData } from '../core';
import { PoolState, emptyPoolState, formatIssues, validateAcquireInput, validateNodeSpec } from '../core';
import {
  acquireSignal,
  acquireUpdate,
  grantSignal,
  registerUpdate,
  rejectSignal,
  releaseSignal,
  releaseUpdate,
  requestQuery,
  statusQuery,
} from './messages';

/** Input of `allotPool`: its name, and the state carried over by continue-as-new. */
export interface PoolInput {
  name: string;
  state?: PoolStateData;
}

/** The pool workflow (id `allot-pool/<name>`). */
export async function allotPool(input: PoolInput): Promise<void> {
  const pool = new PoolState(input.state ?? emptyPoolState(input.name));
  const outbox: Effect[] = [];
  let dirty = true;

  setHandler(
    registerUpdate,
    (spec) => {
      const status = pool.registerNode(spec, Date.now());
      dirty = true;
      log.info('node registered', { node: spec.id, status });
      return { status, pool: pool.name };
    },
    {
      validator: (spec) => {
        const issues = validateNodeSpec(spec);
        if (issues.length > 0) throw new Error(`invalid node inventory:\n${formatIssues(issues)}`);
      },
    },
  );

  setHandler(
    acquireUpdate,
    (request) => {
      const outcome = pool.acquire(request, Date.now());
      if (outcome.status !== 'queued') return outcome;
      outbox.push(...pool.schedule(Date.now()));
      return pool.lookup(request.requestId) ?? outcome;
    },
    { validator: validateAcquire },
  );

  setHandler(releaseUpdate, (requestId) => {
    const released = pool.release(requestId) !== undefined;
    dirty = true;
    return { released };
  });

  setHandler(acquireSignal, (request) => {
    try {
      validateAcquire(request);
    } catch (err) {
      log.warn('dropped an invalid acquire signal', { error: String(err) });
      return;
    }
    pool.acquire(request, Date.now());
    dirty = true;
  });

  setHandler(releaseSignal, (message) => {
    if (typeof message?.requestId !== 'string') {
      log.warn('dropped an invalid release signal', { message });
      return;
    }
    pool.release(message.requestId);
    dirty = true;
  });

  setHandler(statusQuery, () => pool.status(Date.now()));
  setHandler(requestQuery, (requestId) => pool.lookup(requestId) ?? null);

  /** Tells a request's owner about a grant or rejection; an owner that is gone gives its lease back. */
  async function deliver(effect: Effect): Promise<void> {
    const owner = effect.kind === 'grant' ? effect.lease.owner : effect.rejection.owner;
    if (owner.kind !== 'workflow') return;
    const handle = getExternalWorkflowHandle(owner.workflowId);
    try {
      if (effect.kind === 'grant') await handle.signal(grantSignal, effect.lease);
      else await handle.signal(rejectSignal, effect.rejection);
    } catch (err) {
      if (effect.kind === 'grant') {
        log.warn('owner of a grant is gone; releasing its lease', { owner: owner.workflowId, error: String(err) });
        pool.release(effect.lease.requestId);
        dirty = true;
      }
    }
  }

  for (;;) {
    await condition(() => dirty || outbox.length > 0 || workflowInfo().continueAsNewSuggested);
    if (dirty) {
      dirty = false;
      outbox.push(...pool.schedule(Date.now()));
    }
    if (outbox.length > 0) {
      await Promise.all(outbox.splice(0).map(deliver));
      continue;
    }
    if (workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      if (dirty || outbox.length > 0) continue;
      await continueAsNew<typeof allotPool>({ name: pool.name, state: pool.toJSON() });
    }
  }
}

/** Rejects a malformed acquire before it reaches the pool's state. */
function validateAcquire(request: AcquireInput): void {
  const issues = validateAcquireInput(request);
  if (issues.length > 0)
    throw ApplicationFailure.nonRetryable(`invalid acquire:\n${formatIssues(issues)}`, 'InvalidInput');
}
