/**
 * When a pool gives up on leases and nodes: lease renewals, the checks that take back expired
 * leases and preempted ones past their grace period and mark silent nodes lost (see `health.ts`),
 * when those checks next have work, and how a pool that did not run for a while counts silence.
 * The timing in force is a setting (`pool-settings.ts`).
 */
import { checkHealth, nextHealthDeadline } from './health';
import type { Effect, PoolStateData } from './pool-data';
import type { PoolSettings } from './pool-settings';
import type { RequestQueue } from './request-queue';
import type { Lease } from './types';

/** After the pool did not run for a while, how long steps and agents have to be heard from again, ms. */
export const RESUME_MARGIN_MS = 10_000;

/** Lease and node liveness: renewals, resuming, and the health checks (leases taken back go through the queue). */
export class PoolHealth {
  constructor(
    private readonly data: PoolStateData,
    private readonly settings: PoolSettings,
    private readonly requests: RequestQueue,
  ) {}

  /**
   * Extends a request's lease (every copy of a gang) by its own TTL. Returns the lease (a gang's
   * first copy), or `undefined` if the pool no longer holds it.
   */
  renew(requestId: string, now: number): Lease | undefined {
    let first: Lease | undefined;
    for (const lease of this.data.leases) {
      if (lease.requestId !== requestId) continue;
      lease.expiresAt = now + (lease.ttlMs ?? this.settings.health.leaseTtlMs);
      first ??= lease;
    }
    return first;
  }

  /**
   * A renewal: extends the lease by its own TTL. When the pool no longer holds the lease (released
   * by someone else, or taken back while the message was under way), the step that renews it is
   * told, so that it stops its workload.
   */
  handleRenew(message: { requestId: string; workflowId?: string }, now: number): Effect[] {
    if (this.renew(message.requestId, now) || message.workflowId === undefined) return [];
    return [
      {
        kind: 'gone',
        requestId: message.requestId,
        owner: { kind: 'workflow', workflowId: message.workflowId },
        reason: 'NotHeld',
        message: `pool ${this.data.name} no longer holds a lease for request ${message.requestId}`,
      },
    ];
  }

  /**
   * The pool did not run for `late` ms (its timer fired that late: the server was down, or its
   * clock jumped). Silence and deadlines are counted from when it runs again: no node is declared
   * lost, and no lease taken back, for time in which nobody could have reached it, nor before
   * `RESUME_MARGIN_MS` have passed for steps and agents to be heard from again.
   */
  resume(late: number): void {
    if (!(late > 0)) return;
    const ms = late + RESUME_MARGIN_MS;
    for (const n of this.data.nodes) n.lastSeenAt = (n.lastSeenAt ?? n.registeredAt) + ms;
    for (const l of this.data.leases) {
      if (l.expiresAt !== undefined) l.expiresAt += ms;
      if (l.preemptedAt !== undefined) l.preemptedAt += ms;
    }
  }

  /**
   * Expires leases, takes back preempted leases whose grace period has passed, and marks silent
   * nodes; returns the revocations to tell owners about.
   */
  checkHealth(now: number): Effect[] {
    const health = this.settings.settleHealth(now);
    const grace = this.settings.policy.gracePeriodMs;
    const changes = checkHealth(this.data.nodes, this.data.leases, health, now, grace);
    return changes.revoke.map(({ lease, reason }) => {
      this.requests.takeBack(lease);
      const message =
        reason === 'NodeLost'
          ? `node ${lease.nodeId} has not been heard from for ${Math.round(health.nodeLostAfterMs / 1000)} s and is considered lost`
          : reason === 'GracePeriodExpired'
            ? `lease ${lease.leaseId} was preempted and not given back within its grace period of ${Math.round((lease.gracePeriodMs ?? grace) / 1000)} s; the pool took it back`
            : `lease ${lease.leaseId} was not renewed within ${Math.round((lease.ttlMs ?? health.leaseTtlMs) / 1000)} s`;
      return { kind: 'revoke', lease, reason, message };
    });
  }

  /** When `checkHealth` may next find something to do; `undefined` when nothing is pending. */
  nextHealthDeadline(now?: number): number | undefined {
    const health = now !== undefined ? this.settings.healthAt(now) : this.settings.health;
    const next = nextHealthDeadline(this.data.nodes, this.data.leases, health, this.settings.policy.gracePeriodMs);
    const until = this.data.previousNodeLost?.until;
    return until !== undefined && next !== undefined ? Math.min(next, until) : next;
  }
}
