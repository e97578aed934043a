/**
 * The state of one pool and the operations on it, as a plain class over plain-JSON data. The pool
 * workflow is a thin shell around it; tests and the simulator drive it directly.
 *
 * Idempotency: every operation is keyed (request id, node id), so a repeated message changes
 * nothing the second time.
 */
import type { DemandGroup, NodeTemplate, ScalingAction, ScalingPolicy, ScalingState } from './capacity';
import {
  DEFAULT_SCALING,
  SCALING_TIMEOUT_MS,
  TEMPLATE_LABEL,
  describeTemplate,
  planScaling,
  unmetDemand,
} from './capacity';
import { decide } from './decide';
import type { SchedulingPolicy } from './policy';
import { DEFAULT_POLICY } from './policy';
import type { ResourceVector, TeamQuota } from './quota';
import { leaseVector } from './quota';
import type { HealthPolicy } from './health';
import { DEFAULT_HEALTH, checkHealth, nextHealthDeadline } from './health';
import { PRIORITY_MAX, PRIORITY_MIN, waitedSoFar } from './priority';
import type { Issue } from './errors';
import { describeValue } from './errors';
import { parseCustom, validateResourceRequest } from './resources';
import { TEAM_NAME } from './admin';
import { compareRequests, orderQueue } from './ordering';
import { hash53 } from './hash';
import { leaseOwnerKey } from './preemption';
import { usageByNode } from './node-usage';
import type { Reason } from './reasons';
import type {
  Lease,
  NodeRecord,
  NodeSpec,
  NodeStatus,
  PendingRequest,
  Rejection,
  RequestOwner,
  ResourceRequest,
} from './types';

/** How many released request ids are remembered to drop late duplicates of their acquire. */
export const RELEASED_MEMORY = 10_000;

/** How many steps' carried waiting the pool remembers until they queue again. */
export const CARRIED_WAITS = 2_000;

/**
 * Most requests a pool holds queued (Slurm's `MaxJobCount` is 10,000 by default). More are
 * rejected with `QueueFull`; the state a pool carries across continue-as-new stays within
 * Temporal's payload limit.
 */
export const MAX_QUEUED = 20_000;

/** How many queued requests the `status` query lists unless asked for more or fewer. */
export const STATUS_QUEUE_LIMIT = 1_000;

/** Options of the `status` query. */
export interface StatusOptions {
  /** List at most this many queued requests, 0 to {@link MAX_QUEUED}. @default STATUS_QUEUE_LIMIT */
  queueLimit?: number;
}

/** Checks the `status` query's options; returns the queue limit, or a message naming what is wrong. */
export function statusQueueLimit(options: unknown): number | string {
  if (options === undefined || options === null) return STATUS_QUEUE_LIMIT;
  if (typeof options !== 'object' || Array.isArray(options)) {
    return `status options must be an object like {"queueLimit": 100}, got ${describeValue(options)}`;
  }
  const limit = (options as StatusOptions).queueLimit;
  if (limit === undefined) return STATUS_QUEUE_LIMIT;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0 || limit > MAX_QUEUED) {
    return `queueLimit must be an integer from 0 to ${MAX_QUEUED}, got ${describeValue(limit)}`;
  }
  return limit;
}

/** The serialised state of a pool: carried across continue-as-new. */
export interface PoolStateData {
  name: string;
  nodes: NodeRecord[];
  leases: Lease[];
  queue: PendingRequest[];
  /** Next arrival sequence number. */
  seq: number;
  /** Next lease number. */
  leaseCounter: number;
  /** Recently released request ids, oldest first (states written before `releasedKeys`). */
  released: string[];
  /** Recently released request ids as {@link hash53} keys, oldest first. */
  releasedKeys?: string[];
  /** Lease and node-health timing. @default DEFAULT_HEALTH */
  health?: Partial<HealthPolicy>;
  /** Team quotas (one cohort). @default none: no quotas */
  teams?: TeamQuota[];
  /** Scheduling policy changes from DEFAULT_POLICY. @default none */
  policy?: Partial<SchedulingPolicy>;
  /** Kinds of node the pool may add through its scaler. @default none */
  templates?: NodeTemplate[];
  /** Scaling timing changes from DEFAULT_SCALING. @default none */
  scalingPolicy?: Partial<ScalingPolicy>;
  /** Where scaling stands. */
  scaling?: ScalingState;
  /** Per node: last time (ms) it was seen holding a lease, or registered. */
  idleSince?: Record<string, number>;
  /**
   * Waiting that steps carry into their next attempt: a step whose lease was preempted or taken
   * back queues again, and aging counts what it waited before, as the pool saw it. Oldest first.
   */
  carriedWaits?: { owner: string; waitedMs: number }[];
  /** A lowered `nodeLostAfterMs` takes effect once the old one has passed: agents learn it meanwhile. */
  previousNodeLost?: { nodeLostAfterMs: number; until: number };
}

/** What a step or client asks of the pool. */
export interface AcquireInput {
  requestId: string;
  owner: RequestOwner;
  resources: ResourceRequest;
  priority?: number;
  team?: string;
  label?: string;
  /** Workflow time (ms) of the first submission; defaults to now. */
  submittedAt?: number;
  /** Whether higher-priority or reclaiming work may evict it. @default false */
  preemptible?: boolean;
  /** Longest it runs once granted, ms (backfill relies on it). @default none */
  timeLimitMs?: number;
  /** Its own grace period between SIGTERM and SIGKILL, ms; the pool's policy bounds it. @default the policy's */
  gracePeriodMs?: number;
}

