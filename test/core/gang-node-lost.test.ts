/**
 * A gang replica's node is lost (or its agent restarts). The pool takes back that copy only: the
 * copies on live nodes, whose replicas run until their step hears of it and stops them (SIGTERM,
 * grace), stay held, so that they are never granted to another step meanwhile (the
 * agent's ledger guards only GPUs, and only for a while). They are freed when the step releases.
 */
import { describe, expect, it } from 'vitest';
import type { Effect, parseResources } from '../../src/core';
import { grantedGang, node, resources } from './gang-pool';

function gangOnTwoNodes(res: Parameters<typeof parseResources>[0]) {
  return grantedGang({ request: { resources: resources(res) } });
}

describe('a gang that loses one node', () => {
  for (const [what, res] of [
    ['GPU gang', { gpu: 2, cpu: 8, memory: '16Gi' }],
    ['CPU-only gang', { cpu: 8, memory: '16Gi' }],
  ] as const) {
    it(`${what}: the live node's copy is not handed to another step before the replica there can stop`, () => {
      const pool = gangOnTwoNodes(res);
      // Node b keeps heartbeating; node a goes silent and is lost at 20 s.
      for (let t = 1_000; t <= 20_000; t += 1_000) pool.heartbeat('b', t);
      const revoked = pool.checkHealth(20_000);
      expect(revoked.some((e) => e.kind === 'revoke' && e.reason === 'NodeLost')).toBe(true);
      // Replica 1 still runs on b: the step has not yet even been told (the revoke is only an effect).
      pool.acquire(
        { requestId: 'other', owner: { kind: 'workflow', workflowId: 'other-step' }, resources: resources(res) },
        20_000,
      );
      const granted = pool
        .schedule(20_000)
        .filter((e): e is Effect & { kind: 'grant' } => e.kind === 'grant' && e.lease.requestId === 'other');
      // Invariant 3 (a workload runs only while its lease is current) and 1 (no over-allocation on b):
      // b's resources must not be granted again while the gang's replica there is still running.
      expect(granted.map((g) => g.lease.nodeId)).not.toContain('b');
    });
  }

  it("a restarted agent's dead replica frees the live node's copy at once, while its replica still runs", () => {
    const pool = gangOnTwoNodes({ gpu: 2, cpu: 8, memory: '16Gi' });
    const aLease = pool.leases.find((l) => l.nodeId === 'a');
    if (!aLease) throw new Error('no copy on a');
    // The agent of a restarts: its replica died with it and it says so; b's replica runs on.
    const registration = pool.register(node('a'), 1_000, { deadLeases: [aLease.leaseId] });
    expect(registration.effects.map((e) => e.kind)).toEqual(['revoke']);
    pool.acquire(
      {
        requestId: 'other',
        owner: { kind: 'workflow', workflowId: 'other-step' },
        resources: resources({ gpu: 2, cpu: 8, memory: '16Gi' }),
      },
      1_000,
    );
    pool.acquire(
      {
        requestId: 'third',
        owner: { kind: 'workflow', workflowId: 'third-step' },
        resources: resources({ gpu: 2, cpu: 8, memory: '16Gi' }),
      },
      1_000,
    );
    const nodes = pool
      .schedule(1_000)
      .filter((e): e is Effect & { kind: 'grant' } => e.kind === 'grant')
      .map((g) => g.lease.nodeId);
    // b still runs the gang's replica 1 (the step has not even been told): nothing may be granted on b.
    expect(nodes).not.toContain('b');
  });
});
