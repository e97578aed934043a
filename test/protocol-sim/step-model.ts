/**
 * A model of the `allotStep` workflow: acquire, wait for a grant, launch on the granted node,
 * renew while running, release (also on failure and cancellation), and queue again with the
 * original submit time after a preemption or a lost node, as attempt n + 1. A launch lost with a
 * silent node keeps its lease until the node is known to have stopped it, or must have.
 */
import type { AcquireInput, Lease, Rejection } from '../../src/core';
import { INFRASTRUCTURE_FAILURES, STOPPED_REASONS } from '../../src/workflows/failures';
import { DEFAULT_FENCE_MS, LAUNCH_HEARTBEAT_TIMEOUT_MS, MAX_INFRASTRUCTURE_RETRIES } from '../../src/workflows/step';
import { POOL_ID } from './pool-model';
import type { SimStepSpec } from './scenario';
import type { ActivityOutcome, ActivityRecord, MailItem, World } from './world';
import { WorkflowModel } from './world';

/** How a step ended. */
export type StepEnd = 'succeeded' | 'failed' | 'cancelled' | 'terminated';

interface Interrupted {
  reason: string;
  message: string;
}

export class StepModel extends WorkflowModel {
  attempt = 1;
  requestId: string;
  readonly baseRequestId: string;
  submittedAt = 0;
  phase: 'acquiring' | 'queue-full' | 'running' | 'fencing' | 'done' = 'acquiring';
  told: { lease?: Lease; rejection?: Rejection; interrupted?: Interrupted; stopped?: Interrupted } = {};
  /** What interrupted the attempt whose silent node the step waits on. */
  private lostWhileFencing: Interrupted | undefined;
  private fenceGeneration = 0;
  activity: ActivityRecord | undefined;
  lease: Lease | undefined;
  workflowCancelled = false;
  infrastructureRetries = 0;
  private renewGeneration = 0;
  end: StepEnd | undefined;
  endReason = '';
  endedAt: number | undefined;
  started = false;
  /** Request ids whose preemption reached the step in the same task as their grant. */
  readonly toldInGrantTask = new Set<string>();

  constructor(
    world: World,
    readonly spec: SimStepSpec,
  ) {
    super(world, spec.id);
    this.baseRequestId = `${spec.id}#run`;
    this.requestId = this.baseRequestId;
  }

  /** The workflow starts: it asks the pool. */
  start(): void {
    this.post({ kind: 'start' });
  }

  protected runTask(items: MailItem[]): void {
    for (const item of items) this.handle(item);
    if (this.phase === 'acquiring' && this.told.lease && this.told.interrupted)
      this.toldInGrantTask.add(this.requestId);
    this.advance();
  }

  private handle(item: MailItem): void {
    switch (item.kind) {
      case 'start':
        this.submittedAt = this.world.serverNow;
        this.started = true;
        this.acquire();
        break;
      case 'grant': {
        const lease = item.payload as Lease;
        if (lease.requestId === this.requestId) this.told.lease ??= lease;
        break;
      }
      case 'reject': {
        const r = item.payload as Rejection;
        if (r.requestId === this.requestId) this.told.rejection = r;
        break;
      }
      case 'preempt':
      case 'revoke': {
        const p = item.payload as { requestId: string; reason?: string; message: string };
        if (p.requestId !== this.requestId) break;
        const reason = item.kind === 'preempt' ? 'Preempted' : (p.reason ?? 'Revoked');
        if (item.kind === 'revoke' && STOPPED_REASONS.has(reason)) this.told.stopped ??= { reason, message: p.message };
        if (this.told.interrupted) break;
        this.told.interrupted = { reason, message: p.message };
        // The launch scope exists only once the launch has begun.
        if (this.activity && this.phase === 'running') this.world.cancelActivity(this.activity);
        break;
      }
      case 'cancel':
        if (this.phase === 'done') break;
        this.workflowCancelled = true;
        if (this.phase === 'acquiring' || this.phase === 'queue-full') {
          this.release();
          this.finish('cancelled', 'cancelled while queued');
        } else if (this.activity) this.world.cancelActivity(this.activity);
        break;
      case 'renew':
        if (item.payload === this.renewGeneration && (this.phase === 'running' || this.phase === 'fencing')) {
          this.world.log(`${this.id} renews ${this.requestId}`);
          this.world.signal(POOL_ID, 'renew', { requestId: this.requestId, workflowId: this.id }, this.id);
          this.scheduleRenew();
        }
        break;
      case 'fence-over':
        if (item.payload === this.fenceGeneration && this.phase === 'fencing') this.fenceOver();
        break;
      case 'queue-full-over':
        if (this.phase === 'queue-full') {
          this.phase = 'acquiring';
          this.nextAttempt();
        }
        break;
      case 'activity': {
        const { id, outcome } = item.payload as { id: string; outcome: ActivityOutcome };
        if (this.activity?.id === id) this.launchEnded(outcome);
        break;
      }
    }
  }

