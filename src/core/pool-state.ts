/**
 * `PoolState`: one pool's state machine over plain-JSON data (`pool-data.ts`). The pool workflow
 * is a thin shell around it; the protocol simulation and the tests drive it directly, and the
 * simulator shares its scheduling cycle (`decide()`, then `applyDecisions()`).
 *
 * It is its own settings (`pool-settings.ts`), and hands every other operation over to the owner
 * of what it changes: `request-queue.ts` (with `request-memory.ts`), `node-registry.ts`,
 * `pool-health.ts`, `pool-scaling.ts` and `pool-status.ts`. Idempotency: every operation is keyed
 * (request id, node id), so a repeated message changes nothing the second time.
 */
import type { DemandGroup, NodeTemplate, ScalingAction, ScalingPolicy } from './capacity';
import { applyDecisions } from './apply-decisions';
import { decide } from './decide';
import type { FairShareInput } from './decisions';
import type { TeamShare } from './fair-share';
import { FairShares, clusterCapacity } from './fair-share';
import type { NodeReport, Registration } from './node-registry';
import { NodeRegistry } from './node-registry';
import type { AcquireInput, AcquireOutcome, Effect, PoolStateData } from './pool-data';
import { PoolHealth } from './pool-health';
import type { TemplateNodes } from './pool-scaling';
import { PoolScaling } from './pool-scaling';
import { PoolSettings } from './pool-settings';
import type { PoolStatus } from './pool-status';
import { STATUS_QUEUE_LIMIT, poolStatus } from './pool-status';
import { RequestMemory } from './request-memory';
import { RequestQueue } from './request-queue';
import type { Lease, NodeRecord, NodeSpec, PendingRequest, Rejection } from './types';
import { accrueUsage } from './usage-history';

/** The pool's state machine: its own settings (quotas, policy, health timing), and the owners of the rest. */
export class PoolState extends PoolSettings {
  private readonly memory: RequestMemory;
  private readonly requests: RequestQueue;
  private readonly registry: NodeRegistry;
  private readonly liveness: PoolHealth;
  private readonly scaling: PoolScaling;
  /**
   * Whether fair share fills progressively and counts decayed usage; asked only while fair share
   * is on. The pool workflow answers false while it replays a run recorded before that change.
   */
  progressiveFairShare: () => boolean = () => true;

  constructor(data: PoolStateData) {
    super(data);
    this.memory = new RequestMemory(data);
    this.requests = new RequestQueue(data, this.memory, this);
    this.registry = new NodeRegistry(data, this, this.requests);
    this.liveness = new PoolHealth(data, this, this.requests);
    this.scaling = new PoolScaling(data, this.registry);
  }

  /** The plain-JSON state, for continue-as-new and queries. */
  toJSON(): PoolStateData {
    return this.data;
  }

  /** The pool's name. */
  get name(): string {
    return this.data.name;
  }

  /** The nodes, sorted by id. */
  get nodes(): readonly NodeRecord[] {
    return this.data.nodes;
  }

  /** The leases held now. */
  get leases(): readonly Lease[] {
    return this.data.leases;
  }

  /** The waiting requests, in arrival order. */
  get queue(): readonly PendingRequest[] {
    return this.data.queue;
  }

  // Requests (request-queue.ts).

  /** Queues a request, or reports where an earlier acquire with the same id stands. */
  acquire(input: AcquireInput, now: number): AcquireOutcome {
    return this.requests.acquire(input, now);
  }

  /** As `acquire`, without working out the queue position of a request it queues. */
  enqueue(input: AcquireInput, now: number): AcquireOutcome | { status: 'queued' } {
    return this.requests.enqueue(input, now);
  }

  /** Rejects the newest `count` queued requests with `QueueFull`; returns the rejections to deliver. */
  shedNewest(count: number, why: string): Rejection[] {
    return this.requests.shedNewest(count, why);
  }

  /** The rejection recorded for a request in this run, if any. */
  rejectionOf(requestId: string): Rejection | undefined {
    return this.memory.rejectionOf(requestId);
  }

