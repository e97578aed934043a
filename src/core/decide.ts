/**
 * One scheduling cycle over a snapshot of the pool. Pure: the same snapshot and options give the
 * same decisions.
 */
import type { Ending, EndingsByNode } from './backfill';
import { reservedStart } from './backfill';
import { allocationOf } from './cluster';
import { clusterCapacity, teamShares } from './fair-share';
import type { NodeTemplate } from './capacity';
import { describeTemplate, templateFor } from './capacity';
import { unschedulableReason } from './fit';
import { intern, shapeKey } from './shape';
import { FragmentationModel } from './fragmentation';
import { orderQueue } from './ordering';
import { Placer } from './placer';
import type { Placement } from './placer';
import type { SchedulingPolicy } from './policy';
import { DEFAULT_POLICY } from './policy';
import type { LeaseGroup, PreemptionContext } from './preemption';
import { admissible, findVictims, groupLeases } from './preemption';
import { requestPriority } from './priority';
import type { TeamQuota } from './quota';
import { nominalFirst, requestVector } from './quota';
import { describeRequest, describeTime } from './describe';
import { leaseGraceMs } from './health';
import { CycleViews } from './reservations';
import type { Reason } from './reasons';
import type { GpuShare, Lease, NodeRecord, PendingRequest } from './types';

/** What the scheduler looks at. */
export interface Snapshot {
  nodes: readonly NodeRecord[];
  leases: readonly Lease[];
  queue: readonly PendingRequest[];
  /** Team quotas (one cohort); absent or empty: no quotas. */
  teams?: readonly TeamQuota[];
  /** Kinds of node that can be added; a request that fits one waits (`WaitingForCapacity`) instead of being rejected. */
  templates?: readonly NodeTemplate[];
}

/** What a cycle depends on beyond the snapshot. */
export interface DecideOptions {
  /** Time (ms) of the cycle; backfill and aging need it. @default unknown: no backfill, no aging */
  now?: number;
  /** Policy fields to change from `DEFAULT_POLICY`. */
  policy?: Partial<SchedulingPolicy>;
  /** Expected workload for fragmentation-aware placement. @default the shapes in the queue */
  workload?: FragmentationModel;
}

/** A request to grant now, and where. */
export interface GrantDecision {
  requestId: string;
  /** Node of the first (for most requests, the only) allocation. */
  nodeId: string;
  /** GPUs of the first allocation. */
  gpus: GpuShare[];
  /** Every allocation: one per replica of a gang. */
  allocations: Placement[];
}

/** A request to keep waiting (or to reject), and why. */
export interface WaitDecision {
  requestId: string;
  /** `Resources`, `Priority`, `QuotaExhausted`, `Preempting`, `WaitingForCapacity`, `NoNodes`, or `Unschedulable` for rejections. */
  reason: Reason;
  message: string;
}

/** Running work to evict so that a waiting request can start. */
export interface PreemptDecision {
  /** The victim's request id. */
  requestId: string;
  /** Every lease of the victim (a gang is evicted whole). */
  leaseIds: string[];
  /** The request that needs the room. */
  preemptor: string;
  reason: 'Preempted';
  message: string;
}

/** The outcome of one cycle. */
export interface Decisions {
  grants: GrantDecision[];
  /** Requests that no node (or quota) could ever satisfy. */
  rejections: WaitDecision[];
  waiting: WaitDecision[];
  preemptions: PreemptDecision[];
}

/**
 * Where a request object keeps its gang key. A symbol: JSON (the carried state) and structured
 * clones leave it out, and reading it is a plain property load. It is read once per queued request
 * per cycle: at 10,000 queued, a WeakMap lookup and then comparing un-interned key text in the
 * cycle's maps took a third of the cycle.
 */
const GANG_KEY = Symbol('allot.gangKey');

/** The shape of a request and its gang size: requests with equal keys place the same way. */
function gangKey(r: PendingRequest): string {
  const cached = (r as { [GANG_KEY]?: string })[GANG_KEY];
  if (cached !== undefined) return cached;
  const key = intern(`${shapeKey(r.resources)}#${r.replicas ?? 1}`);
  if (Object.isExtensible(r)) Object.defineProperty(r, GANG_KEY, { value: key });
  return key;
}