/** Where an acquire stands. */
export type AcquireOutcome =
  | { status: 'granted'; lease: Lease }
  | { status: 'queued'; ticket: string; position: number; reason: Reason; message: string }
  | { status: 'rejected'; reason: Reason; message: string }
  | { status: 'released' };

/** Something the pool must tell a request's owner. */
export type Effect =
  | { kind: 'grant'; lease: Lease }
  | { kind: 'reject'; rejection: Rejection }
  | { kind: 'revoke'; lease: Lease; reason: string; message: string }
  | { kind: 'preempt'; lease: Lease; message: string; preemptor: string }
  /**
   * The pool holds nothing for a request its owner still counts on: its queued request was
   * withdrawn, or its lease released, by someone else (`Withdrawn`, `NotHeld`).
   */
  | { kind: 'gone'; requestId: string; owner: RequestOwner; reason: 'Withdrawn' | 'NotHeld'; message: string };

/** What a node's agent learns of its node from the pool (the `node` query). */
export interface NodeReport {
  /** Whether the pool knows the node at all; `false`: it must register. */
  known: boolean;
  /** Declared lost: heartbeats no longer count; it must register again. */
  lost: boolean;
  status?: NodeStatus;
  /** The pool's node-lost time in force, ms: the agent stops its workloads well within it when cut off. */
  nodeLostAfterMs: number;
  /** The leases the pool holds on the node. */
  leases: { leaseId: string; requestId: string; owner: RequestOwner }[];
}

/** What a node's registration answers its agent. */
export interface Registration {
  status: 'registered' | 'updated';
  /** Running leases the pool does not hold on this node: the agent kills them. */
  kill: string[];
  /** Owners to tell that their leases are gone (the agent's earlier life ran them and they died with it). */
  effects: Effect[];
  /** The pool's node-lost time, ms: the agent stops cut-off workloads well within it. */
  nodeLostAfterMs: number;
}

/** Most steps a request remembers having evicted (beyond, it may evict one of them again). */
export const MAX_EVICTED_PER_REQUEST = 64;

/** After the pool did not run for a while, how long steps and agents have to be heard from again, ms. */
export const RESUME_MARGIN_MS = 10_000;

/** A fresh, empty pool. */
export function emptyPoolState(name: string): PoolStateData {
  return { name, nodes: [], leases: [], queue: [], seq: 0, leaseCounter: 0, released: [], releasedKeys: [] };
}

/** The pool's state machine. */
export class PoolState {
  private readonly data: PoolStateData;
  private readonly releasedSet: Set<string>;
  private readonly rejected = new Map<string, Rejection>();
  /** Whether scaling under way for too long is given up (see `expireScaling`). */
  private scalingExpires = true;
  /** The queue by request id, kept in step with `data.queue`. */
  private readonly queueById: Map<string, PendingRequest>;

  constructor(data: PoolStateData) {
    this.data = data;
    this.queueById = new Map(data.queue.map((r) => [r.requestId, r]));
    // Released ids are remembered by a short hash: ten thousand of them fit in a small state.
    const keys = [...(data.releasedKeys ?? []), ...data.released.map(hash53)];
    data.releasedKeys = keys.slice(Math.max(0, keys.length - RELEASED_MEMORY));
    data.released = [];
    this.releasedSet = new Set(data.releasedKeys);
  }

  /** The plain-JSON state, for continue-as-new and queries. */
  toJSON(): PoolStateData {
    return this.data;
  }

  get name(): string {
    return this.data.name;
  }

  get nodes(): readonly NodeRecord[] {
    return this.data.nodes;
  }

  get leases(): readonly Lease[] {
    return this.data.leases;
  }

  get queue(): readonly PendingRequest[] {
    return this.data.queue;
  }

  /**
   * A node's agent registers: the node is added, or its inventory replaced, and it is Ready again
   * (a lost node comes back only this way). `runningLeases` are what the agent runs: those the
   * pool does not hold on the node are to be killed. `deadLeases` died with the agent's earlier
   * life: the pool takes them back and tells their steps, which queue again.
   */
  register(
    spec: NodeSpec,
    now: number,
    options: { runningLeases?: readonly string[]; deadLeases?: readonly string[] } = {},
  ): Registration {
    const kill = this.unknownLeases(spec.id, options.runningLeases ?? []);
    const effects: Effect[] = [];
    for (const leaseId of options.deadLeases ?? []) {
      const lease = this.data.leases.find((l) => l.leaseId === leaseId && l.nodeId === spec.id);
      if (!lease) continue;
      this.release(lease.requestId, { requeue: true });
      effects.push({
        kind: 'revoke',
        lease,
        reason: 'NodeRestarted',
        message: `the agent of node ${spec.id} restarted; what lease ${lease.leaseId} ran died with its earlier life`,
      });
    }
    const status = this.registerNode(spec, now);
    return { status, kill, effects, nodeLostAfterMs: this.nodeReport(spec.id, now).nodeLostAfterMs };
  }

