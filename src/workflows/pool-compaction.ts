/**
 * When and how a pool run carries its state into a new run (continue-as-new): when Temporal
 * suggests it, before the server's limit of Updates, or at once when a fresh worker had to replay
 * the run. What is decided is delivered first; a state too large to carry sheds its newest requests.
 */
import { allHandlersFinished, condition, continueAsNew, log, workflowInfo } from '@temporalio/workflow';
import { CARRIED_STATE_LIMIT, packState } from './carry';
import type { PoolController, PoolInput } from './pool-controller';
import { decideCompactionAfterReplay } from './versions';

/** Most a run waits past `continueAsNewSuggested` for scaling activities in flight, in history events. */
export const SCALING_WAIT_EVENTS = 10_000;

/** Updates one run accepts before it continues as new (the server refuses more than 2,000). */
export const MAX_UPDATES_PER_RUN = 1_500;

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

/** The pool workflow's signature, as continue-as-new starts it. */
type PoolWorkflow = (input: PoolInput, packed?: Uint8Array) => Promise<void>;

/** Decides when a run continues as new, and carries its state into the next. */
export class Compaction {
  /** Whether this worker had to replay the run: read at the run's first task, before anything else. */
  private readonly replayed = workflowInfo().unsafe.isReplaying;
  /** Set once by `dueAfterReplay`: this run continues as new because this worker had to replay it. */
  private afterReplay = false;
  private readonly ctl: PoolController;

  constructor(ctl: PoolController) {
    this.ctl = ctl;
  }

  /**
   * True once this run continues as new because this worker had to replay it. Replaying a history
   * in which a workflow task timed out (its worker killed) can fail in the SDK, and the pool would
   * be stuck; so a worker that had to replay carries the state into a new run at its first live
   * task. A marker records that decision, so that a replay of this run takes it at the same task.
   */
  dueAfterReplay(): boolean {
    if (!this.afterReplay && this.replayed && decideCompactionAfterReplay()) this.afterReplay = true;
    return this.afterReplay;
  }

  /** Whether `dueAfterReplay` has decided so already (without asking again). */
  get decidedAfterReplay(): boolean {
    return this.afterReplay;
  }

  /** Whether to continue as new now (see `continueAsNewNow`). */
  due(): boolean {
    const info = workflowInfo();
    return continueAsNewNow({
      suggested: info.continueAsNewSuggested,
      historyLength: info.historyLength,
      updates: this.ctl.updatesThisRun,
      scalingInFlight: this.ctl.scaling.inFlight,
    });
  }

  /**
   * Carries the state (queue, leases, quotas, keys) into a new run. Only after every handler has
   * finished and every decided effect is delivered; with `scheduleFirst`, after one more
   * scheduling pass for what arrived meanwhile.
   */
  async carryOn(scheduleFirst: boolean): Promise<never> {
    const ctl = this.ctl;
    const pool = ctl.pool;
    await condition(allHandlersFinished);
    if (scheduleFirst) ctl.scheduleBeforeCarrying();
    while (ctl.outbox.length > 0) await ctl.deliverAll();
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
      await Promise.all(shed.map((rejection) => ctl.deliver({ kind: 'reject', rejection })));
      carried = packState(pool.toJSON());
    }
    if ('packed' in carried) return continueAsNew<PoolWorkflow>({ name: pool.name }, carried.packed);
    return continueAsNew<PoolWorkflow>({ name: pool.name, state: carried.state });
  }
}