/**
 * The scheduling cycle:
 * 1. Derive each node's free capacity and each team's usage from the leases, now and once the
 *    victims already stopping are gone (see `reservations.ts`).
 * 2. Take the queue in order (see `ordering.ts`: priority aged by waiting, fair share, submit
 *    time, id), and with quotas, requests their teams' nominal quotas cover before those that
 *    would borrow (see `nominalFirst`). Requests that have evicted work for their room and wait
 *    for it go first: that room is theirs.
 * 3. Reject a request that no node could hold even when empty, or that its team's quota can never
 *    admit (`Unschedulable`).
 * 4. A request beyond its team's quota, now or once the preemptions under way are done, waits
 *    (`QuotaExhausted`) without blocking other teams; if it asks within its team's nominal quota,
 *    it may reclaim from borrowers by preemption (5), and if only victims still stopping stand in
 *    its way, it reserves what they free (5).
 * 5. Place it (every copy of a gang, or none) where nothing reserved for a preemptor ahead is
 *    taken, and count it as used. If it does not fit and nothing ahead is blocked: if it would fit
 *    once the victims already stopping are gone, it reserves that room; otherwise it looks for
 *    victims (see `preemption.ts`), and reserves the room they free. Either way it waits for them
 *    (`Preempting`), and requests after it go on: what it reserved is not theirs.
 * 6. Otherwise it blocks (`Resources`): requests after it wait (`Priority`), unless backfill lets
 *    one start that ends before every blocked request's reserved start (see `backfill.ts`).
 */