  /** Where a request stands now, or `undefined` if the pool has never seen it. */
  lookup(requestId: string): AcquireOutcome | undefined {
    return this.requests.lookup(requestId);
  }

  /** Gives back what a request holds, or withdraws it from the queue; returns the released lease. */
  release(requestId: string, options: { requeue?: boolean; now?: number } = {}): Lease | undefined {
    if (options.now !== undefined) this.accrueUsage(options.now);
    return this.requests.release(requestId, options);
  }

  /** A release signal: as `release`, telling owners whose request someone else withdrew or stopped. */
  handleRelease(requestId: string, now: number, options: { requeue?: boolean; stopped?: boolean } = {}): Effect[] {
    this.accrueUsage(now);
    return this.requests.handleRelease(requestId, now, options);
  }

  // Fair share (fair-share.ts, usage-history.ts).

  /**
   * Counts the teams' usage up to `now` into the decayed history. Called before anything grants
   * or gives back a lease, so the leases held since the last count are the ones held now. The
   * history is kept only while fair share is on with a half-life; it starts when it is turned on.
   */
  private accrueUsage(now: number): void {
    const policy = this.policy;
    if (!policy.fairShare || policy.fairShareHalfLifeMs <= 0 || !this.progressiveFairShare()) {
      if (this.data.usageHistory) delete this.data.usageHistory;
      return;
    }
    const capacity = clusterCapacity(this.data.nodes.map((n) => n.spec));
    const history = accrueUsage(this.data.usageHistory, this.data.leases, capacity, now, policy.fairShareHalfLifeMs);
    if (history) this.data.usageHistory = history;
  }

  /** What fair share reads in a cycle at the time of the last count. */
  private fairShareInput(): FairShareInput | undefined {
    if (!this.policy.fairShare) return undefined;
    if (!this.progressiveFairShare()) return { fixed: true };
    return {
      ...(this.data.usageHistory ? { history: this.data.usageHistory } : {}),
      ...(this.data.teamWeights ? { weights: this.data.teamWeights } : {}),
    };
  }

  /** Each team's fair share at `now`: weight, share now, and decayed usage. Read-only: queries call it. */
  fairShareReport(now: number): TeamShare[] {
    const policy = this.policy;
    const specs = this.data.nodes.map((n) => n.spec);
    const history =
      policy.fairShare && this.data.usageHistory
        ? accrueUsage(this.data.usageHistory, this.data.leases, clusterCapacity(specs), now, policy.fairShareHalfLifeMs)
        : undefined;
    return new FairShares(this.data.leases, specs, history, this.data.teamWeights).report();
  }

  // The scheduling cycle.

  /** Runs one scheduling cycle, applies its grants and rejections, and returns what to tell owners. */
  schedule(now: number): Effect[] {
    this.accrueUsage(now);
    const fairShare = this.fairShareInput();
    const decisions = decide(this.data, { now, policy: this.data.policy, ...(fairShare ? { fairShare } : {}) });
    const { leaseTtlMs, nodeLostAfterMs } = this.health;
    const terms = {
      leaseId: () => `${this.data.name}-${++this.data.leaseCounter}`,
      ttlMs: leaseTtlMs,
      fenceMs: nodeLostAfterMs,
      gracePeriodMs: this.policy.gracePeriodMs,
    };
    const applied = applyDecisions(this.data, decisions, now, terms, this.requests.index);
    this.requests.settle(applied);
    return [
      ...applied.granted.flatMap((g) => g.leases.map((lease): Effect => ({ kind: 'grant', lease }))),
      ...applied.preempted.map(({ lease, message, preemptor }): Effect => ({
        kind: 'preempt',
        lease,
        message,
        preemptor,
      })),
      ...applied.rejected.map((rejection): Effect => ({ kind: 'reject', rejection })),
    ];
  }

  /** A readable picture of the pool for `allot status`, listing at most `queueLimit` queued requests. */
  status(now: number, queueLimit = STATUS_QUEUE_LIMIT): PoolStatus {
    const status = poolStatus(this.data, now, queueLimit);
    const policy = this.policy;
    if (policy.fairShare)
      status.fairShare = { halfLifeMs: policy.fairShareHalfLifeMs, teams: this.fairShareReport(now) };
    return status;
  }

