/**
 * The state of one scheduling cycle, which each step of `decide()` takes and updates: the views of
 * the cluster and quotas, the placers, what the cycle has changed so far, and the line behind a
 * blocked request. Steps 1 and 2 of the cycle build it and order its queue.
 */
import type { DecideOptions, Decisions, Snapshot } from './decisions';
import { noDecisions } from './decisions';
import { FairShares, clusterCapacity, progressiveOrder, teamShares } from './fair-share';
import { FragmentationModel } from './fragmentation';
import { leaseGraceMs } from './health';
import { orderQueue, preemptorsFirst } from './ordering';
import { requestPriority } from './priority';
import { Placer } from './placer';
import type { SchedulingPolicy } from './policy';
import { DEFAULT_POLICY } from './policy';
import { LimitLedger } from './named-limits';
import type { LeaseGroup } from './preemption';
import { groupLeases } from './preemption';
import { nominalFirst } from './quota';
import type { Reason } from './reasons';
import { CycleViews } from './reservations';
import { EndTimeline } from './timeline';
import type { Lease, NodeSpec, PendingRequest } from './types';

/** The line behind the first blocked request, and the reserved start that backfill must not delay. */
export interface Line {
  /** The first request that could not start: every later one waits behind it, or backfills. */
  blockedBy: PendingRequest | undefined;
  /** Why a request waits behind `blockedBy`, in words. */
  behind: string;
  /** Requests examined for backfill so far (at most the policy's `backfillDepth`). */
  examined: number;
  /** The earliest reserved start (ms) of the blocked requests: backfill must end by then. */
  shadow: number;
  /** The blocked request whose reserved start `shadow` is. */
  shadowOwner: PendingRequest | undefined;
  /** Reserved starts by gang key, and the cycle's `changes` and `frees` they were found at. */
  readonly reservations: Map<string, { changes: number; frees: number; start: number }>;
}

/** What one cycle works on and has decided so far. */
export interface Cycle {
  readonly snapshot: Snapshot;
  readonly policy: SchedulingPolicy;
  /** Time (ms) of the cycle, if known. */
  readonly now: number | undefined;
  readonly decisions: Decisions;
  /** Every node's inventory, ready or not. */
  readonly specs: readonly NodeSpec[];
  /** Free capacity and quota usage, now and once victims stop (see `reservations.ts`). */
  readonly views: CycleViews;
  /** The expected workload, under fragmentation-aware placement. */
  readonly model: FragmentationModel | undefined;
  /** Places grants in the grant view. */
  readonly placer: Placer;
  /** Places reservations in the future view; made on first use. */
  futurePlacer: Placer | undefined;
  /** Requests whose victims are stopping: chosen in an earlier cycle or in this one. */
  readonly terminating: Set<string>;
  /** Requests with victims still stopping for them, and the nodes those victims are on. */
  readonly awaiting: ReadonlyMap<string, readonly string[]>;
  /** Whether backfill is on: the policy allows it and `now` is known. */
  readonly backfill: boolean;
  /** When running work ends, for backfill's reserved starts. */
  readonly ends: EndTimeline;
  /** Running work grouped by request; made on first use. */
  groups: LeaseGroup[] | undefined;
  /** Why a gang key can never be granted, per team (`undefined`: it can be); filled as asked. */
  readonly never: Map<string, Map<string, string | undefined>>;
  /**
   * Gang keys that found no room in the grant view since the last preemption: grants and
   * reservations only take room there, and only victims chosen give some back.
   */
  readonly noFit: Set<string>;
  /** Teams' shares, raised by each grant (progressive filling); `undefined` unless fair share is on. */
  readonly fairShares: FairShares | undefined;
  /** Units of named limits held and taken in this cycle (see `named-limits.ts`). */
  readonly limits: LimitLedger;
  /** Changes to the cluster so far: grants, reservations and preemptions. */
  changes: number;
  /** Preemptions so far, which free room in the future view. */
  frees: number;
  readonly line: Line;
}

/**
 * Step 1: each node's free capacity and each team's usage, from the leases, now and once the
 * victims already stopping are gone.
 */
