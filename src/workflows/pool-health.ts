/**
 * The pool's health timer: lease expiry and node health are checked at the next deadline only. A
 * timer that fires late (the server was down, or its clock jumped) means the pool did not run:
 * that time is not counted as silence of the nodes or lateness of the steps (`PoolState.resume`).
 */
import { condition, log } from '@temporalio/workflow';
import type { PoolState } from '../core';

/** How late the health timer may fire before the pool counts the delay as time it did not run, ms. */
export const HEALTH_TIMER_SLACK_MS = 2_000;

/** Wakes the pool when a health deadline passes; `due` says a check is owed. */
export class HealthTimer {
  /** A health check is owed (cleared by whoever runs it). */
  due = false;
  /** The next health deadline as of the last scheduling pass, where new earlier ones come from. */
  private nextDeadlineHint = Infinity;
  private hintEpoch = 0;
  private readonly pool: PoolState;

  constructor(pool: PoolState) {
    this.pool = pool;
  }

  /** Notes the next deadline after a scheduling pass: one earlier than the timer waits for wakes it. */
  noteDeadline(): void {
    this.nextDeadlineHint = this.pool.nextHealthDeadline(Date.now()) ?? Infinity;
    this.hintEpoch++;
  }

  /** Runs for the life of the run, setting `due` at each deadline. */
  async run(): Promise<void> {
    const pool = this.pool;
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
      const epoch = this.hintEpoch;
      const earlier = await condition(() => this.hintEpoch !== epoch && this.nextDeadlineHint < due, wait);
      if (earlier) continue;
      const late = Date.now() - due;
      if (late > HEALTH_TIMER_SLACK_MS) {
        log.warn('the pool did not run for a while; counting node silence and lease deadlines from now', { late });
        pool.resume(late);
      }
      this.due = true;
    }
  }
}
