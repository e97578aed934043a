/**
 * `allotPool`: the durable allocator. A thin shell around `PoolState` (src/core): handlers record
 * what arrives, the loop runs one scheduling cycle per workflow task and tells owners by signal.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  deprecatePatch,
  log,
  patched,
  proxyActivities,
  setDefaultSignalHandler,
  setHandler,
  sleep,
  workflowInfo,
  ApplicationFailure,
} from '@temporalio/workflow';
import type { AcquireInput, Effect, NodeSpec, PoolStateData, ScalingAction } from '../core';
import {
  PoolState,
  describeValue,
  emptyPoolState,
  formatIssues,
  validateAcquireInput,
  validateHealthPolicy,
  validateNodeSpec,
  validatePolicy,
  parseTeamQuotaInput,
  parseNodeTemplate,
  statusQueueLimit,
} from '../core';
import {
  acquireSignal,
  acquireUpdate,
  drainUpdate,
  grantSignal,
  leaseQuery,
  policyQuery,
  preemptSignal,
  quotasQuery,
  capacityQuery,
  setTemplatesUpdate,
  removeQuotaUpdate,
  setPolicyUpdate,
  setQuotaUpdate,
  nodeHeartbeatSignal,
  nodeQuery,
  registerUpdate,
  registerSignal,
  registrationQuery,
  renewSignal,
  revokeSignal,
  setHealthPolicyUpdate,
  rejectSignal,
  releaseSignal,
  releaseUpdate,
  requestQuery,
  statusQuery,
} from './messages';
import type { CapacityReport, QuotaReport, RegisterOptions, RegisterResult, RegistrationOutcome } from './messages';
import type { ScalerActivities } from '../activities/scaler';
import { CARRIED_STATE_LIMIT, packState, unpackState } from './carry';

/** How often a pool with node templates checks whether to scale, ms. */
export const SCALING_CHECK_MS = 2_000;

/** How late the health timer may fire before the pool counts the delay as time it did not run, ms. */
export const HEALTH_TIMER_SLACK_MS = 2_000;

/** Most a run waits past `continueAsNewSuggested` for scaling activities in flight, in history events. */
export const SCALING_WAIT_EVENTS = 10_000;

/**
 * Whether a pool run continues as new now: when Temporal suggests it, or before the run reaches
 * the server's limit of Updates (2,000). Scaling activities under way are waited for (their
 * outcomes would be lost with the run: a node started and never recorded), within bounds of the
 * history and of Updates.
 */
export function continueAsNewNow(run: {
  suggested: boolean;
  historyLength: number;
  updates: number;
  scalingInFlight: number;
}): boolean {
  if (!run.suggested && run.updates < MAX_UPDATES_PER_RUN) return false;
  const roomToWait = run.historyLength < SCALING_WAIT_EVENTS && run.updates < MAX_UPDATES_PER_RUN + 250;
  return run.scalingInFlight === 0 || !roomToWait;
}

/** Updates one run accepts before it continues as new (the server refuses more than 2,000). */
export const MAX_UPDATES_PER_RUN = 1_500;

/** Marks the task at which a run picked up by a fresh worker continued as new. */
export const COMPACT_AFTER_REPLAY_PATCH = 'allot-compact-after-replay-v2';

/**
 * Marks runs that set their default signal handler after the others. Earlier runs dropped the
 * acquire and release signals that arrived between continue-as-new and their first task.
 */
export const DEFAULT_SIGNAL_HANDLER_LAST_PATCH = 'allot-default-signal-last-v1';

/**
 * Marks runs that handle the signals waiting for their first task in the order they arrived.
 * Earlier runs handled them one signal name after another, in the order their handlers were set.
 */
export const SIGNALS_IN_ORDER_PATCH = 'allot-signals-in-order-v1';

/** Input of `allotPool`: its name, and the state carried over by continue-as-new. */
export interface PoolInput {
  name: string;
  state?: PoolStateData;
}

/**
 * The pool workflow (id `allot-pool/<name>`). A large state comes deflated, as `packed` (see
 * `carry.ts`).
 */
