/**
 * The state of one step workflow across its attempts: its progress (for the `progress` query and
 * the search attributes), what the pool told the current attempt, the accounting of its leases,
 * and the ways it gives a lease back.
 */
import {
  CancellationScope,
  getExternalWorkflowHandle,
  log,
  setHandler,
  sleep,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { AcquireInput, Lease, Rejection, ResourceRequest } from '../core';
import type { AccountedLease, AccountingRecord } from './accounting-types';
import { ACCOUNTING_MEMO } from './accounting-types';
import { PoolReason, STOPPED_REASONS } from './failures';
import {
  DEFAULT_POOL,
  grantSignal,
  poolWorkflowId,
  preemptSignal,
  progressQuery,
  rejectSignal,
  releaseSignal,
  renewSignal,
  revokeSignal,
} from './messages';
import { SEARCH_ATTRIBUTES as SA } from './search-attributes';
import { metricsSink } from './sinks';
import type { Interrupted } from './step-outcome';
import type { StepInput, StepProgress, StepState } from './step-types';

/** Default grace period between SIGTERM and SIGKILL, ms. */
export const DEFAULT_GRACE_PERIOD_MS = 30_000;

/**
 * What the pool told the current attempt (set by the signal handlers). `stopped`: a revocation
 * proved that the attempt's workload no longer runs anywhere.
 */
export interface Told {
  /** The grant: a single step's lease, or a gang's replica 0 once every replica's lease has come. */
  lease?: Lease;
  /** A gang's leases as they come, and once all have come, by rank. */
  leases?: Lease[];
  rejection?: Rejection;
  interrupted?: Interrupted;
  stopped?: Interrupted;
  /** The leases whose workloads a revocation proved stopped (a gang's are proved one by one). */
  stoppedLeases?: string[];
}

/** One step workflow's state and bookkeeping; its attempts come and go. */
export class StepRun {
  readonly info = workflowInfo();
  readonly input: StepInput;
  readonly resources: ResourceRequest;
  readonly pool: string;
  readonly progress: StepProgress;
  readonly told: Told = {};
  /** The current attempt's launch, cancelled when the pool interrupts it. */
  launchScope: CancellationScope | undefined;
  /** The step itself was cancelled. */
  cancelled = false;
  /** Attempts run again after losing their node or lease (preemptions do not count). */
  infrastructureRetries = 0;
  readonly grace: number;
  readonly poolHandle: ReturnType<typeof getExternalWorkflowHandle>;
  private readonly baseRequestId: string;
  private readonly accounted: AccountedLease[] = [];
  private held: AccountedLease[] = [];
  private renewing: CancellationScope | undefined;

  /** Sets the step's handlers and search attributes; `resources` is the validated request. */
  constructor(input: StepInput, resources: ResourceRequest) {
    this.input = input;
    this.resources = resources;
    this.pool = input.pool ?? DEFAULT_POOL;
    this.baseRequestId = `${this.info.workflowId}#${this.info.runId}`;
    const progress: StepProgress = {
      stepId: this.info.workflowId,
      requestId: this.baseRequestId,
      name: input.name,
      state: 'queued',
      pool: this.pool,
      submittedAt: Date.now(),
      reason: 'Pending',
      message: 'asking the pool',
    };
    this.progress = progress;
    setHandler(progressQuery, () => progress);
    const told = this.told;
    setHandler(grantSignal, (granted) => {
      if (granted.requestId !== progress.requestId) return;
      const replicas = granted.replicas ?? 1;
      if (replicas <= 1) {
        told.lease ??= granted;
        return;
      }
      // A gang's leases come one signal each, from one scheduling cycle: it is granted once all have.
      const leases = (told.leases ??= []);
      if (told.lease || leases.some((l) => l.leaseId === granted.leaseId)) return;
      leases.push(granted);
      if (leases.length < replicas) return;
      leases.sort((a, b) => (a.replica ?? 0) - (b.replica ?? 0));
      told.lease = leases[0];
    });
    setHandler(rejectSignal, (r) => {
      if (r.requestId === progress.requestId) told.rejection = r;
    });
    setHandler(preemptSignal, (p) => {
      if (p.requestId === progress.requestId) this.interrupt({ reason: PoolReason.Preempted, message: p.message });
    });
    setHandler(revokeSignal, (r) => {
      if (r.requestId !== progress.requestId) return;
      if (STOPPED_REASONS.has(r.reason)) {
        told.stopped ??= { reason: r.reason, message: r.message };
        if (r.leaseId !== '') (told.stoppedLeases ??= []).push(r.leaseId);
      }
      this.interrupt({ reason: r.reason, message: r.message });
    });
    CancellationScope.current().cancelRequested.catch(() => (this.cancelled = true));

    upsertSearchAttributes([
      { key: SA.AllotPool, value: this.pool },
      { key: SA.AllotStep, value: input.name },
      { key: SA.AllotTeam, value: input.team ?? 'default' },
      { key: SA.AllotPriority, value: input.priority ?? 0 },
    ]);
    this.setState('queued');
    this.poolHandle = getExternalWorkflowHandle(poolWorkflowId(this.pool));
    this.grace = input.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS;
  }

  /** Starts attempt `attempt` (from 1): a request id of its own, and nothing told yet. */
  beginAttempt(attempt: number): string {
    const requestId = attempt === 1 ? this.baseRequestId : `${this.baseRequestId}#${attempt}`;
    this.progress.requestId = requestId;
    this.told.lease = undefined;
    this.told.leases = undefined;
    this.told.rejection = undefined;
    this.told.interrupted = undefined;
    this.told.stopped = undefined;
    this.told.stoppedLeases = undefined;
    return requestId;
  }

  /** What the current attempt asks the pool for. */
  acquireInput(): AcquireInput {
    const input = this.input;
    return {
      requestId: this.progress.requestId,
      owner: { kind: 'workflow', workflowId: this.info.workflowId },
      resources: this.resources,
      priority: input.priority ?? 0,
      team: input.team ?? 'default',
      label: input.name,
      submittedAt: this.progress.submittedAt,
      gracePeriodMs: this.grace,
      ...(input.preemptible !== undefined ? { preemptible: input.preemptible } : {}),
      ...(input.timeLimitMs !== undefined ? { timeLimitMs: input.timeLimitMs } : {}),
      ...(input.limits !== undefined && Object.keys(input.limits).length > 0 ? { limits: input.limits } : {}),
      ...((input.replicas ?? 1) > 1
        ? { replicas: input.replicas, replicaPlacement: input.replicaPlacement ?? 'spread' }
        : {}),
    };
  }

  /** Records the step's state in its progress, search attributes and metrics. */
  setState(state: StepState): void {
    this.progress.state = state;
    upsertSearchAttributes([{ key: SA.AllotState, value: state }]);
    metricsSink().stepState(state);
  }

  /** Accounts for granted leases (a gang's, one per replica) from their grant on. */
  hold(leases: readonly Lease[]): void {
    const first = leases[0];
    if (!first) return;
    this.held = leases.map((lease) => ({
      leaseId: lease.leaseId,
      nodeId: lease.nodeId,
      gpu: lease.gpus.reduce((sum, g) => sum + g.milli, 0) / 1000,
      cpu: lease.cpuMilli / 1000,
      memoryMiB: lease.memoryMiB,
      ...(lease.custom ? { custom: { ...lease.custom } } : {}),
      start: lease.grantedAt,
    }));
    this.accounted.push(...this.held);
    this.writeAccounting();
    metricsSink().stepGranted(first.grantedAt - this.progress.submittedAt);
  }

  /** Notes what the workload of each held lease used (by rank for a gang). */
  noteUsage(usage: readonly AccountedLease['usage'][]): void {
    usage.forEach((u, i) => {
      const held = this.held[i];
      if (held && u) held.usage = u;
    });
  }

  /**
   * Renews the lease at a third of its TTL until `stopRenewing`. The renewal names this workflow,
   * so that the pool can tell it when it no longer holds the lease.
   */
  startRenewing(lease: Lease): void {
    const ttl = lease.ttlMs ?? (lease.expiresAt !== undefined ? lease.expiresAt - lease.grantedAt : 60_000);
    const message = { requestId: this.progress.requestId, workflowId: this.info.workflowId };
    const scope = new CancellationScope();
    scope
      .run(async () => {
        for (;;) {
          await sleep(Math.max(1000, Math.floor(ttl / 3)));
          await this.poolHandle.signal(renewSignal, message);
        }
      })
      .catch(() => undefined);
    this.renewing = scope;
  }

  /** Stops renewing the lease. */
  stopRenewing(): void {
    this.renewing?.cancel();
    this.renewing = undefined;
  }

  /**
   * Gives the lease back; `byAgent` when the agent already did, as the workload ended. With
   * `requeue`, the step queues again and its waiting so far counts for its next attempt.
   */
  release(byAgent = false, requeue = false): Promise<void> {
    if (this.held.length > 0) {
      const end = Date.now();
      for (const held of this.held) held.end = end;
      this.held = [];
      this.writeAccounting();
    }
    if (byAgent) return Promise.resolve();
    const requestId = this.progress.requestId;
    return CancellationScope.nonCancellable(() =>
      this.poolHandle.signal(releaseSignal, requeue ? { requestId, requeue } : { requestId }),
    );
  }

  /** Gives the lease back and queues again, as attempt `attempt` + 1. */
  async queueAgain(lost: Interrupted, attempt: number): Promise<void> {
    await this.release(false, true);
    metricsSink().stepRequeued(lost.reason);
    log.warn('step attempt interrupted; queueing again', {
      step: this.input.name,
      attempt,
      reason: lost.reason,
      message: lost.message,
    });
    this.progress.reason = lost.reason;
    this.progress.message = `${lost.message}; queued again as attempt ${attempt + 1}`;
    this.progress.nodeId = undefined;
    this.progress.gpuIndices = undefined;
    this.progress.replicas = undefined;
    upsertSearchAttributes([
      { key: SA.AllotNode, value: null },
      { key: SA.AllotGpus, value: null },
    ]);
    this.setState('queued');
  }

  /** The pool interrupted the attempt: a launch under way is cancelled (none begins after this). */
  private interrupt(why: Interrupted): void {
    if (this.told.interrupted) return;
    this.told.interrupted = why;
    this.launchScope?.cancel();
  }

  /** Every lease with its resources, start, end and usage, kept in the memo. */
  private writeAccounting(): void {
    const info = this.info;
    const record: AccountingRecord = {
      version: 1,
      pool: this.pool,
      team: this.input.team ?? 'default',
      pipeline: info.root && info.root.workflowId !== info.workflowId ? info.root.workflowId : null,
      step: this.input.name,
      leases: this.accounted,
    };
    upsertMemo({ [ACCOUNTING_MEMO]: record });
  }
}
