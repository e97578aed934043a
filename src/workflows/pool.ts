/**
 * `allotPool`: the durable allocator (id `allot-pool/<name>`). A thin shell: the handlers hand
 * each message to the controller (`pool-controller.ts`), which keeps the state (`PoolState`, from
 * src/core); the loop runs one scheduling cycle per workflow task and tells owners by signal.
 */
import { condition, log, setDefaultSignalHandler, setHandler, sleep, workflowInfo } from '@temporalio/workflow';
import {
  acquireSignal,
  acquireUpdate,
  capacityQuery,
  drainUpdate,
  leaseQuery,
  nodeHeartbeatSignal,
  nodeQuery,
  policyQuery,
  quotasQuery,
  registerSignal,
  registerUpdate,
  registrationQuery,
  releaseSignal,
  limitsQuery,
  releaseUpdate,
  removeLimitUpdate,
  removeQuotaUpdate,
  renewSignal,
  requestQuery,
  setHealthPolicyUpdate,
  setLimitUpdate,
  setStoreUpdate,
  setPolicyUpdate,
  setQuotaUpdate,
  setTemplatesUpdate,
  statusQuery,
} from './messages';
import type { RegisterOptions } from './messages';
import { Compaction } from './pool-compaction';
import type { PoolInput } from './pool-controller';
import { PoolController } from './pool-controller';
import * as check from './pool-validation';

export type { PoolInput } from './pool-controller';
export { MAX_UPDATES_PER_RUN, SCALING_WAIT_EVENTS, continueAsNewNow } from './pool-compaction';
export { HEALTH_TIMER_SLACK_MS } from './pool-health';
export { SCALING_CHECK_MS } from './pool-scaling';

