/**
 * The pool keeps the promises an adversarial review broke, each driven through `PoolState` as the
 * pool workflow drives it: several reclaimers, victims already stopping, the grace period the pool
 * enforces, lost nodes, TTL changes, hand-sent input, and releases no step sent.
 */
import { describe, expect, it } from 'vitest';
import type { AcquireInput, Effect, NodeSpec } from '../../src/core';
import { PoolState, emptyPoolState, validateAcquireInput, validateHealthPolicy, validatePolicy } from '../../src/core';

const node = (id: string, gpus: number, cpu = 32): NodeSpec => ({
  id,
  cpuMilli: cpu * 1000,
  memoryMiB: 262_144,
  gpus: Array.from({ length: gpus }, (_, index) => ({ index, model: 'A100', memoryMiB: 81920 })),
  labels: {},
});

interface Ask {
  id: string;
  gpu: number;
  team?: string;
  priority?: number;
  preemptible?: boolean;
  graceMs?: number;
  submittedAt?: number;
  timeLimitMs?: number;
}

const acquire = (a: Ask, attempt = 1): AcquireInput => ({
  requestId: attempt === 1 ? `${a.id}#run` : `${a.id}#run#${attempt}`,
  owner: { kind: 'workflow', workflowId: a.id },
  resources: {
    cpuMilli: 1000,
    memoryMiB: 1024,
    gpuMilli: a.gpu * 1000,
    gpuMemoryMiB: 0,
    gpuModels: [],
    labels: {},
  },
  priority: a.priority ?? 0,
  team: a.team ?? 'default',
  label: a.id,
  ...(a.submittedAt !== undefined ? { submittedAt: a.submittedAt } : {}),
  ...(a.preemptible !== undefined ? { preemptible: a.preemptible } : {}),
  ...(a.graceMs !== undefined ? { gracePeriodMs: a.graceMs } : {}),
  ...(a.timeLimitMs !== undefined ? { timeLimitMs: a.timeLimitMs } : {}),
});

/**
 * A pool whose steps behave: a preempted step's workload stops `stopMs` after it is told, and the
 * step then releases and queues again as its next attempt, with its first submit time.
 */
class Cluster {
  readonly pool = new PoolState(emptyPoolState('p'));
  readonly evictions: { victim: string; preemptor: string; at: number }[] = [];
  readonly grants: { step: string; at: number }[] = [];
  private readonly steps = new Map<string, { ask: Ask; attempt: number }>();
  private readonly stopping: { step: string; at: number }[] = [];
  now = 0;

  constructor(
    nodes: NodeSpec[],
    private readonly stopMs = 2_000,
  ) {
    this.pool.setPolicy({ gracePeriodMs: 30_000 });
    for (const n of nodes) this.pool.registerNode(n, 0);
  }

  submit(a: Ask): void {
    this.steps.set(a.id, { ask: a, attempt: 1 });
    this.pool.enqueue(acquire({ ...a, submittedAt: a.submittedAt ?? this.now }), this.now);
  }

  /** Runs the pool to `until`, one cycle a second, with the steps doing their part. */
  runUntil(until: number): void {
    for (; this.now <= until; this.now += 1_000) {
      for (const s of this.stopping.filter((x) => x.at <= this.now)) {
        this.stopping.splice(this.stopping.indexOf(s), 1);
        const step = this.steps.get(s.step);
        if (!step) continue;
        const id = step.attempt === 1 ? `${s.step}#run` : `${s.step}#run#${step.attempt}`;
        this.pool.handleRelease(id, this.now, { requeue: true });
        step.attempt++;
        this.pool.enqueue(acquire({ ...step.ask, submittedAt: step.ask.submittedAt ?? 0 }, step.attempt), this.now);
      }
      this.beat();
      this.effects(this.pool.checkHealth(this.now));
      this.effects(this.pool.schedule(this.now));
      for (const l of this.pool.leases) this.pool.renew(l.requestId, this.now);
    }
  }