  // Nodes (node-registry.ts) and health (pool-health.ts).

  /** A node's agent registers: the node joins or comes back; returns what the agent must kill and whom to tell. */
  register(
    spec: NodeSpec,
    now: number,
    options: { runningLeases?: readonly string[]; deadLeases?: readonly string[] } = {},
  ): Registration {
    this.accrueUsage(now);
    const registration = this.registry.register(spec, now, options);
    if (registration.status === 'registered') this.scaling.nodeJoined(spec);
    return registration;
  }

  /** Adds a node or replaces its inventory; leases already on it are kept. */
  registerNode(spec: NodeSpec, now: number): 'registered' | 'updated' {
    this.accrueUsage(now);
    const status = this.registry.registerNode(spec, now);
    if (status === 'registered') this.scaling.nodeJoined(spec);
    return status;
  }

  /** Records that a node's agent is alive; returns whether a NotReady node became Ready. */
  heartbeat(nodeId: string, now: number): boolean {
    return this.registry.heartbeat(nodeId, now);
  }

  /** Drains a node or makes it schedulable again; returns its status, `undefined` if unknown. */
  setDraining(nodeId: string, drain: boolean): string | undefined {
    return this.registry.setDraining(nodeId, drain);
  }

  /** Marks a Ready node NotReady (its agent said it is stopping). */
  markNotReady(nodeId: string): void {
    this.registry.markNotReady(nodeId);
  }

  /** Of the leases an agent says it runs, those the pool does not hold on that node (to be killed). */
  unknownLeases(nodeId: string, running: readonly string[]): string[] {
    return this.registry.unknownLeases(nodeId, running);
  }

  /** What the node's agent needs to know of its node (the `node` query). */
  nodeReport(nodeId: string, now: number): NodeReport {
    return this.registry.nodeReport(nodeId, now);
  }

  /** Extends a lease by its own TTL; returns it, or `undefined` if the pool no longer holds it. */
  renew(requestId: string, now: number): Lease | undefined {
    return this.liveness.renew(requestId, now);
  }

  /** A renewal; the step is told when the pool no longer holds its lease. */
  handleRenew(message: { requestId: string; workflowId?: string }, now: number): Effect[] {
    return this.liveness.handleRenew(message, now);
  }

  /** The pool did not run for `late` ms: silence and deadlines count from when it runs again. */
  resume(late: number): void {
    this.liveness.resume(late);
  }

  /** Takes back expired and overdue preempted leases, and marks silent nodes; returns the revocations. */
  checkHealth(now: number): Effect[] {
    this.accrueUsage(now);
    return this.liveness.checkHealth(now);
  }

  /** When `checkHealth` may next find something to do; `undefined` when nothing is pending. */
  nextHealthDeadline(now?: number): number | undefined {
    return this.liveness.nextHealthDeadline(now);
  }

  // Scaling (pool-scaling.ts).

  /** Node templates in force. */
  get templates(): readonly NodeTemplate[] {
    return this.scaling.templates;
  }

  /** Scaling timing in force. */
  get scalingPolicy(): ScalingPolicy {
    return this.scaling.scalingPolicy;
  }

  /** Replaces the node templates (and optionally the scaling timing). */
  setTemplates(templates: NodeTemplate[], scaling?: Partial<ScalingPolicy>): void {
    this.scaling.setTemplates(templates, scaling);
  }

  /** Unmet demand, grouped by the template or shape of node that would serve it. */
  demand(now: number): DemandGroup[] {
    return this.scaling.demand(now);
  }

  /** Nodes per template: existing, pending (asked for) and being removed. */
  templateNodes(): TemplateNodes[] {
    return this.scaling.templateNodes();
  }

  /** Decides what to scale now and records it as under way; report back with `scaled`. */
  planScaling(now: number): ScalingAction[] {
    return this.scaling.planScaling(now);
  }

  /** Records the end of a scaling action: a removed node leaves the pool; a failed one is undone. */
  scaled(action: ScalingAction, ok: boolean): void {
    this.scaling.scaled(action, ok);
  }
}