export async function allotPool(input: PoolInput, packed?: Uint8Array): Promise<void> {
  // A worker replays a run from its start, so this tells whether this worker had to replay it.
  const replayed = workflowInfo().unsafe.isReplaying;
  const pool = new PoolState(packed ? unpackState(packed) : (input.state ?? emptyPoolState(input.name)));
  // Every run scores placements by FGD's points now; runs recorded with the patch still replay.
  deprecatePatch('allot-fgd-points-v1');
  // Runs from before scaling timed out waited for every scaler outcome.
  if (!patched('allot-scaling-timeout-v1')) pool.neverExpireScaling();
  const outbox: Effect[] = [];
  let updatesThisRun = 0;
  let dirty = true;

  /** What is wrong with a registration, if anything. */
  function registrationProblem(spec: NodeSpec, options: RegisterOptions | undefined): string | undefined {
    const issues = validateNodeSpec(spec);
    if (issues.length > 0) return `invalid node inventory:\n${formatIssues(issues)}`;
    for (const field of ['runningLeases', 'deadLeases'] as const) {
      const leases = options?.[field];
      if (leases !== undefined && (!Array.isArray(leases) || leases.some((l) => typeof l !== 'string'))) {
        return `${field} must be an array of lease ids`;
      }
    }
    return undefined;
  }
  function register(spec: NodeSpec, options: RegisterOptions | undefined): RegisterResult {
    const { status, kill, effects, nodeLostAfterMs } = pool.register(spec, Date.now(), {
      runningLeases: options?.runningLeases ?? [],
      deadLeases: options?.deadLeases ?? [],
    });
    outbox.push(...effects);
    dirty = true;
    log.info('node registered', { node: spec.id, status, kill, dead: effects.length });
    return { status, pool: pool.name, kill, nodeLostAfterMs };
  }

  setHandler(
    registerUpdate,
    (spec, options) => {
      updatesThisRun++;
      return register(spec, options as RegisterOptions | undefined);
    },
    {
      validator: (spec, options) => {
        const problem = registrationProblem(spec, options as RegisterOptions | undefined);
        if (problem) throw new Error(problem);
      },
    },
  );

  // Registrations by signal: refused ones are logged and answered through the query.
  const registrations = new Map<string, RegistrationOutcome>();
  function onRegisterSignal(spec: NodeSpec, options: unknown): void {
    const opts = (typeof options === 'object' && options !== null ? options : {}) as Partial<
      RegisterOptions & { token: string }
    >;
    const token = typeof opts.token === 'string' ? opts.token : '';
    const nodeId = typeof spec === 'object' && spec !== null && typeof spec.id === 'string' ? spec.id : undefined;
    const problem = registrationProblem(spec, opts);
    if (problem) {
      log.warn('dropped a node registration', { node: nodeId ?? describeValue(spec), problem });
      if (nodeId !== undefined && registrations.size < 10_000) registrations.set(nodeId, { token, error: problem });
      return;
    }
    registrations.set(spec.id, { token, result: register(spec, opts) });
  }

  function onRenewSignal(message: { requestId: string; workflowId?: string }): void {
    if (
      typeof message?.requestId !== 'string' ||
      (message.workflowId !== undefined && typeof message.workflowId !== 'string')
    ) {
      log.warn('dropped an invalid renew signal', { got: describeValue(message).slice(0, 200) });
      return;
    }
    const effects = pool.handleRenew(message, Date.now());
    if (effects.length > 0) {
      log.warn('renewal of a lease the pool does not hold; telling its step', { requestId: message.requestId });
      outbox.push(...effects);
    } else if (message.workflowId === undefined && !pool.leases.some((l) => l.requestId === message.requestId)) {
      // Sent without a workflow to tell (by hand, or by an older step): only logged.
      log.warn('renewal of a lease the pool does not hold', { requestId: message.requestId });
    }
  }

  function onNodeHeartbeatSignal(message: { nodeId: string; stopping?: boolean }): void {
    if (typeof message?.nodeId !== 'string') {
      log.warn('dropped an invalid nodeHeartbeat signal', { got: describeValue(message).slice(0, 200) });
      return;
    }
    if (message.stopping === true) {
      // Its agent is stopping: no new grants until it registers again.
      pool.markNotReady(message.nodeId);
      dirty = true;
    } else if (pool.heartbeat(message.nodeId, Date.now())) dirty = true;
  }

  function onAcquireSignal(request: AcquireInput): void {
    try {
      validateAcquire(request);
    } catch (err) {
      log.warn('dropped an invalid acquire signal', { error: String(err) });
      return;
    }
    const outcome = pool.enqueue(request, Date.now());
    const rejection = outcome.status === 'rejected' ? pool.rejectionOf(request.requestId) : undefined;
    if (rejection) outbox.push({ kind: 'reject', rejection });
    dirty = true;
  }

  function onReleaseSignal(message: { requestId: string; requeue?: boolean; stopped?: boolean }): void {
    if (typeof message?.requestId !== 'string') {
      log.warn('dropped an invalid release signal', { message });
      return;
    }
    outbox.push(
      ...pool.handleRelease(message.requestId, Date.now(), {
        requeue: message.requeue === true,
        stopped: message.stopped === true,
      }),
    );
    dirty = true;
  }

  // A signal no handler takes (sent by hand, or by a newer allot) is logged and dropped rather
  // than buffered for the rest of the run.
  function dropUnknownSignal(name: string): void {
    log.warn(`dropped a signal the pool does not have: ${name}`);
  }

  // Signals that reach a run before its first task (those sent during a continue-as-new) wait in
  // a buffer until a handler for them is set, and setting one hands it all of its kind at once.
  // A default handler set first takes the whole buffer, in the order the signals arrived: a
  // stopping heartbeat and the registration after it, or a release and the acquire that needs its
  // GPUs, are handled as sent. The named handlers below take the signals that come later.
  const signalHandlers: Record<string, (...args: never[]) => void> = {
    [registerSignal.name]: onRegisterSignal,
    [renewSignal.name]: onRenewSignal,
    [nodeHeartbeatSignal.name]: onNodeHeartbeatSignal,
    [acquireSignal.name]: onAcquireSignal,
    [releaseSignal.name]: onReleaseSignal,
  };
  if (patched(SIGNALS_IN_ORDER_PATCH)) {
    setDefaultSignalHandler((name, ...args) => {
      const handler = signalHandlers[name] as ((...a: unknown[]) => void) | undefined;
      if (handler) handler(...args);
      else dropUnknownSignal(name);
    });
  }

  setHandler(registerSignal, onRegisterSignal);
  setHandler(registrationQuery, (nodeId) => registrations.get(nodeId) ?? null);

  setHandler(
    setHealthPolicyUpdate,
    (policy) => {
      updatesThisRun++;
      pool.setHealth(policy, Date.now());
      dirty = true;
      return pool.health;
    },
    {
      validator: (policy) => {
        const issues = validateHealthPolicy(policy, pool.health);
        if (issues.length > 0) throw new Error(`invalid health policy:\n${formatIssues(issues)}`);
      },
    },
  );

  setHandler(
    drainUpdate,
    ({ nodeId, drain }) => {
      updatesThisRun++;
      const status = pool.setDraining(nodeId, drain) ?? 'unknown';
      dirty = true;
      return { nodeId, status };
    },
    {
      validator: (request) => {
        if (typeof request?.nodeId !== 'string' || typeof request.drain !== 'boolean') {
          throw new Error('drain needs { nodeId: string, drain: boolean }');
        }
        if (!pool.nodes.some((n) => n.spec.id === request.nodeId)) {
          throw new Error(
            `no node ${JSON.stringify(request.nodeId)} in pool ${pool.name}; known nodes: ${pool.nodes.map((n) => n.spec.id).join(', ') || 'none'}`,
          );
        }
      },
    },
  );

  const quotaReport = (): QuotaReport => {
    const usage = pool.teamUsage();
    const named = new Set(pool.teams.map((t) => t.name));
    return {
      teams: pool.teams.map((t) => ({ ...t, usage: usage[t.name] ?? {} })),
      unlimited: Object.entries(usage)
        .filter(([name]) => !named.has(name))
        .map(([name, u]) => ({ name, usage: u })),
    };
  };

  setHandler(
    setQuotaUpdate,
    (input) => {
      updatesThisRun++;
      const { quota } = parseTeamQuotaInput(input);
      if (quota) pool.setTeamQuota(quota);
      dirty = true;
      return quotaReport();
    },
    {
      validator: (input) => {
        const { issues } = parseTeamQuotaInput(input);
        if (issues.length > 0) throw new Error(`invalid quota:\n${formatIssues(issues)}`);
      },
    },
  );

  setHandler(
    removeQuotaUpdate,
    (team) => {
      updatesThisRun++;
      pool.removeTeamQuota(team);
      dirty = true;
      return quotaReport();
    },
    {
      validator: (team) => {
        if (!pool.teams.some((t) => t.name === team)) {
          throw new Error(
            `team ${JSON.stringify(team)} has no quota; teams with quotas: ${pool.teams.map((t) => t.name).join(', ') || 'none'}`,
          );
        }
      },
    },
  );

  setHandler(
    setPolicyUpdate,
    (policy) => {
      updatesThisRun++;
      pool.setPolicy(policy);
      dirty = true;
      return pool.policy;
    },
    {
      validator: (policy) => {
        const issues = validatePolicy(policy);
        if (issues.length > 0) throw new Error(`invalid policy:\n${formatIssues(issues)}`);
      },
    },
  );

  const capacityReport = (): CapacityReport => ({
    demand: pool.demand(Date.now()),
    templates: pool.templateNodes(),
    templateSpecs: [...pool.templates],
    scaling: pool.scalingPolicy,
  });

  setHandler(
    setTemplatesUpdate,
    (input) => {
      updatesThisRun++;
      const templates = input.templates.map((t) => parseNodeTemplate(t).template).filter((t) => t !== undefined);
      pool.setTemplates(templates, input.scaling);
      dirty = true;
      return capacityReport();
    },
    {
      validator: (input) => {
        if (typeof input !== 'object' || input === null || !Array.isArray(input.templates)) {
          throw new Error('setTemplates needs { templates: [...], scaling?: {...} }');
        }
        const issues = input.templates.flatMap(
          (t: unknown, i: number) => parseNodeTemplate(t, ['templates', i]).issues,
        );
        const names = input.templates.map((t: unknown) => (t as { name?: unknown }).name);
        if (new Set(names).size !== names.length)
          issues.push({ code: 'duplicate', path: ['templates'], message: 'template names must be unique' });
        if (issues.length > 0) throw new Error(`invalid node templates:\n${formatIssues(issues)}`);
      },
    },
  );

  setHandler(capacityQuery, capacityReport);
  setHandler(quotasQuery, quotaReport);
  setHandler(policyQuery, () => ({ policy: pool.policy, health: pool.health }));

  setHandler(renewSignal, onRenewSignal);
  setHandler(nodeHeartbeatSignal, onNodeHeartbeatSignal);

  setHandler(leaseQuery, (leaseId) => pool.leases.find((l) => l.leaseId === leaseId) ?? null);
  setHandler(nodeQuery, (nodeId) => pool.nodeReport(nodeId, Date.now()));

  setHandler(
    acquireUpdate,
    (request) => {
      updatesThisRun++;
      // Where it stands is worked out once, after scheduling: most are granted at once.
      const outcome = pool.enqueue(request, Date.now());
      if (outcome.status !== 'queued') return outcome;
      outbox.push(...pool.schedule(Date.now()));
      return pool.lookup(request.requestId) ?? { status: 'released' };
    },
    { validator: validateAcquire },
  );

  setHandler(
    releaseUpdate,
    (requestId) => {
      updatesThisRun++;
      const released = pool.release(requestId) !== undefined;
      dirty = true;
      return { released };
    },
    {
      validator: (requestId) => {
        if (typeof requestId !== 'string' || requestId === '')
          throw new Error(`release needs a request id (a non-empty string), got ${describeValue(requestId)}`);
      },
    },
  );

  // The catch-all for unknown signals comes after every other handler: set earlier, it would take
  // (and drop) the buffered signals of the handlers after it. Runs from before this patch set it
  // here. (Runs that handle signals in order have handled the buffer already.)
  const defaultHandlerLast = patched(DEFAULT_SIGNAL_HANDLER_LAST_PATCH);
  if (!defaultHandlerLast) setDefaultSignalHandler(dropUnknownSignal);

  setHandler(acquireSignal, onAcquireSignal);
  setHandler(releaseSignal, onReleaseSignal);

  setHandler(statusQuery, (options) => {
    const limit = statusQueueLimit(options);
    if (typeof limit === 'string') throw ApplicationFailure.create({ message: limit, type: 'InvalidArgument' });
    return pool.status(Date.now(), limit);
  });
  setHandler(requestQuery, (requestId) => pool.lookup(requestId) ?? null);
  if (defaultHandlerLast) setDefaultSignalHandler(dropUnknownSignal);

  /** Tells a request's owner about a grant, rejection or revocation; an owner that is gone gives its lease back. */
  async function deliver(effect: Effect): Promise<void> {
    const owner =
      effect.kind === 'reject' ? effect.rejection.owner : effect.kind === 'gone' ? effect.owner : effect.lease.owner;
    if (owner.kind !== 'workflow') return;
    const handle = getExternalWorkflowHandle(owner.workflowId);
    try {
      if (effect.kind === 'grant') await handle.signal(grantSignal, effect.lease);
      else if (effect.kind === 'reject') await handle.signal(rejectSignal, effect.rejection);
      else if (effect.kind === 'gone') {
        const { requestId, reason, message } = effect;
        await handle.signal(revokeSignal, { requestId, leaseId: '', reason, message });
      } else if (effect.kind === 'preempt') {
        const { lease, message } = effect;
        await handle.signal(preemptSignal, { requestId: lease.requestId, leaseId: lease.leaseId, message });
      } else {
        const { lease, reason, message } = effect;
        await handle.signal(revokeSignal, { requestId: lease.requestId, leaseId: lease.leaseId, reason, message });
      }
    } catch (err) {
      if (effect.kind === 'grant') {
        log.warn('owner of a grant is gone; releasing its lease', { owner: owner.workflowId, error: String(err) });
        pool.release(effect.lease.requestId);
        dirty = true;
      }
    }
  }

  /**
   * When to continue as new: when Temporal suggests it, or before this run reaches the server's
   * limit of Updates per run (2,000), whichever comes first.
   */
  function mustContinueAsNew(): boolean {
    const info = workflowInfo();
    return continueAsNewNow({
      suggested: info.continueAsNewSuggested,
      historyLength: info.historyLength,
      updates: updatesThisRun,
      scalingInFlight,
    });
  }

  // Lease expiry and node health run on their own timer, woken at the next deadline only. A timer
  // that fires late (the server was down, or its clock jumped) means the pool did not run: that
  // time is not counted as silence of the nodes or lateness of the steps (see `PoolState.resume`).
  let healthDue = false;
  /** The next health deadline as of the last scheduling pass, where new earlier ones come from. */
  let nextDeadlineHint = Infinity;
  let hintEpoch = 0;
  async function healthTimer(): Promise<void> {
    for (;;) {
      const deadline = pool.nextHealthDeadline(Date.now());
      if (deadline === undefined) {
        await condition(() => pool.nextHealthDeadline(Date.now()) !== undefined);
        continue;
      }
      // Short sleeps while nodes are known: a clock jump within one counts as node silence, and
      // must stay well below the third of the node-lost time after which agents fence themselves.
      const cap = pool.nodes.length > 0 ? Math.floor(pool.health.nodeLostAfterMs / 6) : Infinity;
      const wait = Math.max(Math.min(deadline - Date.now(), cap), 250);
      const due = Date.now() + wait;
      // Woken early by an earlier deadline (a preemption's grace, a grant's expiry) that a
      // scheduling pass after this point found.
      const epoch = hintEpoch;
      const earlier = await condition(() => hintEpoch !== epoch && nextDeadlineHint < due, wait);
      if (earlier) continue;
      const late = Date.now() - due;
      if (late > HEALTH_TIMER_SLACK_MS) {
        log.warn('the pool did not run for a while; counting node silence and lease deadlines from now', { late });
        pool.resume(late);
      }
      healthDue = true;
    }
  }
  if (patched('allot-health-v1')) void healthTimer();

  // Scaling: checked every few seconds while the pool has node templates. The scaler runs as
  // activities on the control worker; the pool records the outcome when they end.
  const { scaleUp, scaleDown } = proxyActivities<ScalerActivities>({
    taskQueue: workflowInfo().taskQueue,
    startToCloseTimeout: '5 minutes',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['NoScaler'] },
  });
  let scalingDue = false;
  async function scalingTimer(): Promise<void> {
    for (;;) {
      await condition(() => pool.templates.length > 0);
      await sleep(SCALING_CHECK_MS);
      scalingDue = true;
    }
  }
  // Scaling activities in flight: a run waits for their outcomes before it continues as new
  // (their outcomes would be lost with it), unless its history grows too long meanwhile.
  let scalingInFlight = 0;
  function runScaling(action: ScalingAction): void {
    const template = pool.templates.find((t) => t.name === action.template);
    if (!template) return;
    const work =
      action.kind === 'up'
        ? scaleUp({ pool: pool.name, template, count: action.count })
        : scaleDown({ pool: pool.name, template: action.template, nodeId: action.nodeId });
    log.info('scaling', { ...action });
    scalingInFlight++;
    void work.then(
      () => {
        scalingInFlight--;
        pool.scaled(action, true);
        dirty = true;
      },
      (err: unknown) => {
        scalingInFlight--;
        log.warn('scaling failed', { ...action, error: String(err) });
        pool.scaled(action, false);
        dirty = true;
      },
    );
  }
  if (patched('allot-autoscale-v1')) void scalingTimer();

  // A worker that picks this run up without it in its cache replays the history first. Replaying a
  // history in which a workflow task timed out (its worker killed) can fail in the SDK (see the
  // README's known issues), and the pool would be stuck. So a worker that had to replay carries
  // the state into a new run at its first live task, before this run's history holds a completed
  // task after a timed-out one for long. The patch marker records that decision, so a replay of
  // this run takes it at the same point.
  let compacting = false;
  function compactionDue(): boolean {
    if (!compacting && replayed && patched(COMPACT_AFTER_REPLAY_PATCH)) compacting = true;
    return compacting;
  }

  /**
   * Carries the state (queue, leases, quotas, keys) into a new run. Only after every handler has
   * finished and every decided effect is delivered; with `scheduleFirst`, after one more
   * scheduling pass for what arrived meanwhile.
   */
  async function carryOn(scheduleFirst: boolean): Promise<never> {
    await condition(allHandlersFinished);
    if (dirty && scheduleFirst) {
      dirty = false;
      outbox.push(...pool.schedule(Date.now()));
    }
    while (outbox.length > 0) await Promise.all(outbox.splice(0).map(deliver));
    await condition(allHandlersFinished);
    let carried = packState(pool.toJSON());
    while (carried.bytes > CARRIED_STATE_LIMIT) {
      // Past MAX_QUEUED's reach (very long ids or labels): shed the newest requests rather than
      // wedge on a state Temporal refuses. Their steps are told, and ask again later.
      const excess = Math.ceil((pool.queue.length * (carried.bytes - CARRIED_STATE_LIMIT)) / carried.bytes) + 1;
      const why =
        `pool ${pool.name} holds more queued requests than its state can carry (${Math.round(carried.bytes / 1024)} KiB); ` +
        'the newest were turned away, and their steps ask again later';
      log.warn('shedding queued requests', { count: excess, bytes: carried.bytes });
      const shed = pool.shedNewest(excess, why);
      if (shed.length === 0) break;
      await Promise.all(shed.map((rejection) => deliver({ kind: 'reject', rejection })));
      carried = packState(pool.toJSON());
    }
    if ('packed' in carried) return continueAsNew<typeof allotPool>({ name: pool.name }, carried.packed);
    return continueAsNew<typeof allotPool>({ name: pool.name, state: carried.state });
  }

  for (;;) {
    // Compaction first: the new run schedules what is due.
    await condition(
      () => compactionDue() || dirty || healthDue || scalingDue || outbox.length > 0 || mustContinueAsNew(),
    );
    if (compacting) {
      // Not in this task: continuing as new in the task that follows a timed-out one lost the
      // signals that came with it (seen in a chaos run: the carried state lacked a release and an
      // acquire recorded before the task). A timer gives the run one more, ordinary, task first.
      // The new run schedules at its start, so this run stops there and need not.
      log.info('continuing as new after a replay', { historyLength: workflowInfo().historyLength });
      await sleep(1);
      await carryOn(false);
    }
    if (scalingDue) {
      scalingDue = false;
      for (const action of pool.planScaling(Date.now())) runScaling(action);
    }
    if (healthDue) {
      healthDue = false;
      outbox.push(...pool.checkHealth(Date.now()));
      dirty = true;
    }
    if (dirty) {
      dirty = false;
      outbox.push(...pool.schedule(Date.now()));
      nextDeadlineHint = pool.nextHealthDeadline(Date.now()) ?? Infinity;
      hintEpoch++;
    }
    if (outbox.length > 0) {
      await Promise.all(outbox.splice(0).map(deliver));
      continue;
    }
    if (mustContinueAsNew()) {
      // Messages keep arriving under load, so do not wait for a quiet moment: finish what is
      // decided, deliver it, and carry the state into the next run, which schedules whatever
      // arrived meanwhile.
      await carryOn(true);
    }
  }
}

/** Rejects a malformed acquire before it reaches the pool's state. */
function validateAcquire(request: AcquireInput): void {
  const issues = validateAcquireInput(request);
  if (issues.length > 0)
    throw ApplicationFailure.nonRetryable(`invalid acquire:\n${formatIssues(issues)}`, 'InvalidInput');
}