  /** Adds a node or replaces its inventory; leases already on it are kept. */
  registerNode(spec: NodeSpec, now: number): 'registered' | 'updated' {
    const existing = this.data.nodes.find((n) => n.spec.id === spec.id);
    if (existing) {
      existing.spec = spec;
      // A drain is an operator's decision: it outlives restarts of the agent.
      if (existing.status !== 'Draining') existing.status = 'Ready';
      existing.registeredAt = now;
      existing.lastSeenAt = now;
      delete existing.lostAt;
      return 'updated';
    }
    this.data.nodes.push({ spec, status: 'Ready', registeredAt: now, lastSeenAt: now });
    const template = spec.labels[TEMPLATE_LABEL];
    if (template !== undefined && this.data.scaling?.pending[template]) this.data.scaling.pending[template]--;
    this.data.nodes.sort((a, b) => (a.spec.id < b.spec.id ? -1 : a.spec.id > b.spec.id ? 1 : 0));
    return 'registered';
  }

  /** Queues a request, or reports where an earlier acquire with the same id stands. */
  acquire(input: AcquireInput, now: number): AcquireOutcome {
    const outcome = this.enqueue(input, now);
    if (outcome.status !== 'queued') return outcome;
    return this.lookup(input.requestId) ?? { status: 'released' };
  }

  /**
   * As `acquire`, without working out the queue position of a request it queues (one pass over
   * the queue): for callers that do not report it.
   */
  enqueue(input: AcquireInput, now: number): AcquireOutcome | { status: 'queued' } {
    const known = this.lookup(input.requestId);
    if (known) return known;
    const team = input.team ?? 'default';
    const teams = this.teams;
    if (teams.length > 0 && team !== 'default' && !teams.some((t) => t.name === team)) {
      // With quotas in force, a team the pool does not know is a typo, not a new tenant.
      const rejection: Rejection = {
        requestId: input.requestId,
        owner: input.owner,
        reason: 'UnknownTeam',
        message:
          `team ${JSON.stringify(team)} is not known to pool ${this.data.name}; known teams: ` +
          `${teams.map((t) => t.name).join(', ')} (and "default"); add one with \`allot quota set ${team} --gpu N\``,
      };
      return this.reject(rejection);
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
    const waitedMs = input.owner.kind === 'workflow' ? this.takeCarriedWait(input.owner.workflowId) : 0;
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
    };
    this.data.queue.push(pending);
    this.queueById.set(pending.requestId, pending);
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
    for (const id of shed) this.queueById.delete(id);
    return newest.map((r) => {
      const rejection: Rejection = { requestId: r.requestId, owner: r.owner, reason: 'QueueFull', message: why };
      this.reject(rejection);
      return rejection;
    });
  }

  private reject(rejection: Rejection): AcquireOutcome {
    this.rejected.set(rejection.requestId, rejection);
    this.remember(rejection.requestId);
    return { status: 'rejected', reason: rejection.reason, message: rejection.message };
  }

  /** The rejection recorded for a request in this run, if any. */
  rejectionOf(requestId: string): Rejection | undefined {
    return this.rejected.get(requestId);
  }

