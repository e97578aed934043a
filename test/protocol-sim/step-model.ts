/**
 * A model of the `allotStep` workflow: acquire, wait for a grant, launch on the granted node,
 * renew while running, release (also on failure and cancellation), and queue again with the
 * original submit time after a preemption or a lost node, as attempt n + 1. A launch lost with a
 * silent node keeps its lease until the node is known to have stopped it, or must have.
 *
 * A gang (`replicas` ≥ 2) is granted once every replica's lease has come; it asks replica 0's
 * node for a port (the rendezvous), launches every replica on its own lease at once, and ends
 * them together: the first replica to fail or exit non-zero cancels the others, and the attempt
 * comes to one outcome (decided by the real `decideOutcome`) once all have ended. The agents do
 * not release a replica's lease; the step releases every copy at once.
 */
import type { AcquireInput, Lease, Rejection } from '../../src/core';
import { INFRASTRUCTURE_FAILURES, STOPPED_REASONS } from '../../src/workflows/failures';
import { DEFAULT_FENCE_MS, LAUNCH_HEARTBEAT_TIMEOUT_MS, MAX_INFRASTRUCTURE_RETRIES } from '../../src/workflows/step';
import type { LaunchFailureFacts } from '../../src/workflows/step-outcome';
import { decideOutcome } from '../../src/workflows/step-outcome';
import { POOL_ID } from './pool-model';
import type { SimStepSpec } from './scenario';
import type { ActivityOutcome, ActivityRecord, LaunchModelInput, MailItem, World } from './world';
import { WorkflowModel } from './world';

/** How a step ended. */
export type StepEnd = 'succeeded' | 'failed' | 'cancelled' | 'terminated';

interface Interrupted {
  reason: string;
  message: string;
}

/** One attempt of a gang, as `launchGang` holds it. */
interface GangAttempt {
  leases: Lease[];
  /** Replica 0's node naming a port, while it does. */
  rendezvous?: ActivityRecord;
  rendezvousFailed?: ActivityOutcome;
  /** Each replica's launch, and how it ended, by rank. */
  activities: (ActivityRecord | undefined)[];
  ends: (ActivityOutcome | undefined)[];
  /** The first replica that failed or exited non-zero before anything else stopped the gang. */
  cause?: number;
  /** The launch scope was cancelled: no launch begins after this. */
  cancelled: boolean;
}

/** What the invariants learn from steps. */
export interface StepObserver {
  /** A gang launches (its rendezvous begins) with these leases. */
  gangLaunches(step: StepModel, leases: readonly Lease[]): void;
}

export class StepModel extends WorkflowModel {
  /**
   * As `allotStep` does (true), a gang whose replicas may still run waits until the pool has said
   * of each of them that its workload stopped. Off brings back a bug for the simulation to find
   * (its own test): the first revocation that proves *any* replica stopped (`NodeRestarted` of
   * another replica's node, say) ends the wait, and the gang runs again beside a silent replica.
   */
  static gangWaitsForEverySilentReplica = true;

  /** Off brings in a bug for the simulation to find (its own test): a gang's failing replica leaves the others running. */
  static gangStopsTogether = true;

