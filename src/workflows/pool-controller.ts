/**
 * The pool's controller: owns the state (`PoolState`, from src/core), the outbox of decided
 * effects, the health and scaling timers and the registrations by signal. The workflow
 * (`pool.ts`) wires messages to its methods and runs the loop; the controller decides nothing
 * itself, the core does.
 */
import { log } from '@temporalio/workflow';
import type { AcquireInput, AcquireOutcome, Effect, HealthPolicy, NamedLimit, NodeSpec, PoolStateData } from '../core';
import type { NodeTemplateInput, ScalingPolicy, SchedulingPolicy, TeamQuotaInput } from '../core';
import { PoolState, describeValue, emptyPoolState, limitStatus, parseNodeTemplate, parseTeamQuotaInput } from '../core';
import { unpackState } from './carry';
import type { CapacityReport, LimitReport, QuotaReport, RegisterOptions, RegisterResult } from './messages';
import type { RegistrationOutcome } from './messages';
import { ownerWorkflow, signalOwner } from './pool-delivery';
import { HealthTimer } from './pool-health';
import { Scaling } from './pool-scaling';
import { checkAcquire, registrationProblem } from './pool-validation';
import { FAIR_SHARE_PATCH, isPatched } from './versions';

/** Input of `allotPool`: its name, and the state carried over by continue-as-new. */
export interface PoolInput {
  name: string;
  state?: PoolStateData;
}

/** Most registrations by signal whose outcome the pool remembers for `registrationQuery`. */
const MAX_REMEMBERED_REGISTRATIONS = 10_000;

/** The pool's state and what it owes: effects to deliver, a scheduling pass, timers' checks. */
export class PoolController {
  readonly pool: PoolState;
  /** Effects decided and not yet delivered, oldest first. */
  readonly outbox: Effect[] = [];
  /** Something changed since the last scheduling pass. */
  dirty = true;
  /** Updates this run has accepted (the server refuses more than 2,000 per run). */
  updatesThisRun = 0;
  readonly health: HealthTimer;
  readonly scaling: Scaling;
  /** Outcomes of registrations by signal, by node id (refused ones are answered here only). */
  private readonly registrations = new Map<string, RegistrationOutcome>();

  /** `packed`: a large carried state, deflated (see `carry.ts`). */
  constructor(input: PoolInput, packed?: Uint8Array) {
    this.pool = new PoolState(packed ? unpackState(packed) : (input.state ?? emptyPoolState(input.name)));
    // Asked only while fair share is on: pools without it record no marker and replay as before.
    this.pool.progressiveFairShare = () => isPatched(FAIR_SHARE_PATCH);
    this.health = new HealthTimer(this.pool);
    this.scaling = new Scaling(this.pool, () => (this.dirty = true));
  }

  // Nodes.

  /** Registers (or re-registers) a node; leases it no longer runs end. */
  register(spec: NodeSpec, options: RegisterOptions | undefined): RegisterResult {
    const { status, kill, effects, nodeLostAfterMs } = this.pool.register(spec, Date.now(), {
      runningLeases: options?.runningLeases ?? [],
      deadLeases: options?.deadLeases ?? [],
    });
    this.outbox.push(...effects);
    this.dirty = true;
    log.info('node registered', { node: spec.id, status, kill, dead: effects.length });
    const store = this.pool.store;
    return { status, pool: this.pool.name, kill, nodeLostAfterMs, ...(store !== undefined ? { store } : {}) };
  }

  /** A registration by signal: a refused one is logged and answered through `registration`. */
  registerBySignal(spec: NodeSpec, options: unknown): void {
    const opts = (typeof options === 'object' && options !== null ? options : {}) as Partial<
      RegisterOptions & { token: string }
    >;
    const token = typeof opts.token === 'string' ? opts.token : '';
    const nodeId = typeof spec === 'object' && spec !== null && typeof spec.id === 'string' ? spec.id : undefined;
    const problem = registrationProblem(spec, opts);
    if (problem) {
      log.warn('dropped a node registration', { node: nodeId ?? describeValue(spec), problem });
      if (nodeId !== undefined && this.registrations.size < MAX_REMEMBERED_REGISTRATIONS)
        this.registrations.set(nodeId, { token, error: problem });
      return;
    }
    this.registrations.set(spec.id, { token, result: this.register(spec, opts) });
  }