/** The pool workflow. A large carried state comes deflated, as `packed` (see `carry.ts`). */
export async function allotPool(input: PoolInput, packed?: Uint8Array): Promise<void> {
  const ctl = new PoolController(input, packed);
  const compaction = new Compaction(ctl);
  const { pool } = ctl;
  /** An Update handler that counts towards the run's limit of Updates. */
  const counted =
    <A extends unknown[], R>(handle: (...args: A) => R) =>
    (...args: A): R => {
      ctl.updatesThisRun++;
      return handle(...args);
    };

  // Signals that reach a run before its first task (those sent during a continue-as-new) wait in
  // a buffer until a handler for them is set, and setting one hands it all of its kind at once.
  // The default handler, set before the named ones, takes the whole buffer in the order the
  // signals arrived: a stopping heartbeat and the registration after it, or a release and the
  // acquire that needs its GPUs, are handled as sent. A signal no handler takes (sent by hand, or
  // by a newer allot) is logged and dropped rather than buffered for the rest of the run.
  const signals: Record<string, (...args: never[]) => void> = {
    [registerSignal.name]: ctl.registerBySignal.bind(ctl),
    [renewSignal.name]: ctl.renew.bind(ctl),
    [nodeHeartbeatSignal.name]: ctl.heartbeat.bind(ctl),
    [acquireSignal.name]: ctl.acquireBySignal.bind(ctl),
    [releaseSignal.name]: ctl.releaseBySignal.bind(ctl),
  };

  // The order of the handlers is that of earlier releases; it decides the order in which buffered
  // Updates are handled.
  setHandler(
    registerUpdate,
    counted((spec, options) => ctl.register(spec, options as RegisterOptions | undefined)),
    {
      validator: (spec, options) => check.checkRegistration(spec, options as RegisterOptions | undefined),
    },
  );
  setDefaultSignalHandler((name, ...args) => {
    const handler = signals[name] as ((...a: unknown[]) => void) | undefined;
    if (handler) handler(...args);
    else log.warn(`dropped a signal the pool does not have: ${name}`);
  });
  setHandler(registerSignal, (spec, options) => ctl.registerBySignal(spec, options));
  setHandler(registrationQuery, (nodeId) => ctl.registration(nodeId));
  setHandler(
    setHealthPolicyUpdate,
    counted((policy) => ctl.setHealth(policy)),
    {
      validator: (policy) => check.checkHealthPolicy(pool, policy),
    },
  );
  setHandler(
    drainUpdate,
    counted((request) => ctl.drain(request)),
    {
      validator: (request) => check.checkDrain(pool, request),
    },
  );
  setHandler(
    setQuotaUpdate,
    counted((quota) => ctl.setQuota(quota)),
    { validator: check.checkQuota },
  );
  setHandler(
    removeQuotaUpdate,
    counted((team) => ctl.removeQuota(team)),
    {
      validator: (team) => check.checkQuotaRemoval(pool, team),
    },
  );
  setHandler(
    setPolicyUpdate,
    counted((policy) => ctl.setPolicy(policy)),
    { validator: check.checkPolicy },
  );
  setHandler(
    setTemplatesUpdate,
    counted((templates) => ctl.setTemplates(templates)),
    {
      validator: check.checkTemplates,
    },
  );
  setHandler(capacityQuery, () => ctl.capacityReport());
  setHandler(quotasQuery, () => ctl.quotaReport());
  setHandler(policyQuery, () => ({ policy: pool.policy, health: pool.health }));
  setHandler(renewSignal, (message) => ctl.renew(message));
  setHandler(nodeHeartbeatSignal, (message) => ctl.heartbeat(message));
  setHandler(leaseQuery, (leaseId) => pool.leases.find((l) => l.leaseId === leaseId) ?? null);
  setHandler(nodeQuery, (nodeId) => pool.nodeReport(nodeId, Date.now()));
  setHandler(
    acquireUpdate,
    counted((request) => ctl.acquire(request)),
    { validator: check.checkAcquire },
  );
  setHandler(
    releaseUpdate,
    counted((requestId) => ctl.release(requestId)),
    { validator: check.checkRelease },
  );
  setHandler(acquireSignal, (request) => ctl.acquireBySignal(request));
  setHandler(releaseSignal, (message) => ctl.releaseBySignal(message));
  setHandler(statusQuery, (options) => pool.status(Date.now(), check.statusLimitOf(options)));
  setHandler(requestQuery, (requestId) => pool.lookup(requestId) ?? null);
  // Named limits came after the handlers above: their Updates are handled after those buffered.
  setHandler(
    setLimitUpdate,
    counted((limit) => ctl.setLimit(limit)),
    { validator: (limit) => check.checkLimit(pool, limit) },
  );
  setHandler(
    removeLimitUpdate,
    counted((input) => ctl.removeLimit(input)),
    { validator: (input) => check.checkLimitRemoval(pool, input) },
  );
  setHandler(limitsQuery, () => ctl.limitReport());
  setHandler(
    setStoreUpdate,
    counted((input) => ctl.setStore(input)),
    { validator: check.checkStore },
  );

  void ctl.health.run();
  void ctl.scaling.timer();

  for (;;) {
    // Compaction first: the new run schedules what is due.
    await condition(() => compaction.dueAfterReplay() || ctl.hasWork() || compaction.due());
    if (compaction.decidedAfterReplay) {
      // Not in this task: continuing as new in the task that follows a timed-out one lost the
      // signals that came with it (seen in a chaos run: the carried state lacked a release and an
      // acquire recorded before the task). A timer gives the run one more, ordinary, task first.
      // The new run schedules at its start, so this run stops there and need not.
      log.info('continuing as new after a replay', { historyLength: workflowInfo().historyLength });
      await sleep(1);
      await compaction.carryOn(false);
    }
    ctl.scaling.startDue();
    ctl.checkHealthIfDue();
    ctl.scheduleIfDirty();
    if (ctl.outbox.length > 0) {
      await ctl.deliverAll();
      continue;
    }
    // Messages keep arriving under load, so do not wait for a quiet moment: finish what is decided,
    // deliver it, and carry the state into the next run, which schedules whatever arrived meanwhile.
    if (compaction.due()) await compaction.carryOn(true);
  }
}