  attempt = 1;
  requestId: string;
  readonly baseRequestId: string;
  submittedAt = 0;
  phase: 'acquiring' | 'queue-full' | 'running' | 'fencing' | 'done' = 'acquiring';
  told: {
    lease?: Lease;
    /** A gang's leases as they come (by rank once all have). */
    leases?: Lease[];
    rejection?: Rejection;
    interrupted?: Interrupted;
    stopped?: Interrupted;
    /** The leases whose workloads a revocation proved stopped. */
    stoppedLeases?: Set<string>;
  } = {};
  /** While a gang's attempt waits for silent nodes: the leases of replicas that may still run. */
  private silentLeases: string[] = [];
  /** The gang attempt under way. */
  gang: GangAttempt | undefined;
  observer: StepObserver | undefined;
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
        if (lease.requestId !== this.requestId) break;
        const replicas = lease.replicas ?? 1;
        if (replicas <= 1) {
          this.told.lease ??= lease;
          break;
        }
        // A gang's leases come one signal each: it is granted once all have.
        const leases = (this.told.leases ??= []);
        if (this.told.lease || leases.some((l) => l.leaseId === lease.leaseId)) break;
        leases.push(lease);
        if (leases.length < replicas) break;
        leases.sort((a, b) => (a.replica ?? 0) - (b.replica ?? 0));
        this.told.lease = leases[0];
        break;
      }
      case 'reject': {
        const r = item.payload as Rejection;
        if (r.requestId === this.requestId) this.told.rejection = r;
        break;
      }
      case 'preempt':
      case 'revoke': {
        const p = item.payload as { requestId: string; leaseId: string; reason?: string; message: string };
        if (p.requestId !== this.requestId) break;
        const reason = item.kind === 'preempt' ? 'Preempted' : (p.reason ?? 'Revoked');
        if (item.kind === 'revoke' && STOPPED_REASONS.has(reason)) {
          this.told.stopped ??= { reason, message: p.message };
          (this.told.stoppedLeases ??= new Set()).add(p.leaseId);
        }
        if (this.told.interrupted) break;
        this.told.interrupted = { reason, message: p.message };
        // The launch scope exists only once the launch has begun.
        if (this.phase === 'running') this.cancelLaunch();
        break;
      }
      case 'cancel':
        if (this.phase === 'done') break;
        this.workflowCancelled = true;
        if (this.phase === 'acquiring' || this.phase === 'queue-full') {
          this.release();
          this.finish('cancelled', 'cancelled while queued');
        } else if (this.phase === 'running') this.cancelLaunch();
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
        else if (this.gang?.rendezvous?.id === id) this.rendezvousEnded(outcome);
        else if (this.gang) {
          const rank = this.gang.activities.findIndex((a) => a?.id === id);
          if (rank >= 0) this.replicaEnded(rank, outcome);
        }
        break;
      }
    }
  }

  /** What the workflow's code does once its awaits resolve. */
  private advance(): void {
    if (this.phase === 'fencing' && this.knownStopped()) {
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
    const leases = this.told.leases;
    if (leases && leases.length > 1) {
      this.launchGang(leases);
      return;
    }
    this.activity = this.world.scheduleActivity(this.id, lease.nodeId, this.launchInput(lease));
    this.world.log(`${this.id} launches ${this.activity.id} on ${lease.nodeId} with lease ${lease.leaseId}`);
    this.scheduleRenew();
  }

  /** What the agent needs to run the workload of `lease` (one replica's, with `gang`). */
  private launchInput(lease: Lease, gang?: { rank: number; size: number }): LaunchModelInput {
    return {
      stepId: this.id,
      requestId: this.requestId,
      leaseId: lease.leaseId,
      pool: POOL_ID,
      gpuIndices: lease.gpus.map((g) => g.index),
      gpuMilli: lease.gpus.reduce((s, g) => s + g.milli, 0),
      cpuMilli: lease.cpuMilli,
      gracePeriodMs: this.launchGrace,
      ...(lease.fenceMs !== undefined ? { fenceMs: lease.fenceMs } : {}),
      ...(gang ? { gang } : {}),
    };
  }

  /** A gang's attempt begins: renewing every copy, replica 0's node names a port. */
  private launchGang(leases: Lease[]): void {
    this.observer?.gangLaunches(this, leases);
    const first = leases[0] as Lease;
    this.gang = { leases, activities: [], ends: [], cancelled: false };
    this.scheduleRenew();
    this.gang.rendezvous = this.world.scheduleActivity(this.id, first.nodeId, this.launchInput(first), true);
    this.world.log(
      `${this.id} is granted ${leases.map((l) => `${l.leaseId} on ${l.nodeId}`).join(', ')}; ${first.nodeId} names a port`,
    );
  }

  /** The rendezvous ended: every replica launches at once, or the attempt ends without any. */
  private rendezvousEnded(outcome: ActivityOutcome): void {
    const gang = this.gang as GangAttempt;
    gang.rendezvous = undefined;
    if (outcome.kind !== 'completed') {
      gang.rendezvousFailed = outcome;
      this.gangEnded();
      return;
    }
    const size = gang.leases.length;
    gang.leases.forEach((lease, rank) => {
      // A launch in a cancelled scope fails at once, never scheduled.
      if (gang.cancelled) {
        gang.ends[rank] = { kind: 'cancelled' };
        return;
      }
      const a = this.world.scheduleActivity(this.id, lease.nodeId, this.launchInput(lease, { rank, size }));
      gang.activities[rank] = a;
      this.world.log(`${this.id} launches replica ${rank} as ${a.id} on ${lease.nodeId} with lease ${lease.leaseId}`);
    });
    if (gang.cancelled) this.gangEnded();
  }

  /** One replica's launch ended: the first to end badly stops the others; once all have ended, so has the attempt. */
  private replicaEnded(rank: number, outcome: ActivityOutcome): void {
    const gang = this.gang as GangAttempt;
    gang.ends[rank] = outcome;
    gang.activities[rank] = undefined;
    const bad = outcome.kind !== 'completed' || outcome.exitCode !== 0;
    if (
      bad &&
      gang.cause === undefined &&
      !this.told.interrupted &&
      !this.workflowCancelled &&
      StepModel.gangStopsTogether
    ) {
      gang.cause = rank;
      this.world.log(`${this.id}: replica ${rank} ended badly (${JSON.stringify(outcome)}); stopping the others`);
      this.cancelLaunch();
    }
    if (gang.leases.every((_, r) => gang.ends[r] !== undefined)) this.gangEnded();
  }

  /** Cancels the launch scope: the single launch, or the gang's rendezvous and every replica's launch. */
  private cancelLaunch(): void {
    if (this.activity) {
      this.world.cancelActivity(this.activity);
      return;
    }
    const gang = this.gang;
    if (!gang) return;
    gang.cancelled = true;
    if (gang.rendezvous) this.world.cancelActivity(gang.rendezvous);
    for (const a of gang.activities) if (a) this.world.cancelActivity(a);
  }

  /** What the gang's attempt comes to, as `runGang` decides it. */
  private gangEnded(): void {
    const gang = this.gang as GangAttempt;
    this.gang = undefined;
    const { ends, leases } = gang;
    const ok = (e: ActivityOutcome | undefined): boolean => e?.kind === 'completed' && e.exitCode === 0;
    if (!gang.rendezvousFailed && leases.every((_, r) => ok(ends[r]))) {
      this.renewGeneration++;
      this.release();
      this.finish('succeeded', 'every replica exited 0');
      return;
    }
    // A replica that lost its node or agent explains its peers' failures (runGang's `lostReplica`).
    const lost = ends.findIndex((e) => e !== undefined && infrastructureFailure(e) !== undefined);
    const causeRank =
      (lost >= 0 ? lost : undefined) ?? gang.cause ?? ends.findIndex((e) => e !== undefined && e.kind !== 'completed');
    const cause = gang.rendezvousFailed ?? ends[causeRank];
    const who = gang.rendezvousFailed ? 'replica 0 (rendezvous)' : `replica ${causeRank}`;
    if (cause?.kind === 'completed') {
      this.renewGeneration++;
      this.release();
      const outcome = decideOutcome(
        { kind: 'exited', exitCode: cause.exitCode, signal: null, replica: who },
        this.context(),
      );
      this.finish(outcome.kind === 'fail' ? 'failed' : 'succeeded', `${who} exit ${cause.exitCode}`);
      return;
    }
    const lease = gang.rendezvousFailed ? leases[0] : leases[causeRank];
    const mayStillRun = (e: ActivityOutcome | undefined): boolean =>
      e?.kind === 'timeout' && e.timeoutType !== 'SCHEDULE_TO_START';
    const facts: LaunchFailureFacts = cause
      ? {
          interrupted: this.told.interrupted,
          infrastructure: infrastructureFailure(cause),
          cancellation: cause.kind === 'cancelled',
          mayStillRun: mayStillRun(cause),
          message: `${who}: ${JSON.stringify(cause)}`,
          ...(lease?.fenceMs !== undefined ? { fenceMs: lease.fenceMs } : {}),
          graceMs: this.launchGrace,
        }
      : {
          cancellation: this.workflowCancelled,
          mayStillRun: false,
          message: 'no replica ran',
          graceMs: this.launchGrace,
        };
    if (gang.rendezvousFailed)
      facts.infrastructure ??= { reason: 'NodeUnresponsive', message: `${who} could not name a port` };
    // A replica whose agent stopped answering may still run: the gang waits for it as a single step would.
    if (ends.some(mayStillRun)) facts.mayStillRun = true;
    const outcome = decideOutcome({ kind: 'launchFailed', ...facts }, this.context());
    if (outcome.kind === 'requeue') {
      this.infrastructureRetries = outcome.infrastructureRetries;
      this.silentLeases = leases.filter((_, r) => mayStillRun(ends[r])).map((l) => l.leaseId);
      if (gang.rendezvousFailed && mayStillRun(gang.rendezvousFailed))
        this.silentLeases.push((leases[0] as Lease).leaseId);
      if (outcome.waitForStopMs !== undefined && !this.knownStopped()) {
        this.phase = 'fencing';
        this.lostWhileFencing = outcome.why;
        this.world.log(`${this.id} waits up to ${outcome.waitForStopMs}ms for its replicas' nodes to stop them`);
        this.timer(outcome.waitForStopMs, 'fence-over', ++this.fenceGeneration);
        return;
      }
      this.renewGeneration++;
      this.queueAgain(outcome.why);
      return;
    }
    this.renewGeneration++;
    this.release();
    if (outcome.kind === 'fail') this.finish('failed', outcome.error);
    else this.finish('cancelled', 'cancelled');
  }

  /** Whether the pool said that the workload the step waits for has stopped (every silent replica's, with the fix). */
  private knownStopped(): boolean {
    if (StepModel.gangWaitsForEverySilentReplica && this.silentLeases.length > 0)
      return this.silentLeases.every((id) => this.told.stoppedLeases?.has(id));
    return this.told.stopped !== undefined;
  }

  /** What `decideOutcome` knows of the step. */
  private context(): { name: string; attempt: number; infrastructureRetries: number; cancelled: boolean } {
    return {
      name: this.id,
      attempt: this.attempt,
      infrastructureRetries: this.infrastructureRetries,
      cancelled: this.workflowCancelled,
    };
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
    this.gang = undefined;
    this.silentLeases = [];
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
      ...(s.replicas !== undefined && s.replicas > 1
        ? { replicas: s.replicas, replicaPlacement: s.replicaPlacement ?? 'spread' }
        : {}),
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
