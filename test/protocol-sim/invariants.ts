/**
 * The invariants of DESIGN.md, checked after every event of a protocol simulation:
 *
 * - `over-allocation`: no node's leases hold more CPU, memory, GPU shares or GPU memory than it
 *   has, nor a whole GPU twice; no node runs workloads on more of a GPU than it has;
 * - `limit-exceeded`: no named limit is held beyond its max by leases granted since its max was
 *   last set (holders of a lowered max keep what they hold);
 * - `two-copies`: no step runs in two places at once (a gang: only its current attempt's
 *   replicas, one copy of each rank);
 * - `stale-lease`: a workload whose lease the pool no longer holds stops within the fence window
 *   (the node-lost time), its grace period and the pool's reaction time;
 * - `partial-gang`: a gang is granted all its replicas' leases at once (spread ones on separate
 *   nodes), and launches only with all of them;
 * - `together`: once one replica's launch of a gang ends badly, the others stop within their grace
 *   period and the step's reaction time, as a preempted lease is given back (`grace`);
 * - `leak`: no lease outlives its TTL (plus the pool's reaction time);
 * - `grace`: the pool takes a preempted lease back within the grace period it bounds;
 * - `over-eviction`: no step is evicted twice for the same waiting preemptor;
 * - `lost`: at the end, after the world has healed, every step has ended, with a reason.
 */
import type { Effect, Lease, NodeRecord } from '../../src/core';
import { agedPriority, limitBreaches, requestPriority } from '../../src/core';
import type { AgentModel, Workload, WorkloadObserver } from './agent-model';
import type { PoolModel } from './pool-model';
import type { StepModel, StepObserver } from './step-model';
import type { ActivityOutcome, ActivityRecord, World } from './world';

/** One broken invariant. */
export interface Violation {
  invariant: string;
  message: string;
  at: number;
}

/** How long the pool may take to act on a deadline while its worker runs (task latency and timers), ms. */
const REACTION_MS = 10_000;

export class Invariants implements WorkloadObserver, StepObserver {
  readonly violations: Violation[] = [];
  private readonly running = new Map<string, Set<Workload>>();
  /** Per preemptor step, the attempts (request ids) of each victim step evicted for it since it began to wait. */
  private readonly evictedFor = new Map<string, Map<string, Set<string>>>();
  /** Since when (sim time) each running workload's lease has not been held by the pool. */
  private readonly notHeldSince = new Map<Workload, number>();
  /** Per gang attempt (request id), the first replica whose launch ended badly: when, and its outcome. */
  private readonly gangBroken = new Map<string, { at: number; rank: number; outcome: string }>();
  /** The longest node-lost time the pool has had: the agents' fence window. */
  private maxNodeLostMs = 0;
  /** How a victim came to be granted again while its preemptor waited, by `preemptor>victim`. */
  private readonly regrants = new Map<string, string>();
  /** Grace in force when each lease was preempted. */
  private readonly preemptedWithGrace = new Map<string, number>();
  /** Since when (sim time) the pool has run undisturbed: its worker back, or the server clock jumped. */
  undisturbedSince = 0;

  constructor(
    private readonly world: World,
    private readonly pool: PoolModel,
    private readonly steps: Map<string, StepModel>,
    private readonly agents: Map<string, AgentModel>,
  ) {
    pool.onEffect.push((e) => this.effect(e));
  }

  private fail(invariant: string, message: string): void {
    if (this.violations.some((v) => v.invariant === invariant)) return;
    this.violations.push({ invariant, message, at: this.world.now });
    this.world.log(`VIOLATION ${invariant}: ${message}`);
    this.world.stopped = true;
  }

  started(w: Workload): void {
    let set = this.running.get(w.stepId);
    if (!set) this.running.set(w.stepId, (set = new Set()));
    set.add(w);
    const rank = w.gang ? ` replica ${w.gang.rank}` : '';
    this.world.log(
      `workload of ${w.stepId}${rank} starts on ${w.node} (lease ${w.leaseId}, GPUs ${w.gpus.map((g) => g.index).join(',') || 'none'})`,
    );
    // A gang's replicas run together: of one attempt, one copy of each rank.
    const clash = [...set].filter(
      (x) => x !== w && !(w.gang && x.gang && x.requestId === w.requestId && x.gang.rank !== w.gang.rank),
    );
    if (clash.length > 0) {
      const where = [w, ...clash]
        .map((x) => `${x.node} (lease ${x.leaseId}${x.gang ? `, replica ${x.gang.rank} of ${x.requestId}` : ''})`)
        .join(' and ');
      this.fail('two-copies', `step ${w.stepId} runs on ${where} at once`);
    }
  }