  /** What the workflow's code does once its awaits resolve. */
  private advance(): void {
    if (this.phase === 'fencing' && this.told.stopped) {
      this.fenceOver();
      return;
    }
    if (this.phase !== 'acquiring' || this.closed) return;
    const { lease, rejection } = this.told;
    if (rejection) {
      if (rejection.reason === 'QueueFull') {
        this.phase = 'queue-full';
        this.timer(30_000, 'queue-full-over');
        return;
      }
      this.finish('failed', `${rejection.reason}: ${rejection.message}`);
      return;
    }
    const interrupted = this.told.interrupted;
    if (!lease) {
      // Withdrawn by someone else's release while it waited: ask again.
      if (interrupted) this.queueAgain(interrupted);
      return;
    }
    if (interrupted && !this.workflowCancelled) {
      // Preempted (or revoked) in the very task that granted it: never launch.
      if (interrupted.reason === 'Preempted' || ++this.infrastructureRetries <= MAX_INFRASTRUCTURE_RETRIES) {
        this.queueAgain(interrupted);
        return;
      }
      this.release();
      this.finish('failed', `${interrupted.reason}: gave up`);
      return;
    }
    this.phase = 'running';
    this.lease = lease;
    const gpuMilli = lease.gpus.reduce((s, g) => s + g.milli, 0);
    this.activity = this.world.scheduleActivity(this.id, lease.nodeId, {
      stepId: this.id,
      requestId: this.requestId,
      leaseId: lease.leaseId,
      pool: POOL_ID,
      gpuIndices: lease.gpus.map((g) => g.index),
      gpuMilli,
      cpuMilli: lease.cpuMilli,
      gracePeriodMs: this.launchGrace,
      ...(lease.fenceMs !== undefined ? { fenceMs: lease.fenceMs } : {}),
    });
    this.world.log(`${this.id} launches ${this.activity.id} on ${lease.nodeId} with lease ${lease.leaseId}`);
    this.scheduleRenew();
  }

  /** The grace period the launch gets: a preemptible step's is bounded by the pool's. */
  private get launchGrace(): number {
    const lease = this.lease;
    return this.spec.preemptible && lease
      ? Math.min(this.spec.graceMs, lease.gracePeriodMs ?? this.spec.graceMs)
      : this.spec.graceMs;
  }

  private scheduleRenew(): void {
    const lease = this.lease;
    if (!lease) return;
    const ttl = lease.ttlMs ?? (lease.expiresAt !== undefined ? lease.expiresAt - lease.grantedAt : 60_000);
    this.timer(Math.max(1000, Math.floor(ttl / 3)), 'renew', ++this.renewGeneration);
  }