  private effects(effects: Effect[]): void {
    for (const e of effects) {
      if (e.kind === 'grant') this.grants.push({ step: e.lease.label, at: this.now });
      if (e.kind === 'preempt') {
        const preemptor = this.pool.queue.find((r) => r.requestId === e.preemptor)?.label ?? e.preemptor;
        this.evictions.push({ victim: e.lease.label, preemptor, at: this.now });
        this.stopping.push({ step: e.lease.label, at: this.now + this.stopMs });
      }
    }
  }

  /** Every node's agent is heard from. */
  beat(): void {
    for (const n of this.pool.nodes) this.pool.heartbeat(n.spec.id, this.now);
  }

  holders(): string[] {
    return this.pool.leases.map((l) => l.label).sort();
  }
}

describe('several reclaimers of one team', () => {
  it('evict exactly what they lack, once each, and all start within one stop of their arrival', () => {
    // Team b borrowed all four GPUs of team a's quota; a's three requests (1, 2 and 1 GPUs)
    // arrive a second apart and reclaim them.
    const c = new Cluster([node('n1', 4)]);
    c.pool.setTeamQuota({ name: 'a', nominal: { gpu: 4000 } });
    c.pool.setTeamQuota({ name: 'b', nominal: { gpu: 0 } });
    for (let i = 0; i < 4; i++) c.submit({ id: `b${i}`, gpu: 1, team: 'b', preemptible: true });
    c.runUntil(0);
    expect(c.holders()).toEqual(['b0', 'b1', 'b2', 'b3']);
    c.submit({ id: 'a1', gpu: 1, team: 'a' });
    c.runUntil(1_000);
    c.submit({ id: 'a2', gpu: 2, team: 'a' });
    c.runUntil(2_000);
    c.submit({ id: 'a3', gpu: 1, team: 'a' });
    c.runUntil(60_000);
    // Four GPUs, four evictions, no victim evicted twice.
    expect(c.evictions).toHaveLength(4);
    expect(new Set(c.evictions.map((e) => e.victim)).size).toBe(4);
    expect(c.holders()).toEqual(['a1', 'a2', 'a3']);
    // Each reclaimer preempts in the cycle it arrives, and starts once its victims stopped.
    const started = (step: string): number => c.grants.find((g) => g.step === step)?.at ?? Infinity;
    expect(started('a1')).toBeLessThanOrEqual(1_000 + 2_000);
    expect(started('a2')).toBeLessThanOrEqual(2_000 + 2_000);
    expect(started('a3')).toBeLessThanOrEqual(3_000 + 2_000);
    // The borrowers wait: none is granted again while team a uses its quota.
    expect(c.grants.filter((g) => g.step.startsWith('b') && g.at > 0)).toEqual([]);
  });
});

describe('victims already stopping', () => {
  it('are counted before new ones are chosen, and no victim is granted back the room it freed', () => {
    const c = new Cluster([node('n1', 4)], 20_000);
    c.pool.setPolicy({ backfill: true });
    c.submit({ id: 'low-a', gpu: 2, preemptible: true, timeLimitMs: 600_000 });
    c.submit({ id: 'low-b', gpu: 1, preemptible: true, timeLimitMs: 600_000 });
    c.submit({ id: 'low-c', gpu: 1, preemptible: true, timeLimitMs: 600_000 });
    c.runUntil(0);
    // high-1 needs two GPUs: it evicts low-a. high-2 needs three while low-a still stops: only
    // one more victim is needed with low-a's two counted.
    c.submit({ id: 'high-1', gpu: 2, priority: 5 });
    c.runUntil(1_000);
    c.submit({ id: 'high-2', gpu: 1, priority: 5 });
    c.runUntil(120_000);
    const victims = c.evictions.map((e) => e.victim).sort();
    expect(victims).toHaveLength(2);
    expect(victims[0]).toBe('low-a');
    expect(c.holders()).toEqual(['high-1', 'high-2', ['low-b', 'low-c'].find((v) => v !== victims[1])]);
    // low-a, queued again with a time limit, was never backfilled onto what it freed.
    expect(c.grants.filter((g) => g.step === 'low-a' && g.at > 0)).toEqual([]);
  });
});