  exited(w: Workload): void {
    this.running.get(w.stepId)?.delete(w);
    this.notHeldSince.delete(w);
    this.world.log(`workload of ${w.stepId}${w.gang ? ` replica ${w.gang.rank}` : ''} on ${w.node} exits`);
  }

  /** A gang launches: with a lease for every rank, of its current attempt, on separate nodes when spread. */
  gangLaunches(step: StepModel, leases: readonly Lease[]): void {
    const problem = gangProblem(
      step.spec.replicas ?? 1,
      step.spec.replicaPlacement ?? 'spread',
      step.requestId,
      leases,
    );
    if (problem) this.fail('partial-gang', `step ${step.id} launches ${step.requestId} ${problem}`);
  }

  /** A gang replica's launch ended on the server: badly (failed, cancelled, timed out, exit ≠ 0) breaks the gang. */
  activityResolved(a: ActivityRecord, outcome: ActivityOutcome): void {
    const gang = a.input.gang;
    if (!gang || this.gangBroken.has(a.input.requestId)) return;
    if (outcome.kind === 'completed' && outcome.exitCode === 0) return;
    this.gangBroken.set(a.input.requestId, { at: this.world.now, rank: gang.rank, outcome: JSON.stringify(outcome) });
  }

  private effect(e: Effect): void {
    if (e.kind === 'grant' && (e.lease.replicas ?? 1) > 1) {
      const { requestId, replicas } = e.lease;
      const leases = this.pool.state.leases.filter((l) => l.requestId === requestId);
      const step = e.lease.owner.kind === 'workflow' ? this.steps.get(e.lease.owner.workflowId) : undefined;
      const problem = gangProblem(replicas ?? 1, step?.spec.replicaPlacement ?? 'spread', requestId, leases);
      if (problem)
        this.fail('partial-gang', `the pool grants ${e.lease.leaseId} of ${e.lease.label} and holds ${problem}`);
    }
    if (e.kind === 'grant') {
      this.evictedFor.delete(e.lease.requestId);
      // A victim granted again while a preemptor that evicted it still waits: remember how.
      for (const [preemptor, victims] of this.evictedFor) {
        if (!victims.has(e.lease.label)) continue;
        const waiting = this.pool.state.queue.find((r) => r.requestId === preemptor);
        if (!waiting) continue;
        const policy = this.pool.state.policy;
        const now = this.world.serverNow;
        const lease = e.lease;
        this.regrants.set(
          `${preemptor}>${lease.label}`,
          `${lease.label} (priority ${lease.priority}, ordered as ${agedPriority(lease.priority, lease.waitedMs ?? 0, policy.agingIntervalMs)}) ` +
            `was granted ${lease.leaseId} on ${lease.nodeId} at ${t(now)} while ${waiting.label} (priority ${waiting.priority}, ` +
            `ordered as ${requestPriority(waiting, now, policy.agingIntervalMs)}) waited as ${waiting.reason}: ${waiting.message}`,
        );
      }
      return;
    }
    if (e.kind !== 'preempt') return;
    this.preemptedWithGrace.set(e.lease.leaseId, e.lease.gracePeriodMs ?? this.pool.state.policy.gracePeriodMs);
    const preemptor = e.preemptor;
    const victim = e.lease.label;
    let victims = this.evictedFor.get(preemptor);
    if (!victims) this.evictedFor.set(preemptor, (victims = new Map()));
    // A gang is evicted whole, one effect per replica's lease: one eviction of its attempt.
    let attempts = victims.get(victim);
    if (!attempts) victims.set(victim, (attempts = new Set()));
    attempts.add(e.lease.requestId);
    const times = attempts.size;
    this.world.log(`pool preempts ${victim} (lease ${e.lease.leaseId}) for ${preemptor}`);
    if (times > 1) {
      const how = this.regrants.get(`${preemptor}>${victim}`);
      this.fail(
        'over-eviction',
        `${victim} was evicted ${times} times for ${preemptor} while it waited` +
          (how ? `: ${how}` : ': it was granted again in between and had to be evicted again'),
      );
    }
  }