  /** How the latest registration by signal of a node went (`null`: none in this run). */
  registration(nodeId: string): RegistrationOutcome | null {
    return this.registrations.get(nodeId) ?? null;
  }

  /** An agent is alive; a stopping one gets no new grants until it registers again. */
  heartbeat(message: { nodeId: string; stopping?: boolean }): void {
    if (typeof message?.nodeId !== 'string') {
      log.warn('dropped an invalid nodeHeartbeat signal', { got: describeValue(message).slice(0, 200) });
      return;
    }
    if (message.stopping === true) {
      this.pool.markNotReady(message.nodeId);
      this.dirty = true;
    } else if (this.pool.heartbeat(message.nodeId, Date.now())) this.dirty = true;
  }

  /** Drains or undrains a node. */
  drain({ nodeId, drain }: { nodeId: string; drain: boolean }): { nodeId: string; status: string } {
    const status = this.pool.setDraining(nodeId, drain) ?? 'unknown';
    this.dirty = true;
    return { nodeId, status };
  }

  // Requests and leases.

  /** A step asks by signal; an invalid request is logged and dropped, a rejection told. */
  acquireBySignal(request: AcquireInput): void {
    try {
      checkAcquire(request);
    } catch (err) {
      log.warn('dropped an invalid acquire signal', { error: String(err) });
      return;
    }
    const outcome = this.pool.enqueue(request, Date.now());
    const rejection = outcome.status === 'rejected' ? this.pool.rejectionOf(request.requestId) : undefined;
    if (rejection) this.outbox.push({ kind: 'reject', rejection });
    this.dirty = true;
  }

  /** A client asks by Update: where it stands is worked out once, after scheduling (most are granted at once). */
  acquire(request: AcquireInput): AcquireOutcome {
    const outcome = this.pool.enqueue(request, Date.now());
    if (outcome.status !== 'queued') return outcome;
    this.outbox.push(...this.pool.schedule(Date.now()));
    return this.pool.lookup(request.requestId) ?? { status: 'released' };
  }

  /** A step gives back its lease or withdraws its request (see `releaseSignal`). */
  releaseBySignal(message: { requestId: string; requeue?: boolean; stopped?: boolean }): void {
    if (typeof message?.requestId !== 'string') {
      log.warn('dropped an invalid release signal', { message });
      return;
    }
    const options = { requeue: message.requeue === true, stopped: message.stopped === true };
    this.outbox.push(...this.pool.handleRelease(message.requestId, Date.now(), options));
    this.dirty = true;
  }

  /** A client releases by Update. */
  release(requestId: string): { released: boolean } {
    const released = this.pool.release(requestId, { now: Date.now() }) !== undefined;
    this.dirty = true;
    return { released };
  }

  /** A running step renews its lease; a renewal of a lease the pool does not hold is answered. */
  renew(message: { requestId: string; workflowId?: string }): void {
    if (
      typeof message?.requestId !== 'string' ||
      (message.workflowId !== undefined && typeof message.workflowId !== 'string')
    ) {
      log.warn('dropped an invalid renew signal', { got: describeValue(message).slice(0, 200) });
      return;
    }
    const effects = this.pool.handleRenew(message, Date.now());
    if (effects.length > 0) {
      log.warn('renewal of a lease the pool does not hold; telling its step', { requestId: message.requestId });
      this.outbox.push(...effects);
    } else if (message.workflowId === undefined && !this.pool.leases.some((l) => l.requestId === message.requestId)) {
      // Sent without a workflow to tell (by hand, or by an older step): only logged.
      log.warn('renewal of a lease the pool does not hold', { requestId: message.requestId });
    }
  }

  // Settings.

  /** Changes lease TTL and node-health timing. */
  setHealth(policy: Partial<HealthPolicy>): HealthPolicy {
    this.pool.setHealth(policy, Date.now());
    this.dirty = true;
    return this.pool.health;
  }

  /** Sets (or replaces) a team's quota (validated). */
  setQuota(input: TeamQuotaInput): QuotaReport {
    const { quota, weight } = parseTeamQuotaInput(input);
    if (quota) this.pool.setTeamQuota(quota);
    if (weight !== undefined) this.pool.setTeamWeight(input.team, weight);
    this.dirty = true;
    return this.quotaReport();
  }

  /** Removes a team's quota. */
  removeQuota(team: string): QuotaReport {
    this.pool.removeTeamQuota(team);
    this.dirty = true;
    return this.quotaReport();
  }