  private launchEnded(outcome: ActivityOutcome): void {
    this.activity = undefined;
    if (outcome.kind === 'completed') {
      this.renewGeneration++;
      if (!outcome.released) this.release();
      this.finish(outcome.exitCode === 0 ? 'succeeded' : 'failed', `exit ${outcome.exitCode}`);
      return;
    }
    const lost = this.workflowCancelled ? undefined : (this.told.interrupted ?? infrastructureFailure(outcome));
    const preempted = lost?.reason === 'Preempted';
    if (lost && (preempted || ++this.infrastructureRetries <= MAX_INFRASTRUCTURE_RETRIES)) {
      if (outcome.kind === 'timeout' && outcome.timeoutType !== 'SCHEDULE_TO_START') {
        // The agent went silent: its workload may still run. Keep renewing until the node is known
        // to have stopped it, or must have (the lease's fence time).
        if (this.told.stopped) {
          this.renewGeneration++;
          this.queueAgain(lost);
          return;
        }
        this.phase = 'fencing';
        this.lostWhileFencing = lost;
        const waitMs = (this.lease?.fenceMs ?? DEFAULT_FENCE_MS) + this.launchGrace + LAUNCH_HEARTBEAT_TIMEOUT_MS;
        this.world.log(`${this.id} waits up to ${waitMs}ms for ${this.lease?.nodeId} to stop its workload`);
        this.timer(waitMs, 'fence-over', ++this.fenceGeneration);
        return;
      }
      this.renewGeneration++;
      this.queueAgain(lost);
      return;
    }
    this.renewGeneration++;
    this.release();
    if (outcome.kind === 'cancelled' || this.workflowCancelled) this.finish('cancelled', 'cancelled');
    else this.finish('failed', lost ? `${lost.reason}: gave up` : JSON.stringify(outcome));
  }

  /** After a silent node: the wait for its workload to stop is over. */
  private fenceOver(): void {
    this.renewGeneration++;
    const lost = this.lostWhileFencing as Interrupted;
    this.lostWhileFencing = undefined;
    this.queueAgain(lost);
  }

  /** Gives the lease back and queues again as attempt n + 1. */
  private queueAgain(lost: Interrupted): void {
    this.world.signal(POOL_ID, 'release', { requestId: this.requestId, requeue: true }, this.id);
    this.world.log(`${this.id} attempt ${this.attempt} interrupted (${lost.reason}); queueing again`);
    this.phase = 'acquiring';
    if (this.workflowCancelled) {
      // The next acquire would be cancelled at once.
      this.finish('cancelled', 'cancelled');
      return;
    }
    this.nextAttempt();
  }

  private nextAttempt(): void {
    this.attempt++;
    this.requestId = `${this.baseRequestId}#${this.attempt}`;
    this.told = {};
    this.lease = undefined;
    this.acquire();
  }

  private acquire(): void {
    const s = this.spec;
    const input: AcquireInput = {
      requestId: this.requestId,
      owner: { kind: 'workflow', workflowId: this.id },
      resources: {
        cpuMilli: s.cpu * 1000,
        memoryMiB: 1024,
        gpuMilli: Math.round(s.gpu * 1000),
        gpuMemoryMiB: 0,
        gpuModels: [],
        labels: {},
        ...(s.custom ? { custom: { ...s.custom } } : {}),
      },
      priority: s.priority,
      team: s.team,
      label: s.id,
      submittedAt: this.submittedAt,
      gracePeriodMs: s.graceMs,
      preemptible: s.preemptible,
      ...(s.limits ? { limits: s.limits } : {}),
    };
    this.world.signal(POOL_ID, 'acquire', input, this.id);
  }

  private release(): void {
    this.world.signal(POOL_ID, 'release', { requestId: this.requestId }, this.id);
  }

  private finish(end: StepEnd, reason: string): void {
    this.phase = 'done';
    this.end = end;
    this.endReason = reason;
    this.endedAt = this.world.serverNow;
    this.closed = true;
    this.world.log(`${this.id} ends ${end}: ${reason}`);
  }

  /** Terminated from the UI: the workflow is gone at once, with nothing released. */
  terminate(): void {
    if (this.closed) return;
    this.phase = 'done';
    this.end = 'terminated';
    this.endReason = 'terminated';
    this.endedAt = this.world.serverNow;
    this.closed = true;
    this.world.log(`${this.id} is terminated`);
  }
}

function infrastructureFailure(outcome: ActivityOutcome): Interrupted | undefined {
  if (outcome.kind === 'timeout') return { reason: 'NodeUnresponsive', message: outcome.timeoutType };
  if (outcome.kind === 'failed' && (INFRASTRUCTURE_FAILURES.has(outcome.type) || outcome.type === 'WorkerShutdown'))
    return { reason: outcome.type, message: outcome.message };
  return undefined;
}