  /** Checks everything that must hold after any event. */
  check(): void {
    this.checkAllocation();
    const pool = this.pool.state;
    const now = this.world.serverNow;
    this.maxNodeLostMs = Math.max(this.maxNodeLostMs, pool.health.nodeLostAfterMs);
    this.checkFencing();
    this.checkTogether();
    const steady = this.world.workerUp && this.world.now - this.undisturbedSince > REACTION_MS;
    if (!steady) return;
    for (const l of pool.leases) {
      if (l.expiresAt !== undefined && now > l.expiresAt + REACTION_MS) {
        this.fail(
          'leak',
          `lease ${l.leaseId} of ${l.label} expired at ${t(l.expiresAt)} but the pool still holds it at ${t(now)}`,
        );
      }
      if (l.preemptedAt !== undefined) {
        // A gang's copy held as stopping after another copy was taken back had no preempt effect:
        // it has its own grace period, fixed at its grant, as the pool's health check reads it.
        const grace = this.preemptedWithGrace.get(l.leaseId) ?? l.gracePeriodMs ?? pool.policy.gracePeriodMs;
        if (now > l.preemptedAt + grace + REACTION_MS) {
          const step = this.steps.get(l.label);
          const why = step?.toldInGrantTask.has(l.requestId)
            ? 'its step was told in the same task as its grant, and launched anyway'
            : step
              ? `its step's own grace period is ${step.spec.graceMs}ms and its workload ${step.spec.exitAfterTermMs === Infinity ? 'ignores SIGTERM' : `exits ${step.spec.exitAfterTermMs}ms after SIGTERM`}`
              : 'its owner is unknown';
          this.fail(
            'grace',
            `lease ${l.leaseId} of ${l.label}, preempted at ${t(l.preemptedAt)} with a grace period of ${grace}ms, is still held at ${t(now)}: ${why}`,
          );
        }
      }
    }
  }

  /**
   * A workload whose lease the pool no longer holds stops within the fence window: a connected
   * agent's reconciliation (or its step's cancellation), a cut-off one's own fencing, each within
   * the node-lost time; then its grace period. Counted while the control worker runs.
   */
  private checkFencing(): void {
    const held = new Set(this.pool.state.leases.map((l) => l.leaseId));
    for (const agent of this.agents.values()) {
      for (const w of agent.workloads.values()) {
        if (w.state === 'dead') continue;
        if (held.has(w.leaseId)) {
          this.notHeldSince.delete(w);
          continue;
        }
        let since = this.notHeldSince.get(w);
        if (since === undefined) this.notHeldSince.set(w, (since = this.world.now));
        if (!this.world.workerUp) continue;
        const grace = this.world.activities.get(w.activityId)?.input.gracePeriodMs ?? 0;
        const from = Math.max(since, this.undisturbedSince);
        const bound = Math.max(this.maxNodeLostMs, 30_000) + grace + REACTION_MS;
        if (this.world.now > from + bound) {
          this.fail(
            'stale-lease',
            `the workload of ${w.stepId}${w.gang ? ` replica ${w.gang.rank}` : ''} on ${w.node} (lease ${w.leaseId}, ${w.state}) ` +
              `still runs at ${t(this.world.now)}; the pool has not held its lease since ${t(since)} (fence window ` +
              `${this.maxNodeLostMs}ms, grace ${grace}ms)`,
          );
        }
      }
    }
  }

  /**
   * Together: once a replica's launch ended badly, every other replica of that attempt stops
   * within its grace period and the step's reaction time, counted from when its agent can hear of
   * it (reachable, and the control worker up); a cut-off agent is held to `stale-lease` instead.
   */
  private checkTogether(): void {
    if (this.gangBroken.size === 0) return;
    for (const agent of this.agents.values()) {
      if (!agent.alive || !agent.connected) continue;
      for (const w of agent.workloads.values()) {
        if (w.state === 'dead' || !w.gang) continue;
        const broken = this.gangBroken.get(w.requestId);
        if (!broken || broken.rank === w.gang.rank) continue;
        const step = this.steps.get(w.stepId);
        if (step?.end === 'terminated' || !this.world.workerUp) continue;
        const grace = this.world.activities.get(w.activityId)?.input.gracePeriodMs ?? 0;
        const from = Math.max(broken.at, this.undisturbedSince, agent.reachableSince);
        if (this.world.now > from + grace + REACTION_MS) {
          this.fail(
            'together',
            `replica ${broken.rank} of ${w.stepId} (${w.requestId}) ended badly at ${t(broken.at)} (${broken.outcome}), ` +
              `and replica ${w.gang.rank} on ${w.node} (lease ${w.leaseId}, ${w.state}) still runs at ${t(this.world.now)} ` +
              `(grace ${grace}ms)`,
          );
        }
      }
    }
  }