  /** Sets (or changes) a named limit (validated). */
  setLimit(input: NamedLimit): LimitReport {
    this.pool.setLimit({ name: input.name, max: input.max });
    this.dirty = true;
    return this.limitReport();
  }

  /** Names the pool's store (validated); agents learn it when they register. */
  setStore(input: { url: string | null }): { store: string | null } {
    this.pool.setStore(input.url ?? undefined);
    return { store: this.pool.store ?? null };
  }

  /** Removes a named limit (validated: none holds it). */
  removeLimit(input: { name: string }): LimitReport {
    this.pool.removeLimit(input.name);
    this.dirty = true;
    return this.limitReport();
  }

  /** Changes the scheduling policy (validated). */
  setPolicy(policy: Partial<SchedulingPolicy>): SchedulingPolicy {
    this.pool.setPolicy(policy);
    this.dirty = true;
    return this.pool.policy;
  }

  /** Replaces the node templates (validated) and optionally the scaling timing. */
  setTemplates(input: { templates: NodeTemplateInput[]; scaling?: Partial<ScalingPolicy> }): CapacityReport {
    const templates = input.templates.map((t) => parseNodeTemplate(t).template).filter((t) => t !== undefined);
    this.pool.setTemplates(templates, input.scaling);
    this.dirty = true;
    return this.capacityReport();
  }

  // Reports.

  /** Every team's quota and usage, the usage of teams without one, and each team's fair share. */
  quotaReport(): QuotaReport {
    const usage = this.pool.teamUsage();
    const named = new Set(this.pool.teams.map((t) => t.name));
    const policy = this.pool.policy;
    return {
      teams: this.pool.teams.map((t) => ({ ...t, usage: usage[t.name] ?? {} })),
      unlimited: Object.entries(usage)
        .filter(([name]) => !named.has(name))
        .map(([name, u]) => ({ name, usage: u })),
      fairShare: {
        on: policy.fairShare,
        halfLifeMs: policy.fairShareHalfLifeMs,
        teams: this.pool.fairShareReport(Date.now()),
      },
    };
  }

  /** Every named limit with its use, holders and waiting requests. */
  limitReport(): LimitReport {
    return { limits: limitStatus(this.pool.limits, this.pool.leases, this.pool.queue) };
  }

  /** Demand, template nodes and the scaling timing. */
  capacityReport(): CapacityReport {
    return {
      demand: this.pool.demand(Date.now()),
      templates: this.pool.templateNodes(),
      templateSpecs: [...this.pool.templates],
      scaling: this.pool.scalingPolicy,
    };
  }

  // The loop's steps.

  /** Whether the loop has anything to do. */
  hasWork(): boolean {
    return this.dirty || this.health.due || this.scaling.due || this.outbox.length > 0;
  }

  /** Checks leases and nodes, if the health timer says a check is due. */
  checkHealthIfDue(): void {
    if (!this.health.due) return;
    this.health.due = false;
    this.outbox.push(...this.pool.checkHealth(Date.now()));
    this.dirty = true;
  }

  /** Runs a scheduling pass, if anything changed since the last. */
  scheduleIfDirty(): void {
    if (!this.dirty) return;
    this.dirty = false;
    this.outbox.push(...this.pool.schedule(Date.now()));
    this.health.noteDeadline();
  }

  /** The last scheduling pass of a run, before it carries its state on: the health timer is not woken. */
  scheduleBeforeCarrying(): void {
    if (!this.dirty) return;
    this.dirty = false;
    this.outbox.push(...this.pool.schedule(Date.now()));
  }

  /** Delivers every effect in the outbox, each to its owner at once. */
  async deliverAll(): Promise<void> {
    await Promise.all(this.outbox.splice(0).map((effect) => this.deliver(effect)));
  }

  /** Tells a request's owner about an effect; an owner that is gone gives its grant back. */
  async deliver(effect: Effect): Promise<void> {
    const workflowId = ownerWorkflow(effect);
    if (workflowId === undefined) return;
    try {
      await signalOwner(workflowId, effect);
    } catch (err) {
      if (effect.kind === 'grant') {
        log.warn('owner of a grant is gone; releasing its lease', { owner: workflowId, error: String(err) });
        this.pool.release(effect.lease.requestId, { now: Date.now() });
        this.dirty = true;
      }
    }
  }
}
