/**
 * A pool's queue of waiting requests, from acquire to grant or release: who may queue (a known
 * team, within `MAX_QUEUED`), where a request stands, shedding the newest when the state grows
 * too large, and giving back what a request holds. A cycle's decisions change the queue through
 * `apply-decisions.ts`; what is remembered of requests that left it is in `request-memory.ts`.
 *
 * Idempotency: operations are keyed by request id, so a repeated message changes nothing the
 * second time.
 */
import type { AppliedCycle } from './apply-decisions';
import { limitNever } from './named-limits';
import { compareRequests } from './ordering';
import type { AcquireInput, AcquireOutcome, Effect, PoolStateData } from './pool-data';
import type { PoolSettings } from './pool-settings';
import { PRIORITY_MAX, PRIORITY_MIN, waitedSoFar } from './priority';
import type { RequestMemory } from './request-memory';
import type { Lease, PendingRequest, Rejection } from './types';

/**
 * Most requests a pool holds queued (Slurm's `MaxJobCount` is 10,000 by default). More are
 * rejected with `QueueFull`; the state a pool carries across continue-as-new stays within
 * Temporal's payload limit.
 */
export const MAX_QUEUED = 20_000;

/** The waiting requests; owns `queue` and `seq`, and gives leases back on release. */
export class RequestQueue {
  /** The queue by request id, kept in step with `data.queue`. */
  private readonly byId: Map<string, PendingRequest>;

  constructor(
    private readonly data: PoolStateData,
    private readonly memory: RequestMemory,
    private readonly settings: PoolSettings,
  ) {
    this.byId = new Map(data.queue.map((r) => [r.requestId, r]));
  }

  /** The queue by request id. */
  get index(): ReadonlyMap<string, PendingRequest> {
    return this.byId;
  }

  /** Queues a request, or reports where an earlier acquire with the same id stands. */
  acquire(input: AcquireInput, now: number): AcquireOutcome {
    const outcome = this.enqueue(input, now);
    if (outcome.status !== 'queued') return outcome;
    return this.lookup(input.requestId) ?? { status: 'released' };
  }

  /** As `acquire`, without working out the queue position of a request it queues (one pass over the queue). */
  enqueue(input: AcquireInput, now: number): AcquireOutcome | { status: 'queued' } {
    const known = this.lookup(input.requestId);
    if (known) return known;
    const team = input.team ?? 'default';
    const teams = this.settings.teams;
    if (teams.length > 0 && team !== 'default' && !teams.some((t) => t.name === team)) {
      // With quotas in force, a team the pool does not know is a typo, not a new tenant.
      return this.reject({
        requestId: input.requestId,
        owner: input.owner,
        reason: 'UnknownTeam',
        message:
          `team ${JSON.stringify(team)} is not known to pool ${this.data.name}; known teams: ` +
          `${teams.map((t) => t.name).join(', ')} (and "default"); add one with \`allot quota set ${team} --gpu N\``,
      });
    }
    // A limit the pool does not have is a typo (or a limit not set up yet), and an ask beyond a
    // limit's max could never start: say so at once.
    const never = input.limits ? limitNever(this.data.limits ?? [], input.limits, `pool ${this.data.name}`) : undefined;
    if (never) {
      return this.reject({
        requestId: input.requestId,
        owner: input.owner,
        reason: never.reason,
        message: never.message,
      });
    }
    if (this.data.queue.length >= MAX_QUEUED) {
      return this.reject({
        requestId: input.requestId,
        owner: input.owner,
        reason: 'QueueFull',
        message:
          `pool ${this.data.name} already holds ${this.data.queue.length} queued requests, ` +
          `the most it takes; a step asks again later on its own (spread work over more pools to queue more)`,
      });
    }
    // Aging counts only waiting the pool saw: the earlier attempts' (carried), and this one's.
    const waitedMs = input.owner.kind === 'workflow' ? this.memory.takeCarriedWait(input.owner.workflowId) : 0;
    const pending: PendingRequest = {
      requestId: input.requestId,
      owner: input.owner,
      resources: input.resources,
      priority: Math.max(PRIORITY_MIN, Math.min(PRIORITY_MAX, input.priority ?? 0)),
      team: input.team ?? 'default',
      label: input.label ?? input.requestId,
      // A submit time in the future would only sort it last; one in the past keeps its place.
      submittedAt: Math.max(0, Math.min(input.submittedAt ?? now, now)),
      queuedAt: now,
      ...(waitedMs > 0 ? { waitedMs } : {}),
      seq: this.data.seq++,
      reason: 'Pending',
      message: 'not yet considered',
      ...(input.preemptible !== undefined ? { preemptible: input.preemptible } : {}),
      ...(input.timeLimitMs !== undefined ? { timeLimitMs: input.timeLimitMs } : {}),
      ...(input.gracePeriodMs !== undefined ? { gracePeriodMs: input.gracePeriodMs } : {}),
      ...(input.limits !== undefined && Object.keys(input.limits).length > 0 ? { limits: { ...input.limits } } : {}),
      ...(input.replicas !== undefined && input.replicas > 1 ? { replicas: input.replicas } : {}),
      ...(input.replicas !== undefined && input.replicas > 1 && input.replicaPlacement === 'pack'
        ? { replicaPlacement: 'pack' as const }
        : {}),
    };
    this.data.queue.push(pending);
    this.byId.set(pending.requestId, pending);
    return { status: 'queued' };
  }

