/**
 * The pool's scaling: checked every few seconds while the pool has node templates. The scaler runs
 * as activities on the control worker; the pool records each outcome when it ends.
 */
import { condition, log, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { PoolState, ScalingAction } from '../core';
import type { ScalerActivities } from '../activities/scaler';

/** How often a pool with node templates checks whether to scale, ms. */
export const SCALING_CHECK_MS = 2_000;

/** Starts the scaling the pool plans, and records the outcomes. */
export class Scaling {
  /** A scaling check is owed (cleared by `startDue`). */
  due = false;
  /**
   * Scaling activities in flight: a run waits for their outcomes before it continues as new (they
   * would be lost with it: a node started and never recorded).
   */
  inFlight = 0;
  private readonly pool: PoolState;
  private readonly settled: () => void;
  private readonly activities = proxyActivities<ScalerActivities>({
    taskQueue: workflowInfo().taskQueue,
    startToCloseTimeout: '5 minutes',
    retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['NoScaler'] },
  });

  /** `settled` is called when a scaling activity ends and the pool has recorded it. */
  constructor(pool: PoolState, settled: () => void) {
    this.pool = pool;
    this.settled = settled;
  }

  /** Runs for the life of the run, setting `due` every SCALING_CHECK_MS while there are templates. */
  async timer(): Promise<void> {
    for (;;) {
      await condition(() => this.pool.templates.length > 0);
      await sleep(SCALING_CHECK_MS);
      this.due = true;
    }
  }

  /** Starts what the pool plans now, if a check is due. */
  startDue(): void {
    if (!this.due) return;
    this.due = false;
    for (const action of this.pool.planScaling(Date.now())) this.start(action);
  }

  private start(action: ScalingAction): void {
    const pool = this.pool;
    const template = pool.templates.find((t) => t.name === action.template);
    if (!template) return;
    const work =
      action.kind === 'up'
        ? this.activities.scaleUp({ pool: pool.name, template, count: action.count })
        : this.activities.scaleDown({ pool: pool.name, template: action.template, nodeId: action.nodeId });
    log.info('scaling', { ...action });
    this.inFlight++;
    void work.then(
      () => {
        this.inFlight--;
        pool.scaled(action, true);
        this.settled();
      },
      (err: unknown) => {
        this.inFlight--;
        log.warn('scaling failed', { ...action, error: String(err) });
        pool.scaled(action, false);
        this.settled();
      },
    );
  }
}