  /** Where a request stands now, or `undefined` if the pool has never seen it. */
  lookup(requestId: string): AcquireOutcome | undefined {
    const lease = this.data.leases.find((l) => l.requestId === requestId);
    if (lease) return { status: 'granted', lease };
    const rejection = this.rejected.get(requestId);
    if (rejection) return { status: 'rejected', reason: rejection.reason, message: rejection.message };
    if (this.releasedSet.has(hash53(requestId))) return { status: 'released' };
    const pending = this.queueById.get(requestId);
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
   * Gives back what a request holds, or withdraws it from the queue. Returns the released lease,
   * if there was one. Releasing twice is a no-op. With `requeue` (the step queues again), or for
   * a lease that was preempted, the step's waiting so far carries into its next attempt.
   */
  release(requestId: string, options: { requeue?: boolean } = {}): Lease | undefined {
    const queued = this.queueById.has(requestId) ? this.data.queue.findIndex((r) => r.requestId === requestId) : -1;
    const request = queued >= 0 ? this.data.queue.splice(queued, 1)[0] : undefined;
    this.queueById.delete(requestId);
    const held = this.data.leases.findIndex((l) => l.requestId === requestId);
    const lease = held >= 0 ? this.data.leases.splice(held, 1)[0] : undefined;
    if (request || lease) this.remember(requestId);
    if (lease && lease.owner.kind === 'workflow' && (options.requeue || lease.preemptedAt !== undefined)) {
      this.carryWait(lease.owner.workflowId, lease.waitedMs ?? 0);
    }
    return lease;
  }

  /**
   * A release signal: as `release`, and when it withdraws a request from the queue, its owner is
   * told (a step withdraws its own request only as it ends; anyone else's withdrawal must not
   * leave it waiting for a grant that never comes). With `stopped` (an agent whose launch timed
   * out says that its workload has ended), the lease's owner is told, as `WorkloadStopped`.
   */
  handleRelease(requestId: string, now: number, options: { requeue?: boolean; stopped?: boolean } = {}): Effect[] {
    const queued = this.queueById.get(requestId);
    const lease = this.release(requestId, options);
    if (lease && options.stopped && lease.owner.kind === 'workflow') {
      const message = `the workload of lease ${lease.leaseId} on node ${lease.nodeId} has stopped`;
      return [{ kind: 'revoke', lease, reason: 'WorkloadStopped', message }];
    }
    if (!queued || queued.owner.kind !== 'workflow') return [];
    this.carryWait(queued.owner.workflowId, waitedSoFar(queued, now));
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

  private carryWait(owner: string, waitedMs: number): void {
    const waits = (this.data.carriedWaits ??= []).filter((w) => w.owner !== owner);
    waits.push({ owner, waitedMs });
    if (waits.length > CARRIED_WAITS) waits.splice(0, waits.length - CARRIED_WAITS);
    this.data.carriedWaits = waits;
  }

  private takeCarriedWait(owner: string): number {
    const waits = this.data.carriedWaits;
    if (!waits || waits.length === 0) return 0;
    const at = waits.findIndex((w) => w.owner === owner);
    if (at < 0) return 0;
    const [w] = waits.splice(at, 1);
    return w?.waitedMs ?? 0;
  }

  /** Node templates in force. */
  get templates(): readonly NodeTemplate[] {
    return this.data.templates ?? [];
  }

  /** Scaling timing in force. */
  get scalingPolicy(): ScalingPolicy {
    return { ...DEFAULT_SCALING, ...this.data.scalingPolicy };
  }

  /** Replaces the node templates (and optionally the scaling timing). */
  setTemplates(templates: NodeTemplate[], scaling?: Partial<ScalingPolicy>): void {
    this.data.templates = templates;
    if (scaling) this.data.scalingPolicy = { ...this.data.scalingPolicy, ...scaling };
  }

  private get scaling(): ScalingState {
    return (this.data.scaling ??= { pending: {}, lastScaleUpAt: {}, removing: [] });
  }

  /** Unmet demand, grouped by the template or shape of node that would serve it. */
  demand(now: number): DemandGroup[] {
    return unmetDemand(this.data.queue, this.templates, now);
  }

  /** Nodes per template: existing, pending (asked for) and being removed. */
  templateNodes(): {
    name: string;
    shape: string;
    max: number;
    nodes: string[];
    pending: number;
    removing: string[];
  }[] {
    return this.templates.map((t) => ({
      name: t.name,
      shape: describeTemplate(t),
      max: t.max,
      nodes: this.data.nodes.filter((n) => n.spec.labels[TEMPLATE_LABEL] === t.name).map((n) => n.spec.id),
      pending: this.scaling.pending[t.name] ?? 0,
      removing: this.scaling.removing.filter(
        (id) => this.data.nodes.find((n) => n.spec.id === id)?.spec.labels[TEMPLATE_LABEL] === t.name,
      ),
    }));
  }

  /**
   * Decides what to scale now and records it as under way: nodes asked for count as pending,
   * nodes to remove are drained. The caller runs the scaler and reports back with `scaled`.
   */
  planScaling(now: number): ScalingAction[] {
    if (this.templates.length === 0) return [];
    if (this.scalingExpires) this.expireScaling(now);
    const idleSince = (this.data.idleSince ??= {});
    const busy = new Set(this.data.leases.map((l) => l.nodeId));
    for (const n of this.data.nodes)
      if (busy.has(n.spec.id) || idleSince[n.spec.id] === undefined) idleSince[n.spec.id] = now;
    const actions = planScaling({
      nodes: this.data.nodes,
      leases: this.data.leases,
      queue: this.data.queue,
      templates: this.templates,
      state: this.scaling,
      policy: this.scalingPolicy,
      idleSince,
      now,
    });
    for (const a of actions) {
      if (a.kind === 'up') {
        this.scaling.pending[a.template] = (this.scaling.pending[a.template] ?? 0) + a.count;
        this.scaling.lastScaleUpAt[a.template] = now;
      } else {
        this.scaling.removing.push(a.nodeId);
        if (this.scalingExpires) (this.scaling.removingSince ??= {})[a.nodeId] = now;
        this.setDraining(a.nodeId, true);
      }
    }
    return actions;
  }

  /**
   * Stops waiting for scaling that took longer than `SCALING_TIMEOUT_MS`: nodes asked for that
   * never registered stop counting as pending (so the template can scale again), and a node whose
   * removal was never reported is undrained (a removed node then goes silent and is lost).
   */
  private expireScaling(now: number): void {
    const s = this.scaling;
    for (const [template, count] of Object.entries(s.pending)) {
      const asked = s.lastScaleUpAt[template];
      if (count > 0 && asked !== undefined && now - asked >= SCALING_TIMEOUT_MS) s.pending[template] = 0;
    }
    const since = (s.removingSince ??= {});
    for (const id of s.removing) since[id] ??= now;
    for (const id of s.removing.filter((id) => now - (since[id] ?? now) >= SCALING_TIMEOUT_MS)) {
      s.removing = s.removing.filter((x) => x !== id);
      this.setDraining(id, false);
    }
    for (const id of Object.keys(since)) if (!s.removing.includes(id)) delete since[id];
  }

  /** Waits for scaling outcomes however long they take, as pools did before `expireScaling`. */
  neverExpireScaling(): void {
    this.scalingExpires = false;
  }

  /** Records the end of a scaling action: a removed node leaves the pool; a failed one is undone. */
  scaled(action: ScalingAction, ok: boolean): void {
    const s = this.scaling;
    if (action.kind === 'up') {
      if (!ok) s.pending[action.template] = Math.max(0, (s.pending[action.template] ?? 0) - action.count);
      return;
    }
    s.removing = s.removing.filter((id) => id !== action.nodeId);
    if (s.removingSince) delete s.removingSince[action.nodeId];
    if (ok && !this.data.leases.some((l) => l.nodeId === action.nodeId)) {
      this.data.nodes = this.data.nodes.filter((n) => n.spec.id !== action.nodeId);
      if (this.data.idleSince) delete this.data.idleSince[action.nodeId];
    } else this.setDraining(action.nodeId, false);
  }

  /** Team quotas in force. */
  get teams(): readonly TeamQuota[] {
    return this.data.teams ?? [];
  }

  /** Sets (or replaces) one team's quota. */
  setTeamQuota(quota: TeamQuota): void {
    const teams = (this.data.teams ?? []).filter((t) => t.name !== quota.name);
    teams.push(quota);
    teams.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.data.teams = teams;
  }

  /** Removes a team's quota; returns whether it had one. */
  removeTeamQuota(name: string): boolean {
    const before = this.data.teams?.length ?? 0;
    this.data.teams = (this.data.teams ?? []).filter((t) => t.name !== name);
    return this.data.teams.length < before;
  }

  /** What each team uses now, as resource vectors. */
  teamUsage(): Record<string, ResourceVector> {
    // No prototype: a team may be named `constructor`.
    const usage = Object.create(null) as Record<string, ResourceVector>;
    for (const lease of this.data.leases) {
      const u = (usage[lease.team] ??= Object.create(null) as ResourceVector);
      for (const [k, v] of Object.entries(leaseVector(lease))) u[k] = (u[k] ?? 0) + v;
    }
    return usage;
  }

  /** The scheduling policy in force. */
  get policy(): SchedulingPolicy {
    return { ...DEFAULT_POLICY, ...this.data.policy };
  }

  /** Changes the scheduling policy; the next cycle uses it. */
  setPolicy(policy: Partial<SchedulingPolicy>): void {
    this.data.policy = { ...this.data.policy, ...policy };
  }

  /** Lease and node-health timing in force. */
  get health(): HealthPolicy {
    return { ...DEFAULT_HEALTH, ...this.data.health };
  }

  /**
   * Timing the health checks use at `now`: the policy's, except that a lowered node-lost time
   * takes effect only once the old one has passed since the change. Agents learn the new one
   * meanwhile, and stop cut-off workloads within it.
   */
  private healthAt(now: number): HealthPolicy {
    const health = this.health;
    const previous = this.data.previousNodeLost;
    // Read-only: queries call it (the old value is dropped by `checkHealth` once it has passed).
    if (!previous || now >= previous.until) return health;
    return { ...health, nodeLostAfterMs: Math.max(health.nodeLostAfterMs, previous.nodeLostAfterMs) };
  }

  /**
   * Changes lease and node-health timing. Later grants get the new TTL; leases granted before
   * keep theirs (their steps renew at a third of it). A shorter node-lost time counts from when
   * the old one has passed.
   */
  setHealth(policy: Partial<HealthPolicy>, now?: number): void {
    const before = now !== undefined ? this.healthAt(now).nodeLostAfterMs : this.health.nodeLostAfterMs;
    this.data.health = { ...this.data.health, ...policy };
    if (now !== undefined && this.health.nodeLostAfterMs < before) {
      this.data.previousNodeLost = { nodeLostAfterMs: before, until: now + before };
    }
  }

  /** Extends a lease by its own TTL. Returns the lease, or `undefined` if the pool no longer holds it. */
  renew(requestId: string, now: number): Lease | undefined {
    const lease = this.data.leases.find((l) => l.requestId === requestId);
    if (lease) lease.expiresAt = now + (lease.ttlMs ?? this.health.leaseTtlMs);
    return lease;
  }

  /**
   * The pool did not run for `ms` (its timer fired that late: the server was down, or its clock
   * jumped). Silence and deadlines are counted from when it runs again: no node is declared lost,
   * and no lease taken back, for time in which nobody could have reached it, nor before
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
   * Records that a node's agent is alive; a NotReady node becomes Ready again. Unknown nodes are
   * ignored, and so are lost ones: they must register again (see `register`).
   */
  heartbeat(nodeId: string, now: number): boolean {
    const node = this.data.nodes.find((n) => n.spec.id === nodeId);
    if (!node || node.lostAt !== undefined) return false;
    node.lastSeenAt = now;
    if (node.status === 'NotReady') {
      node.status = 'Ready';
      return true;
    }
    return false;
  }

  /**
   * Drains a node (no new grants; running leases finish) or makes it schedulable again. Returns
   * the node's status, or `undefined` for an unknown node.
   */
  setDraining(nodeId: string, drain: boolean): string | undefined {
    const node = this.data.nodes.find((n) => n.spec.id === nodeId);
    if (!node) return undefined;
    if (drain) node.status = 'Draining';
    else if (node.status === 'Draining') node.status = 'Ready';
    return node.status;
  }

  /** Marks a Ready node NotReady (its agent said it is stopping); a drained node stays drained. */
  markNotReady(nodeId: string): void {
    const node = this.data.nodes.find((n) => n.spec.id === nodeId);
    if (node?.status === 'Ready') node.status = 'NotReady';
  }

  /** Of the leases an agent says it runs, those the pool does not hold on that node (to be killed). */
  unknownLeases(nodeId: string, running: readonly string[]): string[] {
    const held = new Set(this.data.leases.filter((l) => l.nodeId === nodeId).map((l) => l.leaseId));
    return running.filter((id) => !held.has(id));
  }

  /**
   * Expires leases, takes back preempted leases whose grace period has passed, and marks silent
   * nodes; returns the revocations to tell owners about.
   */
  checkHealth(now: number): Effect[] {
    const health = this.healthAt(now);
    if (this.data.previousNodeLost && now >= this.data.previousNodeLost.until) delete this.data.previousNodeLost;
    const grace = this.policy.gracePeriodMs;
    const changes = checkHealth(this.data.nodes, this.data.leases, health, now, grace);
    return changes.revoke.map(({ lease, reason }) => {
      this.release(lease.requestId, { requeue: true });
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
    const health = now !== undefined ? this.healthAt(now) : this.health;
    const next = nextHealthDeadline(this.data.nodes, this.data.leases, health, this.policy.gracePeriodMs);
    const until = this.data.previousNodeLost?.until;
    return until !== undefined && next !== undefined ? Math.min(next, until) : next;
  }

  /** What the node's agent needs to know of its node (the `node` query). */
  nodeReport(nodeId: string, now: number): NodeReport {
    const node = this.data.nodes.find((n) => n.spec.id === nodeId);
    return {
      known: node !== undefined,
      lost: node?.lostAt !== undefined,
      ...(node ? { status: node.status } : {}),
      nodeLostAfterMs: Math.min(this.health.nodeLostAfterMs, this.healthAt(now).nodeLostAfterMs),
      leases: this.data.leases
        .filter((l) => l.nodeId === nodeId)
        .map((l) => ({ leaseId: l.leaseId, requestId: l.requestId, owner: l.owner })),
    };
  }

  /** Runs one scheduling cycle, applies its grants and rejections, and returns what to tell owners. */
  schedule(now: number): Effect[] {
    const decisions = decide(this.data, {
      now,
      policy: this.data.policy,
    });
    const effects: Effect[] = [];
    for (const g of decisions.grants) {
      const request = this.queueById.get(g.requestId);
      if (!request) continue;
      const lease: Lease = {
        leaseId: `${this.data.name}-${++this.data.leaseCounter}`,
        requestId: request.requestId,
        owner: request.owner,
        nodeId: g.nodeId,
        cpuMilli: request.resources.cpuMilli,
        memoryMiB: request.resources.memoryMiB,
        gpus: g.gpus,
        priority: request.priority,
        team: request.team,
        label: request.label,
        submittedAt: request.submittedAt,
        grantedAt: now,
        expiresAt: now + this.health.leaseTtlMs,
        ttlMs: this.health.leaseTtlMs,
        fenceMs: this.health.nodeLostAfterMs,
        waitedMs: waitedSoFar(request, now),
        gracePeriodMs: Math.min(this.policy.gracePeriodMs, request.gracePeriodMs ?? Infinity),
        ...(request.resources.custom ? { custom: { ...request.resources.custom } } : {}),
        ...(request.preemptible !== undefined ? { preemptible: request.preemptible } : {}),
        ...(request.timeLimitMs !== undefined ? { timeLimitMs: request.timeLimitMs } : {}),
      };
      this.data.leases.push(lease);
      effects.push({ kind: 'grant', lease });
    }
    for (const p of decisions.preemptions) {
      const preemptor = this.queueById.get(p.preemptor);
      if (preemptor) preemptor.preempting ??= now;
      for (const leaseId of p.leaseIds) {
        const lease = this.data.leases.find((l) => l.leaseId === leaseId);
        if (!lease || lease.preemptedAt !== undefined) continue;
        if (preemptor) {
          const key = leaseOwnerKey(lease);
          const evicted = (preemptor.evicted ??= []);
          if (!evicted.includes(key) && evicted.length < MAX_EVICTED_PER_REQUEST) evicted.push(key);
        }
        lease.preemptedAt = now;
        lease.preemptedFor = p.preemptor;
        effects.push({ kind: 'preempt', lease, message: p.message, preemptor: p.preemptor });
      }
    }
    for (const r of decisions.rejections) {
      const request = this.queueById.get(r.requestId);
      if (!request) continue;
      const rejection: Rejection = {
        requestId: r.requestId,
        owner: request.owner,
        reason: r.reason,
        message: r.message,
      };
      this.rejected.set(r.requestId, rejection);
      effects.push({ kind: 'reject', rejection });
    }
    for (const w of decisions.waiting) {
      const request = this.queueById.get(w.requestId);
      if (request) {
        request.reason = w.reason;
        request.message = w.message;
        // One that went first for its victims' room and found none waits in its own place again.
        if (request.preempting !== undefined && w.reason !== 'Preempting') delete request.preempting;
      }
    }
    const gone = new Set([
      ...decisions.grants.map((g) => g.requestId),
      ...decisions.rejections.map((r) => r.requestId),
    ]);
    if (gone.size > 0) this.data.queue = this.data.queue.filter((r) => !gone.has(r.requestId));
    for (const id of gone) this.queueById.delete(id);
    for (const r of decisions.rejections) this.remember(r.requestId);
    return effects;
  }

  /**
   * A readable picture of the pool for `allot status`: every node and lease, and the first
   * `queueLimit` queued requests in order (a query's answer must stay within Temporal's 2 MiB).
   */
  status(now: number, queueLimit = STATUS_QUEUE_LIMIT): PoolStatus {
    const usage = usageByNode(this.data.leases);
    const byTeam = new Map<string, { team: string; count: number; gpuMilli: number }>();
    for (const r of this.data.queue) {
      const t = byTeam.get(r.team) ?? { team: r.team, count: 0, gpuMilli: 0 };
      t.count++;
      t.gpuMilli += r.resources.gpuMilli * (r.replicas ?? 1);
      byTeam.set(r.team, t);
    }
    return {
      pool: this.data.name,
      nodes: this.data.nodes.map((n) => {
        const u = usage.get(n.spec.id);
        const leases = this.data.leases.filter((l) => l.nodeId === n.spec.id);
        return {
          id: n.spec.id,
          status: n.status,
          labels: n.spec.labels,
          cpu: { capacityMilli: n.spec.cpuMilli, usedMilli: u?.cpuMilli ?? 0 },
          memory: { capacityMiB: n.spec.memoryMiB, usedMiB: u?.memoryMiB ?? 0 },
          gpus: n.spec.gpus.map((d) => ({
            index: d.index,
            model: d.model,
            memoryMiB: d.memoryMiB,
            used: (u?.gpuMilli[d.index] ?? 0) / 1000,
            holders: leases
              .filter((l) => l.gpus.some((g) => g.index === d.index))
              .map((l) => ({ leaseId: l.leaseId, label: l.label })),
          })),
        };
      }),
      leases: this.data.leases.map((l) => ({ ...l, heldMs: now - l.grantedAt })),
      queued: this.data.queue.length,
      queuedByTeam: [...byTeam.values()].sort((a, b) => a.team.localeCompare(b.team)),
      queue: orderQueue(this.data.queue)
        .slice(0, queueLimit)
        .map((r, i) => ({
          position: i + 1,
          requestId: r.requestId,
          label: r.label,
          team: r.team,
          priority: r.priority,
          resources: r.resources,
          reason: r.reason,
          message: r.message,
          waitedMs: now - r.submittedAt,
        })),
    };
  }

  private remember(requestId: string): void {
    const key = hash53(requestId);
    if (this.releasedSet.has(key)) return;
    const keys = (this.data.releasedKeys ??= []);
    this.releasedSet.add(key);
    keys.push(key);
    if (keys.length > RELEASED_MEMORY + RELEASED_MEMORY / 10) {
      // Forget the oldest in a batch: one shift per release would copy the whole list each time.
      for (const old of keys.splice(0, keys.length - RELEASED_MEMORY)) this.releasedSet.delete(old);
    }
  }
}

/** The answer of the pool's `status` query. */
export interface PoolStatus {
  pool: string;
  nodes: {
    id: string;
    status: string;
    labels: Record<string, string>;
    cpu: { capacityMilli: number; usedMilli: number };
    memory: { capacityMiB: number; usedMiB: number };
    gpus: {
      index: number;
      model: string;
      memoryMiB: number;
      /** Share in use, 0 to 1. */
      used: number;
      holders: { leaseId: string; label: string }[];
    }[];
  }[];
  leases: (Lease & { heldMs: number })[];
  /** Requests queued in all; `queue` lists the first of them. */
  queued: number;
  /** Queued requests and the GPUs they ask for (milli-GPU, all replicas), per team. */
  queuedByTeam: { team: string; count: number; gpuMilli: number }[];
  /** The first queued requests in order, at most the query's `queueLimit`. */
  queue: {
    position: number;
    requestId: string;
    label: string;
    team: string;
    priority: number;
    resources: ResourceRequest;
    reason: Reason;
    message: string;
    waitedMs: number;
  }[];
}

/** Checks a node inventory sent by an agent; returns every problem. */
export function validateNodeSpec(spec: unknown): Issue[] {
  const issues: Issue[] = [];
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    return [{ code: 'invalid_type', path: [], message: 'node inventory must be an object' }];
  }
  const s = spec as Partial<NodeSpec>;
  if (typeof s.id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(s.id)) {
    issues.push({
      code: 'invalid_node_id',
      path: ['id'],
      message: `must be 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit, got ${JSON.stringify(s.id)}`,
    });
  }
  for (const field of ['cpuMilli', 'memoryMiB'] as const) {
    const v = s[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      issues.push({
        code: 'invalid_quantity',
        path: [field],
        message: `must be a non-negative integer, got ${JSON.stringify(v)}`,
      });
    }
  }
  if (!Array.isArray(s.gpus)) {
    issues.push({ code: 'invalid_type', path: ['gpus'], message: 'must be an array of GPU devices' });
  } else {
    const seen = new Set<number>();
    s.gpus.forEach((g: Partial<NodeSpec['gpus'][number]>, i) => {
      if (typeof g !== 'object' || g === null || Array.isArray(g)) {
        issues.push({
          code: 'invalid_type',
          path: ['gpus', i],
          message: `must be a GPU device { index, model, memoryMiB }, got ${describeValue(g)}`,
        });
        return;
      }
      if (typeof g.index !== 'number' || !Number.isSafeInteger(g.index) || g.index < 0 || seen.has(g.index)) {
        issues.push({
          code: 'invalid_gpu_index',
          path: ['gpus', i, 'index'],
          message: `must be a unique non-negative integer, got ${JSON.stringify(g.index)}`,
        });
      } else seen.add(g.index);
      if (typeof g.model !== 'string' || g.model === '') {
        issues.push({
          code: 'invalid_type',
          path: ['gpus', i, 'model'],
          message: `must be a non-empty string, got ${JSON.stringify(g.model)}`,
        });
      }
      if (typeof g.memoryMiB !== 'number' || !Number.isSafeInteger(g.memoryMiB) || g.memoryMiB < 0) {
        issues.push({
          code: 'invalid_quantity',
          path: ['gpus', i, 'memoryMiB'],
          message: `must be a non-negative integer, got ${JSON.stringify(g.memoryMiB)}`,
        });
      }
    });
  }
  if (
    typeof s.labels !== 'object' ||
    s.labels === null ||
    Array.isArray(s.labels) ||
    Object.values(s.labels).some((v) => typeof v !== 'string')
  ) {
    issues.push({ code: 'invalid_type', path: ['labels'], message: 'must be an object of string values' });
  }
  // Custom amounts are added and compared: a string here would grant without limit.
  if (s.custom !== undefined) parseCustom(s.custom, ['custom'], issues);
  return issues;
}

/** Longest request id, owner name, team and label an acquire may carry, characters. */
export const MAX_NAME_LENGTH = 512;

/** Longest grace period a request may ask for, ms (one day); the pool's policy bounds it further. */
export const MAX_GRACE_PERIOD_MS = 86_400_000;

/**
 * Checks an acquire that arrived from outside (an Update, or a signal sent without allot's
 * client); returns every problem. Nothing it lets through can corrupt the pool: priorities stay
 * in their range, times are real times, and a request asks for something.
 */
export function validateAcquireInput(value: unknown): Issue[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [{ code: 'invalid_type', path: [], message: `acquire must be an object, got ${describeValue(value)}` }];
  }
  const a = value as Partial<AcquireInput>;
  const issues: Issue[] = [];
  if (typeof a.requestId !== 'string' || a.requestId === '' || a.requestId.length > MAX_NAME_LENGTH) {
    issues.push({
      code: 'invalid_type',
      path: ['requestId'],
      message: `must be a non-empty string of at most ${MAX_NAME_LENGTH} characters, got ${describeValue(a.requestId)}`,
    });
  }
  const o = a.owner as Partial<{ kind: string; workflowId: string; name: string }> | undefined;
  const ownerOk =
    typeof o === 'object' &&
    o !== null &&
    ((o.kind === 'workflow' && typeof o.workflowId === 'string' && o.workflowId !== '') ||
      (o.kind === 'client' && typeof o.name === 'string')) &&
    (o.workflowId ?? o.name ?? '').length <= MAX_NAME_LENGTH;
  if (!ownerOk) {
    issues.push({
      code: 'invalid_owner',
      path: ['owner'],
      message: `must be { kind: "workflow", workflowId } or { kind: "client", name }, got ${describeValue(a.owner)}`,
    });
  }
  const resourceIssues = validateResourceRequest(a.resources);
  issues.push(...resourceIssues);
  if (resourceIssues.length === 0) {
    const r = a.resources as ResourceRequest;
    if (r.cpuMilli === 0 && r.memoryMiB === 0 && r.gpuMilli === 0 && Object.keys(r.custom ?? {}).length === 0) {
      issues.push({ code: 'empty_request', path: ['resources'], message: 'must ask for some cpu, memory or gpu' });
    }
  }
  if (
    a.priority !== undefined &&
    (typeof a.priority !== 'number' ||
      !Number.isSafeInteger(a.priority) ||
      a.priority < PRIORITY_MIN ||
      a.priority > PRIORITY_MAX)
  ) {
    issues.push({
      code: 'invalid_priority',
      path: ['priority'],
      message: `must be an integer from ${PRIORITY_MIN} to ${PRIORITY_MAX}, got ${describeValue(a.priority)}`,
    });
  }
  if (a.team !== undefined && (typeof a.team !== 'string' || !TEAM_NAME.test(a.team))) {
    issues.push({
      code: 'invalid_team',
      path: ['team'],
      message: `must be 1-63 letters, digits, '.', '_' or '-', got ${describeValue(a.team)}`,
    });
  }
  for (const field of ['label'] as const) {
    const v = a[field];
    if (v !== undefined && (typeof v !== 'string' || v.length > MAX_NAME_LENGTH)) {
      issues.push({
        code: 'invalid_type',
        path: [field],
        message: `must be a string of at most ${MAX_NAME_LENGTH} characters, got ${describeValue(v)}`,
      });
    }
  }
  if (a.preemptible !== undefined && typeof a.preemptible !== 'boolean') {
    issues.push({
      code: 'invalid_type',
      path: ['preemptible'],
      message: `must be true or false, got ${describeValue(a.preemptible)}`,
    });
  }
  if (
    a.timeLimitMs !== undefined &&
    (typeof a.timeLimitMs !== 'number' || !Number.isFinite(a.timeLimitMs) || a.timeLimitMs < 0)
  ) {
    issues.push({
      code: 'invalid_duration',
      path: ['timeLimitMs'],
      message: `must be a non-negative number of ms, got ${describeValue(a.timeLimitMs)}`,
    });
  }
  if (
    a.gracePeriodMs !== undefined &&
    (typeof a.gracePeriodMs !== 'number' ||
      !Number.isSafeInteger(a.gracePeriodMs) ||
      a.gracePeriodMs < 0 ||
      a.gracePeriodMs > MAX_GRACE_PERIOD_MS)
  ) {
    issues.push({
      code: 'invalid_duration',
      path: ['gracePeriodMs'],
      message: `must be a whole number of ms from 0 to ${MAX_GRACE_PERIOD_MS}, got ${describeValue(a.gracePeriodMs)}`,
    });
  }
  if (
    a.submittedAt !== undefined &&
    (typeof a.submittedAt !== 'number' || !Number.isSafeInteger(a.submittedAt) || a.submittedAt < 0)
  ) {
    issues.push({
      code: 'invalid_time',
      path: ['submittedAt'],
      message: `must be a time in ms since 1970 (a whole number, not negative), got ${describeValue(a.submittedAt)}`,
    });
  }
  return issues;
}