export function startCycle(snapshot: Snapshot, options: DecideOptions): Cycle {
  const policy: SchedulingPolicy = { ...DEFAULT_POLICY, ...options.policy };
  const now = options.now;
  const terminating = new Set<string>();
  const awaiting = new Map<string, string[]>();
  for (const l of snapshot.leases) {
    if (l.preemptedAt === undefined) continue;
    terminating.add(l.requestId);
    if (l.preemptedFor === undefined) continue;
    const nodes = awaiting.get(l.preemptedFor);
    if (!nodes) awaiting.set(l.preemptedFor, [l.nodeId]);
    else if (!nodes.includes(l.nodeId)) nodes.push(l.nodeId);
  }
  // The views read `terminating` as it grows: victims chosen in this cycle stop too.
  const views = new CycleViews(snapshot.nodes, snapshot.leases, terminating, snapshot.teams);
  const model =
    policy.placement === 'fragmentation-aware'
      ? (options.workload ?? FragmentationModel.fromRequests(snapshot.queue.map((r) => r.resources)))
      : undefined;
  return {
    snapshot,
    policy,
    now,
    decisions: noDecisions(),
    specs: snapshot.nodes.map((n) => n.spec),
    views,
    model,
    placer: new Placer(views.grant, policy.placement, model),
    futurePlacer: undefined,
    terminating,
    awaiting,
    backfill: policy.backfill && now !== undefined,
    // The grace the pool enforces (see `health.ts`): a victim ends by then at the latest.
    ends: new EndTimeline(snapshot.leases, (l) => leaseGraceMs(l, policy.gracePeriodMs)),
    groups: undefined,
    never: new Map(),
    noFit: new Set(),
    fairShares:
      policy.fairShare && !options.fairShare?.fixed
        ? new FairShares(snapshot.leases, specs(snapshot), options.fairShare?.history, options.fairShare?.weights)
        : undefined,
    limits: new LimitLedger(snapshot.limits ?? [], snapshot.leases),
    changes: 0,
    frees: 0,
    line: {
      blockedBy: undefined,
      behind: '',
      examined: 0,
      shadow: Infinity,
      shadowOwner: undefined,
      reservations: new Map(),
    },
  };
}

/** Every node's inventory. */
function specs(snapshot: Snapshot): NodeSpec[] {
  return snapshot.nodes.map((n) => n.spec);
}

/**
 * Step 2: the queue in order (see `ordering.ts`); with quotas, what teams' own quotas cover comes
 * first (see `nominalFirst`); requests that wait for their victims' room go before all. With fair
 * share, the order is found one request at a time, as grants raise teams' shares (see
 * `progressiveOrder`).
 */
export function cycleQueue(cycle: Cycle): Iterable<PendingRequest> {
  const { snapshot, policy, views } = cycle;
  if (cycle.fairShares) {
    const byPriority = orderQueue(snapshot.queue, { now: cycle.now, agingIntervalMs: policy.agingIntervalMs });
    const preemptors = preemptorsFirst(byPriority.filter((r) => r.preempting !== undefined));
    const rest = byPriority.filter((r) => r.preempting === undefined);
    const caughtUp = priorityClasses(snapshot.queue, snapshot.leases);
    const priorityOf = (r: PendingRequest): number => caughtUp(requestPriority(r, cycle.now, policy.agingIntervalMs));
    return progressiveOrder(preemptors, rest, priorityOf, cycle.fairShares, views.futureLedger);
  }
  const byPriority = orderQueue(snapshot.queue, {
    now: cycle.now,
    agingIntervalMs: policy.agingIntervalMs,
    teamShares: policy.fairShare ? teamShares(snapshot.leases, clusterCapacity(cycle.specs)) : undefined,
  });
  return preemptorsFirst(views.nowLedger.empty ? byPriority : nominalFirst(byPriority, views.futureLedger));
}

/**
 * With fair share, aging lifts a request to the highest priority it has caught up with, of the
 * requests queued or running, and no further: among requests of that priority, teams' shares
 * decide. Otherwise a team whose backlog waited hours behind its own running work would outrank a
 * newcomer by the very waiting its own use caused. Aging still lets a request overtake higher
 * priorities (nothing starves), and decayed usage lets a team that waits regain its turn. Running
 * work counts (its own priority, as leases keep it) so that a grant, which moves a request from
 * the queue to the leases, changes no one's class: a pass right after another keeps its order.
 */
function priorityClasses(queue: readonly PendingRequest[], leases: readonly Lease[]): (aged: number) => number {
  const own = new Set([...queue.map((r) => r.priority), ...leases.map((l) => l.priority)]);
  const classes = [...own].sort((a, b) => b - a);
  // A request's own priority is among the classes and at most its aged one, so one always matches.
  return (aged) => classes.find((c) => c <= aged) ?? aged;
}

/** Records that a request keeps waiting, and why. */
export function wait(cycle: Cycle, request: PendingRequest, reason: Reason, message: string): void {
  cycle.decisions.waiting.push({ requestId: request.requestId, reason, message });
}

/** The running work, grouped by request, with priorities aged as the policy says. */
export function runningGroups(cycle: Cycle): LeaseGroup[] {
  return (cycle.groups ??= groupLeases(cycle.snapshot.leases, cycle.policy.agingIntervalMs));
}
