/**
 * What holds when a gang's copy is taken back alone (its node lost, its agent restarted, its TTL
 * passed): a gang whose step is gone is freed whole at its TTL, a preemptor is never granted a
 * held copy's room, and a single request's lease is taken back whole as before.
 */
import { describe, expect, it } from 'vitest';
import type { AcquireInput } from '../../src/core';
import { PoolState, emptyPoolState } from '../../src/core';
import { grantedGang, grants, node, resources } from './gang-pool';

function twoNodeGang(request: Partial<AcquireInput> = {}) {
  return grantedGang({
    health: { nodeNotReadyAfterMs: 15_000, nodeLostAfterMs: 60_000 },
    setup: (pool) => pool.setPolicy({ preemption: true }),
    request: { preemptible: true, ...request },
  });
}

describe('a gang copy taken back alone, and the rest', () => {
  it('a gang whose step is gone is freed whole at its TTL: one revoke per copy, nothing left', () => {
    const pool = twoNodeGang();
    for (let t = 1_000; t <= 60_000; t += 1_000) for (const n of ['a', 'b']) pool.heartbeat(n, t);
    const revokes = pool.checkHealth(60_000).filter((e) => e.kind === 'revoke');
    expect(revokes.map((e) => (e.kind === 'revoke' ? e.reason : ''))).toEqual(['LeaseExpired', 'LeaseExpired']);
    expect(pool.leases).toEqual([]);
    expect(pool.lookup('gang')).toEqual({ status: 'released' });
  });

  it('a held copy is never granted to a higher-priority preemptor before it is released', () => {
    const pool = twoNodeGang();
    const onA = pool.leases.find((l) => l.nodeId === 'a');
    if (!onA) throw new Error('no copy on a');
    pool.register(node('a'), 1_000, { deadLeases: [onA.leaseId] });
    // a is free now; b holds the gang's other copy. Two urgent full-node requests: one fits a, the other
    // only once b's copy is released.
    for (const id of ['p1', 'p2'])
      pool.acquire(
        {
          requestId: id,
          owner: { kind: 'workflow', workflowId: id },
          resources: resources({ gpu: 2, cpu: 8, memory: '16Gi' }),
          priority: 100,
        },
        1_000,
      );
    const first = grants(pool.schedule(1_000));
    expect(first.map((g) => g.lease.nodeId)).toEqual(['a']);
    expect(pool.leases.filter((l) => l.nodeId === 'b').map((l) => l.requestId)).toEqual(['gang']);
    pool.release('gang', { requeue: true });
    expect(grants(pool.schedule(2_000)).map((g) => g.lease.nodeId)).toEqual(['b']);
  });

  it('a single request: a lost node takes its lease back whole, as before', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.setHealth({ leaseTtlMs: 600_000, nodeNotReadyAfterMs: 15_000, nodeLostAfterMs: 60_000 });
    pool.registerNode(node('a'), 0);
    pool.acquire({ requestId: 's', owner: { kind: 'workflow', workflowId: 's' }, resources: resources({ gpu: 1 }) }, 0);
    expect(grants(pool.schedule(0))).toHaveLength(1);
    const revokes = pool.checkHealth(60_000);
    expect(revokes.map((e) => (e.kind === 'revoke' ? e.reason : e.kind))).toEqual(['NodeLost']);
    expect(pool.leases).toEqual([]);
    expect(pool.lookup('s')).toEqual({ status: 'released' });
  });
});
