/**
 * A gang's copy taken back alone (its node lost or its agent restarted): the gang's named-limit
 * units move to a copy still held, and the copies on other nodes, whose replicas run until their
 * step stops them, stay held (no grace clock) until the step releases them or their own node is
 * lost: never granted to another step meanwhile.
 */
import { describe, expect, it } from 'vitest';
import { copies, grantedGang, grants, node, resources } from './gang-pool';

describe('a gang copy taken back alone', () => {
  /**
   * Named limits are held once per request, on replica 0's lease. When replica 0's copy is taken
   * back alone, the other replicas still run and still use the units: they move to a copy still
   * held, so that no other step is granted them meanwhile.
   */
  for (const how of ['NodeRestarted', 'NodeLost'] as const) {
    it(`${how} of replica 0 frees the gang's named-limit units while replica 1 still runs (limit held twice)`, () => {
      const pool = grantedGang({
        nodes: ['a', 'b', 'c'],
        setup: (p) => p.setLimit({ name: 'seat', max: 1 }),
        request: { limits: { seat: 1 } },
      });
      const r0 = copies(pool, 'gang').find((l) => (l.replica ?? 0) === 0);
      const r1 = copies(pool, 'gang').find((l) => l.replica === 1);
      if (!r0 || !r1) throw new Error('no replicas');
      expect(r0.limits).toEqual({ seat: 1 });

      let t: number;
      if (how === 'NodeRestarted') {
        t = 1_000;
        const reg = pool.register(node(r0.nodeId), t, { deadLeases: [r0.leaseId] });
        expect(reg.effects.map((e) => e.kind)).toEqual(['revoke']);
      } else {
        // Every node but replica 0's keeps heartbeating; replica 0's is lost at 20 s.
        for (t = 1_000; t <= 20_000; t += 1_000)
          for (const id of ['a', 'b', 'c']) if (id !== r0.nodeId) pool.heartbeat(id, t);
        t = 20_000;
        const revoked = pool.checkHealth(t);
        expect(revoked.some((e) => e.kind === 'revoke' && e.reason === 'NodeLost')).toBe(true);
      }
      // Replica 1 still runs (held as stopping): its step has not even been told yet.
      expect(copies(pool, 'gang').map((l) => l.leaseId)).toEqual([r1.leaseId]);

      pool.acquire(
        {
          requestId: 'other',
          owner: { kind: 'workflow', workflowId: 'other-step' },
          resources: resources({ cpu: 1, memory: '1Gi' }),
          limits: { seat: 1 },
        },
        t,
      );
      const granted = grants(pool.schedule(t)).filter((g) => g.lease.requestId === 'other');
      // The gang still holds a copy whose replica runs: its seat is not free.
      expect(granted).toEqual([]);
    });
  }

  /**
   * The copies still held are on no grace clock: when one's node is itself silent (its agent cut
   * off from Temporal), it is held as a single step's lease there would be, until the node is lost
   * (the time the agent's own fencing is built around) or the step releases it, and never granted
   * to another step while its replica may still run.
   */
  it('a copy on a silent node is held until its node is lost, not freed after the gang grace period', () => {
    const pool = grantedGang({
      health: { nodeNotReadyAfterMs: 15_000, nodeLostAfterMs: 60_000 },
      request: { gracePeriodMs: 5_000 },
    });
    const onB = copies(pool, 'gang').find((l) => l.nodeId === 'b');
    if (!onB) throw new Error('no copy on b');
    // From 0 s node a's agent is cut off (no heartbeats); its replica runs on. At 1 s node b's
    // agent restarts and names its replica dead: that copy is taken back, a's stays held.
    pool.register(node('b'), 1_000, { deadLeases: [onB.leaseId] });
    let freedAt: number | undefined;
    for (let t = 2_000; t <= 10_000; t += 1_000) {
      pool.heartbeat('b', t);
      pool.renew('gang', t); // the step keeps renewing while it waits for the silent replica
      pool.checkHealth(t);
      if (freedAt === undefined && copies(pool, 'gang').length === 0) freedAt = t;
    }
    // Node a has been silent 10 s: still Ready, not lost (60 s), its agent not yet fencing (20 s).
    expect(pool.nodes.find((n) => n.spec.id === 'a')?.status).toBe('Ready');
    for (const id of ['x', 'y']) {
      pool.acquire(
        {
          requestId: id,
          owner: { kind: 'workflow', workflowId: `${id}-step` },
          resources: resources({ gpu: 2, cpu: 8, memory: '16Gi' }),
        },
        10_000,
      );
    }
    const onA = grants(pool.schedule(10_000)).filter((g) => g.lease.nodeId === 'a');
    // The gang's replica on a may still run (its agent cannot hear of anything): a's room must
    // not be handed on before the node is lost, as it would not be for a single step's lease.
    expect({ freedAt, grantedOnA: onA.map((g) => g.lease.requestId) }).toEqual({
      freedAt: undefined,
      grantedOnA: [],
    });
  });
});