describe('the grace period', () => {
  const preempted = (policyGraceMs: number, ownGraceMs: number) => {
    // A victim that never stops: its step keeps renewing.
    const c = new Cluster([node('n1', 1)], Infinity);
    c.pool.setPolicy({ gracePeriodMs: policyGraceMs });
    c.submit({ id: 'victim', gpu: 1, preemptible: true, graceMs: ownGraceMs });
    c.runUntil(0);
    c.submit({ id: 'high', gpu: 1, priority: 5 });
    const revoked: Effect[] = [];
    for (; c.now <= 200_000; c.now += 1_000) {
      c.beat();
      const effects = [...c.pool.checkHealth(c.now), ...c.pool.schedule(c.now)];
      revoked.push(...effects.filter((e) => e.kind === 'revoke'));
      for (const l of c.pool.leases) c.pool.renew(l.requestId, c.now);
    }
    return { c, revoked };
  };

  it('is enforced by the pool: a victim that keeps renewing loses its lease when the policy grace runs out', () => {
    const { c, revoked } = preempted(10_000, 120_000);
    expect(revoked).toEqual([expect.objectContaining({ kind: 'revoke', reason: 'GracePeriodExpired' })]);
    expect(c.holders()).toEqual(['high']);
    // Preempted at 1 s, taken back 10 s later, and the room granted in that cycle.
    expect(c.pool.leases[0]?.grantedAt).toBe(11_000);
  });

  it("is the step's own when it asks for a shorter one", () => {
    const { c } = preempted(30_000, 2_000);
    expect(c.pool.leases[0]).toMatchObject({ label: 'high', grantedAt: 3_000 });
  });
});

describe('a lost node', () => {
  it('ignores plain heartbeats and must register again, naming what died, to be Ready', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.setHealth({ leaseTtlMs: 60_000, nodeNotReadyAfterMs: 5_000, nodeLostAfterMs: 20_000 });
    pool.registerNode(node('n1', 1), 0);
    pool.enqueue(acquire({ id: 's', gpu: 1 }), 0);
    const [grant] = pool.schedule(0);
    expect(grant?.kind).toBe('grant');
    const revoked = pool.checkHealth(21_000);
    expect(revoked).toEqual([expect.objectContaining({ kind: 'revoke', reason: 'NodeLost' })]);
    // Its agent comes back with a heartbeat: not enough.
    expect(pool.heartbeat('n1', 22_000)).toBe(false);
    expect(pool.nodeReport('n1', 22_000)).toMatchObject({ known: true, lost: true });
    expect(pool.nodes[0]?.status).not.toBe('Ready');
    const answer = pool.register(node('n1', 1), 23_000, { runningLeases: ['p-1'], deadLeases: [] });
    // The lease it still runs was revoked: kill it.
    expect(answer.kill).toEqual(['p-1']);
    expect(pool.nodeReport('n1', 23_000)).toMatchObject({ known: true, lost: false, status: 'Ready' });
  });
});

describe('lowering the lease TTL', () => {
  it('keeps the leases granted before, which renew at a third of the TTL they were granted with', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.setHealth({ leaseTtlMs: 60_000 });
    pool.registerNode(node('n1', 1), 0);
    pool.enqueue(acquire({ id: 's', gpu: 1 }), 0);
    pool.schedule(0);
    pool.setHealth({ leaseTtlMs: 10_000 }, 1_000);
    // The step renews every 20 s, as its grant said.
    for (let t = 20_000; t <= 200_000; t += 20_000) {
      pool.heartbeat('n1', t);
      expect(pool.checkHealth(t)).toEqual([]);
      pool.renew('s#run', t);
    }
    expect(pool.leases).toHaveLength(1);
    // A new grant gets the new TTL.
    pool.enqueue(acquire({ id: 't', gpu: 0 }), 200_000);
    const [grant] = pool.schedule(200_000);
    expect(grant).toMatchObject({ kind: 'grant', lease: { ttlMs: 10_000, expiresAt: 210_000 } });
  });
});