export function decide(snapshot: Snapshot, options: DecideOptions = {}): Decisions {
  const policy: SchedulingPolicy = { ...DEFAULT_POLICY, ...options.policy };
  const now = options.now;
  const decisions: Decisions = { grants: [], rejections: [], waiting: [], preemptions: [] };
  const wait = (requestId: string, reason: Reason, message: string): void => {
    decisions.waiting.push({ requestId, reason, message });
  };
  if (snapshot.queue.length === 0) return decisions;

  // 1. Free capacity and usage, in the three views of the cycle.
  const specs = snapshot.nodes.map((n) => n.spec);
  // Requests whose victims are stopping (their leases were preempted in an earlier cycle).
  const terminating = new Set<string>();
  // Requests with victims still stopping for them, and where: they choose no new ones meanwhile,
  // and reserve where those victims are (another preemptor's victims are that one's room).
  const awaiting = new Map<string, string[]>();
  for (const l of snapshot.leases) {
    if (l.preemptedAt === undefined) continue;
    terminating.add(l.requestId);
    if (l.preemptedFor === undefined) continue;
    const nodes = awaiting.get(l.preemptedFor);
    if (!nodes) awaiting.set(l.preemptedFor, [l.nodeId]);
    else if (!nodes.includes(l.nodeId)) nodes.push(l.nodeId);
  }
  const views = new CycleViews(snapshot.nodes, snapshot.leases, terminating, snapshot.teams);
  const ledger = views.nowLedger;
  const model =
    policy.placement === 'fragmentation-aware'
      ? (options.workload ?? FragmentationModel.fromRequests(snapshot.queue.map((r) => r.resources)))
      : undefined;
  const placer = new Placer(views.grant, policy.placement, model);
  let futurePlacer: Placer | undefined;
  const backfill = policy.backfill && now !== undefined;
  // The grace the pool enforces (see `health.ts`): a victim ends by then at the latest.
  const graceOf = (l: Lease): number => leaseGraceMs(l, policy.gracePeriodMs);
  // When each lease ends at the latest: its time limit, or the end of its grace period once preempted.
  const endOf = new Map<string, number>();
  const endOfLease = (l: Lease): number =>
    endOf.get(l.leaseId) ??
    (l.preemptedAt !== undefined
      ? l.preemptedAt + graceOf(l)
      : l.timeLimitMs !== undefined
        ? l.grantedAt + l.timeLimitMs
        : Infinity);
  // Each node's running work by end, ties in the order added (as `reservedStart` wants it).
  const endings: EndingsByNode = new Map();
  const added = new Map<Ending, number>();
  const byEnd = (a: Ending, b: Ending): number => a.end - b.end || (added.get(a) ?? 0) - (added.get(b) ?? 0);
  const addEnding = (nodeId: string, ending: Ending): void => {
    let list = endings.get(nodeId);
    if (!list) endings.set(nodeId, (list = []));
    added.set(ending, added.size);
    let at = list.length;
    while (at > 0 && (list[at - 1] as Ending).end > ending.end) at--;
    list.splice(at, 0, ending);
  };
  let groups: LeaseGroup[] | undefined;
  const runningGroups = (): LeaseGroup[] => (groups ??= groupLeases(snapshot.leases, policy.agingIntervalMs));

  // 2. Order; with quotas, what teams' own quotas cover comes first (see `nominalFirst`).
  const byPriority = orderQueue(snapshot.queue, {
    now,
    agingIntervalMs: policy.agingIntervalMs,
    teamShares: policy.fairShare ? teamShares(snapshot.leases, clusterCapacity(specs)) : undefined,
  });
  const ordered = preemptorsFirst(ledger.empty ? byPriority : nominalFirst(byPriority, views.futureLedger));

  // Why a shape can never be granted, per team (undefined: it can be), computed once per cycle.
  const never = new Map<string, Map<string, string | undefined>>();
  let blockedBy: PendingRequest | undefined;
  let behindOf: PendingRequest | undefined;
  let behindMessage: string | undefined;
  let shadow = Infinity;
  let shadowOwner: PendingRequest | undefined;
  let examined = 0;
  let endingsBuilt = false;
  // Changes to the cluster this cycle: grants, reservations and preemptions; `frees` counts the
  // preemptions, which free room in the future view.
  let changes = 0;
  let frees = 0;
  const reservations = new Map<string, { changes: number; frees: number; start: number }>();
  // Shapes that found no room in the grant view since the last preemption. Grants and
  // reservations only take room there; victims chosen may give some back (see `tryPreempt`).
  const noFit = new Set<string>();
  const reserve = (r: PendingRequest): void => {
    if (!backfill || now === undefined) return;
    if (!endingsBuilt) {
      endingsBuilt = true;
      for (const l of snapshot.leases) addEnding(l.nodeId, { allocation: l, end: endOfLease(l) });
    }
    // Reservations only move when this cycle changes the cluster (a grant or a preemption).
    const key = gangKey(r);
    const cached = reservations.get(key);
    // A grant only takes room, so it moves a single copy's reservation later, never earlier: one
    // already no earlier than the shadow stays so, and cannot move the shadow.
    if (shadowOwner && cached && cached.frees === frees && cached.start >= shadow && (r.replicas ?? 1) === 1) return;
    let start = cached && cached.changes === changes ? cached.start : undefined;
    if (start === undefined) {
      start = reservedStart(placer, endings, r.resources, r.replicas ?? 1, now);
      reservations.set(key, { changes, frees, start });
    }
    if (start < shadow || shadowOwner === undefined) {
      shadow = Math.min(shadow, start);
      shadowOwner = r;
    }
  };

  for (const request of ordered) {
    const replicas = request.replicas ?? 1;
    const vector = ledger.empty ? {} : requestVector(request.resources, replicas);
    const template =
      snapshot.templates && snapshot.templates.length > 0
        ? templateFor(snapshot.templates, request.resources)
        : undefined;
    if (specs.length === 0 && !snapshot.templates?.length) {
      wait(request.requestId, 'NoNodes', 'no node has registered with the pool yet; start an agent with `allot agent`');
      continue;
    }
    // 3. Never satisfiable.
    const shape = gangKey(request);
    let byTeam = never.get(shape);
    if (!byTeam) never.set(shape, (byTeam = new Map()));
    if (!byTeam.has(request.team)) {
      let why = unschedulableReason(specs, request.resources);
      if (why === undefined && replicas > 1) {
        const most = placer.copiesWhenEmpty(request.resources);
        if (most < replicas) why = `asks for ${replicas} replicas, but all nodes together hold at most ${most} at once`;
      }
      byTeam.set(request.team, why ?? ledger.neverFits(request.team, requestVector(request.resources, replicas)));
    }
    const whyNever =
      specs.length === 0 ? 'no node has registered with the pool, and no node template fits' : byTeam.get(request.team);
    if (
      whyNever !== undefined &&
      template &&
      ledger.neverFits(request.team, requestVector(request.resources, replicas)) === undefined
    ) {
      wait(
        request.requestId,
        'WaitingForCapacity',
        `no node fits it now; waiting for a new ${template.name} node (${describeTemplate(template)})`,
      );
      continue;
    }
    if (whyNever !== undefined) {
      decisions.rejections.push({ requestId: request.requestId, reason: 'Unschedulable', message: whyNever });
      continue;
    }
    // 4. Quota, now and once the preemptions under way are done.
    const short = views.quotaShortfall(request.team, vector);
    if (short) {
      // Within its nominal quota it may reclaim; short only until victims stop, it waits for them.
      if (policy.preemption && (short.withinNominal || !short.later) && !blockedBy && tryPreempt(request, vector))
        continue;
      wait(request.requestId, 'QuotaExhausted', short.message);
      continue;
    }
    // Behind a blocked request: only backfill may start it.
    if (blockedBy) {
      if (!backfill || examined >= policy.backfillDepth || now === undefined) {
        wait(request.requestId, 'Priority', behind(blockedBy));
        continue;
      }
      examined++;
      const limit = request.timeLimitMs;
      if (limit === undefined || now + limit > shadow) {
        const why =
          limit === undefined
            ? 'it has no time limit, so it cannot backfill'
            : `its time limit would end after ${shadowOwner?.label ?? 'it'} is due to start (${describeTime(shadow, now)})`;
        wait(request.requestId, 'Priority', `${behind(blockedBy)}; ${why}`);
        continue;
      }
      if (grant(request, vector)) continue;
      wait(
        request.requestId,
        'Priority',
        `${behind(blockedBy)}; too big to backfill: ${describeRequest(request)} is not free now`,
      );
      reserve(request);
      continue;
    }
    // 5. Place, or preempt.
    if (grant(request, vector)) continue;
    if (policy.preemption && tryPreempt(request, vector)) continue;
    if (request.preempting !== undefined) {
      // It went first for room that is gone (its victims' node was drained or lost): it waits in
      // its own place from the next cycle, and blocks no one ahead of that place now.
      wait(
        request.requestId,
        'Resources',
        `waiting for resources: ${describeRequest(request)} is not free on any Ready node`,
      );
      continue;
    }
    // 6. Blocked.
    blockedBy = request;
    reserve(request);
    const eta =
      backfill && shadowOwner === request && shadow !== Infinity
        ? `; due to start ${describeTime(shadow, now ?? 0)}`
        : '';
    wait(
      request.requestId,
      'Resources',
      `waiting for resources: ${describeRequest(request)} is not free on any Ready node${eta}`,
    );
  }
  return decisions;

  /** Requests whose victims were evicted for them first, the earliest first (stable), then the rest. */
  function preemptorsFirst(queue: PendingRequest[]): PendingRequest[] {
    if (!queue.some((r) => r.preempting !== undefined)) return queue;
    const first = queue.filter((r) => r.preempting !== undefined);
    first.sort((a, b) => (a.preempting ?? 0) - (b.preempting ?? 0));
    return [...first, ...queue.filter((r) => r.preempting === undefined)];
  }

  /** One copy on a node where the request's own victims stop, allocated in the future view. */
  function placeOnOwnVictims(request: PendingRequest): Placement[] | undefined {
    const nodes = awaiting.get(request.requestId);
    if (!nodes || (request.replicas ?? 1) !== 1 || !futurePlacer) return undefined;
    for (const nodeId of nodes) {
      const state = views.future.node(nodeId);
      const p = state ? futurePlacer.placeOnState(state, request.resources) : undefined;
      if (!p) continue;
      views.future.allocate(allocationOf(p.nodeId, request.resources, p.gpus));
      return [p];
    }
    return undefined;
  }

  function behind(head: PendingRequest): string {
    if (behindOf === head && behindMessage !== undefined) return behindMessage;
    behindOf = head;
    return (behindMessage = `waiting behind ${head.label} (priority ${head.priority}), which is first in line`);
  }

  function grant(request: PendingRequest, vector: Record<string, number>): boolean {
    const shape = gangKey(request);
    if (noFit.has(shape)) return false;
    const placed = placer.placeGang(request.resources, request.replicas ?? 1);
    if (!placed) {
      noFit.add(shape);
      return false;
    }
    changes++;
    const first = placed[0] as Placement;
    decisions.grants.push({
      requestId: request.requestId,
      nodeId: first.nodeId,
      gpus: first.gpus,
      allocations: placed,
    });
    views.recordGrant(
      placed.map((p) => allocationOf(p.nodeId, request.resources, p.gpus)),
      request.team,
      vector,
    );
    if (endingsBuilt && now !== undefined) {
      const end = request.timeLimitMs !== undefined ? now + request.timeLimitMs : Infinity;
      for (const p of placed)
        addEnding(p.nodeId, { allocation: allocationOf(p.nodeId, request.resources, p.gpus), end });
    }
    return true;
  }

  /**
   * Step 5's preemption, on the future view: the request reserves the room that victims already
   * stopping leave, or chooses new victims and reserves what they free. True when it now waits
   * for them.
   */
  function tryPreempt(request: PendingRequest, vector: Record<string, number>): boolean {
    const future = views.future;
    futurePlacer ??= new Placer(future, policy.placement, model);
    const priority = requestPriority(request, now, policy.agingIntervalMs);
    const ctx: PreemptionContext = {
      cluster: future,
      placer: futurePlacer,
      ledger: views.futureLedger,
      groups: runningGroups().filter((g) => !terminating.has(g.requestId)),
    };
    const quotaVector = ledger.empty ? {} : vector;
    let victims: LeaseGroup[] = [];
    if (!admissible(ctx, request, quotaVector)) {
      // Victims still stopping for it: wait for them rather than evict more (their node may only
      // be NotReady for a moment).
      if (awaiting.has(request.requestId)) {
        wait(request.requestId, 'Preempting', 'waiting for preempted work to stop');
        return true;
      }
      const found = findVictims(
        ctx,
        request,
        ledger.empty ? requestVector(request.resources, request.replicas ?? 1) : vector,
        priority,
      );
      if (!found) return false;
      victims = found;
      views.recordEviction(victims.flatMap((v) => v.leases));
    }
    // Reserve its room in the future view, where its own victims stop if it fits there; victims
    // already chosen leave enough of it.
    const placed = placeOnOwnVictims(request) ?? futurePlacer.placeGang(request.resources, request.replicas ?? 1);
    if (!placed) return false;
    views.recordReservation(
      placed.map((p) => allocationOf(p.nodeId, request.resources, p.gpus)),
      request.team,
      quotaVector,
    );
    changes++;
    if (victims.length > 0) {
      frees++;
      noFit.clear();
    }
    for (const v of victims) {
      terminating.add(v.requestId);
      const why =
        v.priority < priority
          ? `priority ${priority} > ${v.priority}`
          : `team ${request.team} reclaims its quota from ${v.team}`;
      decisions.preemptions.push({
        requestId: v.requestId,
        leaseIds: v.leases.map((l) => l.leaseId),
        preemptor: request.requestId,
        reason: 'Preempted',
        message: `preempted by ${request.label} (${why})`,
      });
      if (now !== undefined) for (const l of v.leases) endOf.set(l.leaseId, now + graceOf(l));
    }
    if (endingsBuilt && victims.length > 0) {
      for (const list of endings.values()) {
        let moved = false;
        for (const e of list) {
          const id = (e.allocation as Partial<Lease>).leaseId;
          const end = id === undefined ? undefined : endOf.get(id);
          if (end !== undefined && end !== e.end) {
            e.end = end;
            moved = true;
          }
        }
        if (moved) list.sort(byEnd);
      }
    }
    const nodesOf = new Set(placed.map((p) => p.nodeId));
    const awaited = runningGroups()
      .filter((g) => terminating.has(g.requestId) && g.leases.some((l) => nodesOf.has(l.nodeId)))
      .map((g) => g.label);
    wait(
      request.requestId,
      'Preempting',
      awaited.length > 0 ? `waiting for ${awaited.join(', ')} to stop` : 'waiting for preempted work to stop',
    );
    return true;
  }
}