  /**
   * Rejects the newest queued requests, `count` of them, with `QueueFull`: the last resort when
   * the state grows too large to carry across continue-as-new. Returns the rejections to deliver.
   */
  shedNewest(count: number, why: string): Rejection[] {
    const newest = [...this.data.queue].sort((a, b) => b.seq - a.seq).slice(0, Math.max(0, count));
    const shed = new Set(newest.map((r) => r.requestId));
    this.data.queue = this.data.queue.filter((r) => !shed.has(r.requestId));
    for (const id of shed) this.byId.delete(id);
    return newest.map((r) => {
      const rejection: Rejection = { requestId: r.requestId, owner: r.owner, reason: 'QueueFull', message: why };
      this.reject(rejection);
      return rejection;
    });
  }

  /** Where a request stands now, or `undefined` if the pool has never seen it. */
  lookup(requestId: string): AcquireOutcome | undefined {
    const lease = this.data.leases.find((l) => l.requestId === requestId);
    if (lease) return { status: 'granted', lease };
    const rejection = this.memory.rejectionOf(requestId);
    if (rejection) return { status: 'rejected', reason: rejection.reason, message: rejection.message };
    if (this.memory.isReleased(requestId)) return { status: 'released' };
    const pending = this.byId.get(requestId);
    if (!pending) return undefined;
    // Its place is one more than the requests ordered before it: one pass, not a sort per lookup.
    let ahead = 0;
    for (const r of this.data.queue) if (compareRequests(r, pending) < 0) ahead++;
    return {
      status: 'queued',
      ticket: requestId,
      position: ahead + 1,
      reason: pending.reason,
      message: pending.message,
    };
  }

  /**
   * Gives back what a request holds (every copy of a gang: they end together), or withdraws it
   * from the queue. Returns the released lease (a gang's first copy), if there was one. Releasing
   * twice is a no-op. With `requeue` (the step queues again), or for a lease that was preempted,
   * the step's waiting so far carries into its next attempt.
   */
  release(requestId: string, options: { requeue?: boolean } = {}): Lease | undefined {
    const queued = this.byId.has(requestId) ? this.data.queue.findIndex((r) => r.requestId === requestId) : -1;
    const request = queued >= 0 ? this.data.queue.splice(queued, 1)[0] : undefined;
    this.byId.delete(requestId);
    let lease: Lease | undefined;
    for (let i = this.data.leases.length - 1; i >= 0; i--) {
      if (this.data.leases[i]?.requestId === requestId) lease = this.data.leases.splice(i, 1)[0];
    }
    if (request || lease) this.memory.remember(requestId);
    if (lease && lease.owner.kind === 'workflow' && (options.requeue || lease.preemptedAt !== undefined)) {
      this.memory.carryWait(lease.owner.workflowId, lease.waitedMs ?? 0);
    }
    return lease;
  }

  /**
   * Takes back one lease that its node or agent lost, or that expired, and queues its request's
   * step again. A single request's lease is released as `release` does. Of a gang only that copy
   * is: the others, whose replicas run on other nodes until their step hears of it and stops them,
   * stay held as they are, so that no other step gets their room meanwhile; the step releases them
   * once its replicas have ended, and otherwise they go as any lease does (TTL, their node lost).
   * The gang's named-limit units, held on one copy, move to a copy still held.
   */
  takeBack(lease: Lease): void {
    const copies = this.data.leases.filter((l) => l.requestId === lease.requestId);
    if (copies.length <= 1) {
      this.release(lease.requestId, { requeue: true });
      return;
    }
    this.data.leases.splice(this.data.leases.indexOf(lease), 1);
    const heir = copies.find((l) => l !== lease);
    if (lease.limits && heir) heir.limits = { ...lease.limits };
  }

  /**
   * A release signal: as `release`, and when it withdraws a request from the queue, its owner is
   * told (a step withdraws its own request only as it ends; anyone else's withdrawal must not
   * leave it waiting for a grant that never comes). With `stopped` (an agent whose launch timed
   * out says that its workload has ended), the lease's owner is told, as `WorkloadStopped`.
   */
  handleRelease(requestId: string, now: number, options: { requeue?: boolean; stopped?: boolean } = {}): Effect[] {
    const queued = this.byId.get(requestId);
    const lease = this.release(requestId, options);
    if (lease && options.stopped && lease.owner.kind === 'workflow') {
      const message = `the workload of lease ${lease.leaseId} on node ${lease.nodeId} has stopped`;
      return [{ kind: 'revoke', lease, reason: 'WorkloadStopped', message }];
    }
    if (!queued || queued.owner.kind !== 'workflow') return [];
    this.memory.carryWait(queued.owner.workflowId, waitedSoFar(queued, now));
    return [
      {
        kind: 'gone',
        requestId,
        owner: queued.owner,
        reason: 'Withdrawn',
        message: `request ${requestId} was withdrawn from pool ${this.data.name}'s queue by a release its step did not send`,
      },
    ];
  }

  /** Forgets the requests a cycle granted or rejected (`applyDecisions` took them off the queue), and records the rejections. */
  settle(applied: AppliedCycle): void {
    for (const g of applied.granted) this.byId.delete(g.request.requestId);
    for (const rejection of applied.rejected) {
      this.byId.delete(rejection.requestId);
      this.memory.reject(rejection);
    }
  }

  private reject(rejection: Rejection): AcquireOutcome {
    this.memory.reject(rejection);
    return { status: 'rejected', reason: rejection.reason, message: rejection.message };
  }
}