describe('hand-sent acquires', () => {
  it.each([
    ['a priority beyond the range', { priority: 1e12 }, 'priority'],
    ['a submit time before 1970', { submittedAt: -1e15 }, 'submittedAt'],
    [
      'nothing at all',
      { resources: { cpuMilli: 0, memoryMiB: 0, gpuMilli: 0, gpuMemoryMiB: 0, gpuModels: [], labels: {} } },
      'resources',
    ],
  ])('are refused with %s', (_, patch, field) => {
    const issues = validateAcquireInput({ ...acquire({ id: 's', gpu: 1 }), ...patch });
    expect(issues.map((i) => i.path.join('.'))).toEqual([field]);
  });

  it('cannot outrank a critical step even when let in by a caller that skips validation', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.registerNode(node('n1', 1), 0);
    pool.enqueue({ ...acquire({ id: 'forged', gpu: 1 }), priority: 1e12, submittedAt: -1e15 }, 0);
    const queued = pool.queue[0];
    expect(queued?.priority).toBe(1000);
    expect(queued?.submittedAt).toBe(0);
  });
});

describe('releases and renewals a step did not send', () => {
  it('withdrawing a queued request tells its step, which would otherwise wait for ever', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.registerNode(node('n1', 1), 0);
    pool.enqueue(acquire({ id: 'holder', gpu: 1 }), 0);
    pool.schedule(0);
    pool.enqueue(acquire({ id: 'waiting', gpu: 1 }), 0);
    pool.schedule(0);
    const effects = pool.handleRelease('waiting#run', 1_000);
    expect(effects).toEqual([
      expect.objectContaining({
        kind: 'gone',
        requestId: 'waiting#run',
        reason: 'Withdrawn',
        owner: { kind: 'workflow', workflowId: 'waiting' },
      }),
    ]);
  });

  it('renewing a lease released by someone else tells the step that renews it', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.registerNode(node('n1', 1), 0);
    pool.enqueue(acquire({ id: 'holder', gpu: 1 }), 0);
    pool.schedule(0);
    pool.handleRelease('holder#run', 1_000);
    expect(pool.handleRenew({ requestId: 'holder#run', workflowId: 'holder' }, 2_000)).toEqual([
      expect.objectContaining({ kind: 'gone', reason: 'NotHeld', owner: { kind: 'workflow', workflowId: 'holder' } }),
    ]);
  });
});

/** Requests as the attack on this change sent them. */
const ask = (
  id: string,
  gpu: number,
  extra: Partial<AcquireInput> & { cpu?: number; custom?: Record<string, number>; gpuModels?: string[] } = {},
): AcquireInput => {
  const { cpu, custom, gpuModels, ...rest } = extra;
  return {
    requestId: id,
    owner: { kind: 'workflow', workflowId: `wf-${id}` },
    resources: {
      cpuMilli: (cpu ?? 1) * 1000,
      memoryMiB: 1024,
      gpuMilli: gpu * 1000,
      gpuMemoryMiB: 0,
      gpuModels: gpuModels ?? [],
      labels: {},
      ...(custom ? { custom } : {}),
    },
    ...rest,
  };
};

