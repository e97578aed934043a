/**
 * The invariants of DESIGN.md, checked after every event of a protocol simulation:
 *
 * - `over-allocation`: no node's leases hold more CPU, memory, GPU shares or GPU memory than it
 *   has, nor a whole GPU twice; no node runs workloads on more of a GPU than it has;
 * - `limit-exceeded`: no named limit is held beyond its max by leases granted since its max was
 *   last set (holders of a lowered max keep what they hold);
 * - `two-copies`: no step runs in two places at once;
 * - `leak`: no lease outlives its TTL (plus the pool's reaction time);
 * - `grace`: the pool takes a preempted lease back within the grace period it bounds;
 * - `over-eviction`: no step is evicted twice for the same waiting preemptor;
 * - `lost`: at the end, after the world has healed, every step has ended, with a reason.
 */
import type { Effect, Lease, NodeRecord } from '../../src/core';
import { agedPriority, limitBreaches, requestPriority } from '../../src/core';
import type { AgentModel, Workload, WorkloadObserver } from './agent-model';
import type { PoolModel } from './pool-model';
import type { StepModel } from './step-model';
import type { World } from './world';

/** One broken invariant. */
export interface Violation {
  invariant: string;
  message: string;
  at: number;
}

/** How long the pool may take to act on a deadline while its worker runs (task latency and timers), ms. */
const REACTION_MS = 10_000;

export class Invariants implements WorkloadObserver {
  readonly violations: Violation[] = [];
  private readonly running = new Map<string, Set<Workload>>();
  /** Per preemptor step, how often each victim step was evicted for it since it began to wait. */
  private readonly evictedFor = new Map<string, Map<string, number>>();
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
    this.world.log(
      `workload of ${w.stepId} starts on ${w.node} (lease ${w.leaseId}, GPUs ${w.gpus.map((g) => g.index).join(',') || 'none'})`,
    );
    if (set.size > 1) {
      const where = [...set].map((x) => `${x.node} (lease ${x.leaseId})`).join(' and ');
      this.fail('two-copies', `step ${w.stepId} runs on ${where} at once`);
    }
  }

  exited(w: Workload): void {
    this.running.get(w.stepId)?.delete(w);
    this.world.log(`workload of ${w.stepId} on ${w.node} exits`);
  }

  private effect(e: Effect): void {
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
    const times = (victims.get(victim) ?? 0) + 1;
    victims.set(victim, times);
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
        const grace = this.preemptedWithGrace.get(l.leaseId) ?? pool.policy.gracePeriodMs;
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

  private checkAllocation(): void {
    const pool = this.pool.state;
    // A lease holds what its step asked for: counted from the step, a lease that lost its custom amounts still counts.
    const asked = (l: Lease): Readonly<Record<string, number>> =>
      (l.owner.kind === 'workflow' ? this.steps.get(l.owner.workflowId)?.spec.custom : undefined) ?? l.custom ?? {};
    // Limit units too, from what the step asked (its steps run one replica: the lease holds them).
    const holding = pool.leases.map((l) => {
      const limits = l.owner.kind === 'workflow' ? this.steps.get(l.owner.workflowId)?.spec.limits : undefined;
      return limits ? { ...l, limits } : l;
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

function t(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