  private checkAllocation(): void {
    const pool = this.pool.state;
    // A lease holds what its step asked for: counted from the step, a lease that lost its custom amounts still counts.
    const asked = (l: Lease): Readonly<Record<string, number>> =>
      (l.owner.kind === 'workflow' ? this.steps.get(l.owner.workflowId)?.spec.custom : undefined) ?? l.custom ?? {};
    // Limit units too, from what the step asked, once per request while any of its leases is held
    // (a gang's replicas use them until the last one stops, whichever copy the pool keeps them on).
    const counted = new Set<string>();
    const holding = pool.leases.map((l) => {
      const limits = l.owner.kind === 'workflow' ? this.steps.get(l.owner.workflowId)?.spec.limits : undefined;
      if (!limits || counted.has(l.requestId)) return { ...l, limits: undefined };
      counted.add(l.requestId);
      return { ...l, limits };
    });
    const since = this.pool.limitsLoweredAt;
    for (const m of limitBreaches(pool.limits, holding, (l) => l.grantedAt >= since)) this.fail('limit-exceeded', m);
    for (const n of pool.nodes)
      checkNode(
        n,
        pool.leases.filter((l) => l.nodeId === n.spec.id),
        (m) => this.fail('over-allocation', m),
        asked,
      );
    for (const agent of this.agents.values()) {
      const used = new Map<number, number>();
      for (const w of agent.workloads.values()) {
        if (w.state === 'dead') continue;
        for (const g of w.gpus) used.set(g.index, (used.get(g.index) ?? 0) + g.milli);
      }
      for (const [index, milli] of used) {
        if (milli > 1000)
          this.fail('over-allocation', `node ${agent.id} runs workloads on ${milli / 1000} of GPU ${index}`);
      }
    }
  }

  /** Checks, once the world has healed and had time, that every step ended. */
  checkEnd(): void {
    for (const s of this.steps.values()) {
      if (!s.started || s.closed) continue;
      const queued = this.pool.state.queue.find((r) => r.requestId === s.requestId);
      this.fail(
        'lost',
        `step ${s.id} never ended (attempt ${s.attempt}, ${s.phase}${queued ? `, queued: ${queued.reason}: ${queued.message}` : ''})`,
      );
    }
  }
}

function checkNode(
  n: NodeRecord,
  leases: readonly Lease[],
  fail: (m: string) => void,
  asked: (l: Lease) => Readonly<Record<string, number>> = (l) => l.custom ?? {},
): void {
  const cpu = leases.reduce((s, l) => s + l.cpuMilli, 0);
  const mem = leases.reduce((s, l) => s + l.memoryMiB, 0);
  if (cpu > n.spec.cpuMilli) fail(`node ${n.spec.id} has ${cpu}m CPU granted of ${n.spec.cpuMilli}m`);
  if (mem > n.spec.memoryMiB) fail(`node ${n.spec.id} has ${mem}Mi memory granted of ${n.spec.memoryMiB}Mi`);
  for (const d of n.spec.gpus) {
    const shares = leases.flatMap((l) => l.gpus.filter((g) => g.index === d.index).map((g) => ({ g, l })));
    const milli = shares.reduce((s, x) => s + x.g.milli, 0);
    if (milli > 1000 || (shares.some((x) => x.g.milli === 1000) && shares.length > 1)) {
      fail(`GPU ${d.index} of node ${n.spec.id} is granted to ${shares.map((x) => x.l.leaseId).join(', ')}`);
    }
  }
  for (const k of new Set(leases.flatMap((l) => Object.keys(asked(l))))) {
    const used = leases.reduce((s, l) => s + (asked(l)[k] ?? 0), 0);
    const cap = n.spec.custom?.[k] ?? 0;
    if (used > cap) fail(`node ${n.spec.id} has ${used} of ${k} granted of ${cap}`);
  }
}

/** What is wrong with a gang's leases (`undefined`: one for every rank, of one request, spread ones on separate nodes). */
function gangProblem(
  replicas: number,
  placement: 'spread' | 'pack',
  requestId: string,
  leases: readonly Lease[],
): string | undefined {
  const describe = (): string =>
    leases.map((l) => `${l.leaseId} (replica ${l.replica ?? '-'} of ${l.replicas ?? '-'}, ${l.nodeId})`).join(', ');
  const ranks = new Set(leases.map((l) => l.replica));
  const ok =
    leases.length === replicas &&
    leases.every((l) => l.requestId === requestId && l.replicas === replicas && l.replica !== undefined) &&
    ranks.size === replicas &&
    [...ranks].every((r) => r !== undefined && r >= 0 && r < replicas) &&
    new Set(leases.map((l) => l.leaseId)).size === replicas;
  if (!ok) return `${leases.length} of its ${replicas} replicas' leases: ${describe()}`;
  if (placement === 'spread' && new Set(leases.map((l) => l.nodeId)).size < replicas)
    return `spread replicas on shared nodes: ${describe()}`;
  return undefined;
}

function t(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