describe('holes found by attacking the fixes', () => {
  it('a custom resource granted in one cycle is still held in the next (licenses are not granted twice)', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.registerNode({ ...node('n1', 0), custom: { licenses: 1 } }, 0);
    pool.enqueue(ask('a', 0, { custom: { licenses: 1 } }), 0);
    pool.schedule(0);
    pool.enqueue(ask('b', 0, { custom: { licenses: 1 } }), 1);
    expect(pool.schedule(1)).toEqual([]);
    expect(pool.leases.map((l) => l.custom)).toEqual([{ licenses: 1 }]);
  });

  it('a team named like a property of every object is refused, and counting usage touches no prototype', () => {
    expect(validateAcquireInput(ask('x', 1, { team: '__proto__' })).map((i) => i.path.join('.'))).toEqual(['team']);
    const pool = new PoolState(emptyPoolState('p'));
    pool.registerNode(node('n1', 1), 0);
    pool.enqueue(ask('x', 1, { team: 'constructor' }), 0);
    pool.schedule(0);
    const usage = pool.teamUsage();
    expect(usage.constructor).toEqual({ cpu: 1000, memory: 1024, gpu: 1000 });
    expect(({} as Record<string, unknown>).gpu).toBeUndefined();
  });

  it('a preemptor whose victims’ node is drained goes back to its place and blocks no one ahead of it', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.registerNode(node('n1', 4, 16), 0);
    pool.registerNode(node('n2', 4, 16), 0);
    pool.enqueue(ask('V', 4, { priority: 0, preemptible: true }), 0);
    pool.enqueue(ask('W', 4, { priority: 100 }), 0);
    pool.schedule(0);
    pool.enqueue(ask('P', 4, { priority: 10 }), 1_000);
    pool.schedule(1_000);
    const victimNode = pool.leases.find((l) => l.requestId === 'V')?.nodeId ?? '';
    pool.setDraining(victimNode, true);
    pool.handleRelease('V', 2_000, { requeue: true });
    pool.enqueue(ask('H', 0, { priority: 50, cpu: 2 }), 3_000);
    const effects = pool.schedule(3_000);
    expect(effects.filter((e) => e.kind === 'grant').map((e) => (e.kind === 'grant' ? e.lease.requestId : ''))).toEqual(
      ['H'],
    );
    expect(pool.queue.find((r) => r.requestId === 'P')).toMatchObject({ reason: 'Resources' });
    expect(pool.queue.find((r) => r.requestId === 'P')?.preempting).toBeUndefined();
  });

  it("a team's borrowing request leaves a smaller one its quota covers ahead of other teams' borrowers", () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.setTeamQuota({ name: 'a', nominal: { gpu: 3000 } });
    pool.setTeamQuota({ name: 'b', nominal: { gpu: 5000 } });
    pool.registerNode(node('n1', 4), 0);
    pool.registerNode(node('n2', 4), 0);
    for (const id of ['b1', 'b2', 'b3', 'b4', 'b5']) pool.enqueue(ask(id, 1, { team: 'b', preemptible: true }), 0);
    pool.schedule(0);
    pool.enqueue(ask('aBig', 4, { team: 'a', priority: 5 }), 1_000);
    pool.enqueue(ask('bX', 3, { team: 'b', priority: 3 }), 1_000);
    pool.enqueue(ask('aSmall', 1, { team: 'a', priority: 0 }), 1_000);
    const effects = pool.schedule(1_000);
    expect(
      effects.map((e) => `${e.kind}:${e.kind === 'reject' ? '' : e.kind === 'gone' ? '' : e.lease.requestId}`),
    ).toEqual(['grant:aSmall']);
  });

  it('a GPU model list that prints like another is not mistaken for it (one bad acquire cannot reject a good one)', () => {
    expect(validateAcquireInput(ask('bad', 1, { gpuModels: [''] }))).not.toEqual([]);
    expect(validateAcquireInput(ask('bad', 1, { gpuModels: ['A100|H100'] }))).not.toEqual([]);
    const pool = new PoolState(emptyPoolState('p'));
    pool.registerNode(node('n1', 2), 0);
    pool.enqueue(ask('bad', 1, { gpuModels: [''], priority: 5 }), 0);
    pool.enqueue(ask('good', 1), 0);
    const effects = pool.schedule(0);
    expect(effects.find((e) => e.kind === 'grant')).toMatchObject({ lease: { requestId: 'good' } });
  });

  it('a preemptor whose victim stops on a node NotReady for a moment evicts no one else', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.setHealth({ leaseTtlMs: 60_000, nodeNotReadyAfterMs: 15_000, nodeLostAfterMs: 60_000 });
    pool.registerNode(node('n1', 1, 8), 0);
    pool.registerNode(node('n2', 1, 8), 0);
    pool.enqueue(ask('V1', 1, { preemptible: true, gracePeriodMs: 30_000 }), 0);
    pool.enqueue(ask('V2', 1, { preemptible: true, gracePeriodMs: 30_000 }), 0);
    pool.schedule(0);
    pool.enqueue(ask('P', 1, { priority: 10 }), 1_000);
    pool.schedule(1_000);
    const stopping = pool.leases.find((l) => l.preemptedAt !== undefined);
    const other = stopping?.nodeId === 'n1' ? 'n2' : 'n1';
    pool.heartbeat(other, 14_000);
    pool.checkHealth(16_000);
    expect(pool.nodes.find((n) => n.spec.id === stopping?.nodeId)?.status).toBe('NotReady');
    expect(pool.schedule(16_000).filter((e) => e.kind === 'preempt')).toEqual([]);
    expect(pool.leases.filter((l) => l.preemptedAt !== undefined).map((l) => l.requestId)).toEqual([
      stopping?.requestId,
    ]);
  });

  it('a policy change naming a property every object has is refused', () => {
    for (const key of ['toString', 'constructor', 'hasOwnProperty', '__proto__']) {
      expect(validatePolicy(JSON.parse(`{"${key}": 1}`)).map((i) => i.code)).toEqual(['unknown_field']);
    }
  });

  it('a lease TTL too short to renew within, and a node-lost time too short to fence within, are refused', () => {
    expect(validateHealthPolicy({ leaseTtlMs: 1_000 }).map((i) => i.path.join('.'))).toEqual(['leaseTtlMs']);
    expect(
      validateHealthPolicy({ nodeLostAfterMs: 15_000, nodeNotReadyAfterMs: 5_000 }).map((i) => i.path.join('.')),
    ).toEqual(['nodeLostAfterMs']);
  });

  it('asking a node what the pool knows of it changes nothing (queries are read-only)', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.registerNode(node('n1', 1), 0);
    pool.setHealth({ nodeLostAfterMs: 30_000 }, 1_000);
    const before = JSON.stringify(pool.toJSON());
    pool.nodeReport('n1', 10 * 60_000);
    expect(JSON.stringify(pool.toJSON())).toBe(before);
  });
});

