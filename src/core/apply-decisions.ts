/**
 * Applies one scheduling cycle's decisions to the leases and queue they were made on: grants
 * become leases (one per copy of a gang, carrying every resource the request asked for, custom
 * ones included), preempted leases are marked, waiting requests learn why, and granted and
 * rejected requests leave the queue. The pool (`PoolState.schedule`) and the simulator apply
 * their cycles through it, so what the simulator reports is what a pool does.
 *
 * Pure in the core's sense: no clock, no I/O; it changes only the state it is given.
 */
import type { Decisions } from './decisions';
import { leaseOwnerKey } from './preemption';
import { waitedSoFar } from './priority';
import type { Lease, PendingRequest, Rejection } from './types';

/** Most steps a request remembers having evicted (beyond, it may evict one of them again). */
export const MAX_EVICTED_PER_REQUEST = 64;

/** The leases and queue that a cycle's decisions change. */
export interface CycleState {
  leases: Lease[];
  queue: PendingRequest[];
}

/** How the leases of a cycle's grants are named and timed. */
export interface LeaseTerms {
  /** The id of a new lease of `request`; `replica` counts the copies of a gang from 0. */
  leaseId(request: PendingRequest, replica: number): string;
  /** How long a lease lives unless renewed, ms. @default none: leases never expire */
  ttlMs?: number;
  /** How long a node's agent runs a lease while cut off from the pool, ms. @default none recorded */
  fenceMs?: number;
  /** The pool's grace period, ms; a request's own is bounded by it. @default none: the request's own, if any */
  gracePeriodMs?: number;
}

/** What applying a cycle changed, each list in the order of the decisions. */
export interface AppliedCycle {
  /** Each granted request (it has left the queue) and its new leases, one per copy. */
  granted: { request: PendingRequest; leases: Lease[] }[];
  /** Each lease newly marked preempted, and the request it is evicted for. */
  preempted: { lease: Lease; preemptor: string; message: string }[];
  /** Each rejected request (it has left the queue). */
  rejected: Rejection[];
}

/**
 * Applies `decisions`, made at `now` on `state`, to `state`. `queued` indexes `state.queue` by
 * request id when the caller keeps one (it is not updated: the caller drops the requests that
 * left); decisions about requests no longer queued are skipped.
 */
export function applyDecisions(
  state: CycleState,
  decisions: Decisions,
  now: number,
  terms: LeaseTerms,
  queued: ReadonlyMap<string, PendingRequest> = new Map(state.queue.map((r) => [r.requestId, r])),
): AppliedCycle {
  const applied: AppliedCycle = { granted: [], preempted: [], rejected: [] };
  for (const g of decisions.grants) {
    const request = queued.get(g.requestId);
    if (!request) continue;
    const leases = g.allocations.map((a, replica) => grantLease(request, a.nodeId, a.gpus, replica, now, terms));
    state.leases.push(...leases);
    applied.granted.push({ request, leases });
  }
  if (decisions.preemptions.length > 0) {
    const byId = new Map(state.leases.map((l) => [l.leaseId, l]));
    for (const p of decisions.preemptions) {
      const preemptor = queued.get(p.preemptor);
      // It goes first in later cycles: the room its victims free is its own.
      if (preemptor) preemptor.preempting ??= now;
      for (const leaseId of p.leaseIds) {
        const lease = byId.get(leaseId);
        if (!lease || lease.preemptedAt !== undefined) continue;
        if (preemptor) {
          const key = leaseOwnerKey(lease);
          const evicted = (preemptor.evicted ??= []);
          if (!evicted.includes(key) && evicted.length < MAX_EVICTED_PER_REQUEST) evicted.push(key);
        }
        lease.preemptedAt = now;
        lease.preemptedFor = p.preemptor;
        applied.preempted.push({ lease, preemptor: p.preemptor, message: p.message });
      }
    }
  }
  for (const r of decisions.rejections) {
    const request = queued.get(r.requestId);
    if (request)
      applied.rejected.push({ requestId: r.requestId, owner: request.owner, reason: r.reason, message: r.message });
  }
  for (const w of decisions.waiting) {
    const request = queued.get(w.requestId);
    if (!request) continue;
    request.reason = w.reason;
    request.message = w.message;
    // One that went first for its victims' room and found none waits in its own place again.
    if (request.preempting !== undefined && w.reason !== 'Preempting') delete request.preempting;
  }
  const gone = new Set([...decisions.grants.map((g) => g.requestId), ...decisions.rejections.map((r) => r.requestId)]);
  if (gone.size > 0) state.queue = state.queue.filter((r) => !gone.has(r.requestId));
  return applied;
}

/** The lease granting one copy of `request` on a node. */
function grantLease(
  request: PendingRequest,
  nodeId: string,
  gpus: Lease['gpus'],
  replica: number,
  now: number,
  terms: LeaseTerms,
): Lease {
  const grace =
    terms.gracePeriodMs !== undefined
      ? Math.min(terms.gracePeriodMs, request.gracePeriodMs ?? Infinity)
      : request.gracePeriodMs;
  return {
    leaseId: terms.leaseId(request, replica),
    requestId: request.requestId,
    owner: request.owner,
    nodeId,
    cpuMilli: request.resources.cpuMilli,
    memoryMiB: request.resources.memoryMiB,
    gpus,
    priority: request.priority,
    team: request.team,
    label: request.label,
    submittedAt: request.submittedAt,
    grantedAt: now,
    ...(terms.ttlMs !== undefined ? { expiresAt: now + terms.ttlMs, ttlMs: terms.ttlMs } : {}),
    ...(terms.fenceMs !== undefined ? { fenceMs: terms.fenceMs } : {}),
    waitedMs: waitedSoFar(request, now),
    ...(grace !== undefined ? { gracePeriodMs: grace } : {}),
    // Custom amounts are held like CPU and memory: the next cycle must see them taken.
    ...(request.resources.custom ? { custom: { ...request.resources.custom } } : {}),
    // Named limits are held once per request: on the first copy's lease.
    ...(request.limits && replica === 0 ? { limits: { ...request.limits } } : {}),
    ...(request.preemptible !== undefined ? { preemptible: request.preemptible } : {}),
    ...(request.timeLimitMs !== undefined ? { timeLimitMs: request.timeLimitMs } : {}),
    ...((request.replicas ?? 1) > 1 ? { replica, replicas: request.replicas } : {}),
  };
}
