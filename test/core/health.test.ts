import { describe, expect, it } from 'vitest';
import type { NodeSpec } from '../../src/core';
import { PoolState, emptyPoolState, parseResources } from '../../src/core';

const node = (id: string, gpus = 2): NodeSpec => ({
  id,
  cpuMilli: 8000,
  memoryMiB: 32768,
  gpus: Array.from({ length: gpus }, (_, index) => ({ index, model: 'A100', memoryMiB: 81920 })),
  labels: {},
});

function poolWithLease(policy = { leaseTtlMs: 10_000, nodeNotReadyAfterMs: 5_000, nodeLostAfterMs: 20_000 }) {
  const pool = new PoolState(emptyPoolState('p'));
  pool.setHealth(policy);
  pool.registerNode(node('n1'), 0);
  const resources = parseResources({ gpu: 1 }).request;
  if (!resources) throw new Error('bad fixture');
  pool.acquire({ requestId: 'r1', owner: { kind: 'workflow', workflowId: 'w1' }, resources }, 0);
  const [grant] = pool.schedule(0);
  if (grant?.kind !== 'grant') throw new Error('expected a grant');
  return { pool, lease: grant.lease };
}

describe('lease expiry', () => {
  it('gives a grant an expiry one TTL after the grant', () => {
    const { lease } = poolWithLease();
    expect(lease.expiresAt).toBe(10_000);
  });

  it('extends the lease by a TTL on renewal', () => {
    const { pool } = poolWithLease();
    pool.heartbeat('n1', 8_000);
    expect(pool.renew('r1', 8_000)?.expiresAt).toBe(18_000);
    expect(pool.checkHealth(12_000)).toEqual([]);
  });

  it('frees a lease that was not renewed and tells its owner why', () => {
    const { pool } = poolWithLease({ leaseTtlMs: 10_000, nodeNotReadyAfterMs: 60_000, nodeLostAfterMs: 60_000 });
    const effects = pool.checkHealth(10_000);
    expect(effects).toMatchObject([{ kind: 'revoke', reason: 'LeaseExpired', lease: { requestId: 'r1' } }]);
    expect(pool.leases).toEqual([]);
  });

  it('reports renewal of an unknown lease as not held', () => {
    const { pool } = poolWithLease();
    expect(pool.renew('nope', 1_000)).toBeUndefined();
  });
});

describe('node health', () => {
  it('marks a silent node NotReady and grants nothing more on it, keeping its leases', () => {
    const { pool } = poolWithLease({ leaseTtlMs: 60_000, nodeNotReadyAfterMs: 5_000, nodeLostAfterMs: 20_000 });
    expect(pool.checkHealth(5_000)).toEqual([]);
    expect(pool.nodes[0]?.status).toBe('NotReady');
    expect(pool.leases).toHaveLength(1);
    const resources = parseResources({ gpu: 1 }).request;
    if (!resources) throw new Error('bad fixture');
    pool.acquire({ requestId: 'r2', owner: { kind: 'client', name: 'c' }, resources }, 5_000);
    expect(pool.schedule(5_000)).toEqual([]);
  });

  it('revokes the leases of a node lost for good', () => {
    const { pool } = poolWithLease({ leaseTtlMs: 60_000, nodeNotReadyAfterMs: 5_000, nodeLostAfterMs: 20_000 });
    const effects = pool.checkHealth(20_000);
    expect(effects).toMatchObject([{ kind: 'revoke', reason: 'NodeLost' }]);
    expect(pool.leases).toEqual([]);
  });

  it('makes a NotReady node Ready again when its agent is heard from', () => {
    const { pool } = poolWithLease();
    pool.checkHealth(6_000);
    expect(pool.heartbeat('n1', 6_500)).toBe(true);
    expect(pool.nodes[0]?.status).toBe('Ready');
  });

  it('plans the next check at the earliest lease expiry or node deadline', () => {
    const { pool } = poolWithLease({ leaseTtlMs: 10_000, nodeNotReadyAfterMs: 5_000, nodeLostAfterMs: 20_000 });
    expect(pool.nextHealthDeadline()).toBe(5_000);
    pool.heartbeat('n1', 4_000);
    expect(pool.nextHealthDeadline()).toBe(9_000);
  });

  it('tells a restarted agent which of its running leases the pool no longer holds', () => {
    const { pool, lease } = poolWithLease();
    expect(pool.unknownLeases('n1', [lease.leaseId, 'p-999'])).toEqual(['p-999']);
  });
});