describe('a preemptor whose victims’ node leaves while they stop', () => {
  it('never evicts one of them a second time when it is granted elsewhere meanwhile', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.registerNode(node('n1', 2), 0);
    pool.registerNode(node('n2', 2), 0);
    const acq = (id: string, step: string, gpu: number, priority: number, now: number): void => {
      pool.enqueue(
        { ...ask(id, gpu, { priority, preemptible: priority === 0 }), owner: { kind: 'workflow', workflowId: step } },
        now,
      );
    };
    acq('v1', 'V1', 1, 0, 0);
    acq('v2', 'V2', 1, 0, 0);
    pool.schedule(0);
    acq('w', 'W', 1, 0, 1);
    acq('x', 'X', 1, 5, 1);
    pool.schedule(1);
    acq('p', 'P', 2, 5, 2);
    const evictions: string[] = [];
    const note = (effects: Effect[]): void => {
      for (const e of effects)
        if (e.kind === 'preempt' && e.lease.owner.kind === 'workflow') evictions.push(e.lease.owner.workflowId);
    };
    note(pool.schedule(2));
    const victimsNode = pool.leases.find((l) => l.preemptedAt !== undefined)?.nodeId ?? '';
    pool.setDraining(victimsNode, true);
    pool.release('x');
    pool.release('v1', { requeue: true });
    acq('v1b', 'V1', 1, 0, 3);
    note(pool.schedule(3));
    pool.release('v2', { requeue: true });
    acq('v2b', 'V2', 1, 0, 4);
    note(pool.schedule(4));
    expect(evictions.filter((step) => step === 'V1')).toHaveLength(1);
    expect(new Set(evictions).size).toBe(evictions.length);
  });
});
