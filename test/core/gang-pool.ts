/** What the tests of a gang in a pool's state share: nodes, resources, and reading effects. */
import { expect } from 'vitest';
import type { AcquireInput, Effect, HealthPolicy, Lease, NodeSpec } from '../../src/core';
import { PoolState, emptyPoolState, parseResources } from '../../src/core';

/** A node with `gpus` A100s, 8 CPUs and 32 GiB. */
export const node = (id: string, gpus = 2): NodeSpec => ({
  id,
  cpuMilli: 8000,
  memoryMiB: 32768,
  gpus: Array.from({ length: gpus }, (_, index) => ({ index, model: 'A100', memoryMiB: 81920 })),
  labels: {},
});

/** A resource request from a step's spec. */
export function resources(r: Parameters<typeof parseResources>[0]) {
  const parsed = parseResources(r).request;
  if (!parsed) throw new Error('bad fixture');
  return parsed;
}

/** The grants among a pool's effects. */
export const grants = (effects: Effect[]) => effects.filter((e): e is Effect & { kind: 'grant' } => e.kind === 'grant');

/** The leases a request holds. */
export function copies(pool: PoolState, requestId: string): Lease[] {
  return pool.leases.filter((l) => l.requestId === requestId);
}

/** How `grantedGang` sets its pool up. */
export interface GangPoolOptions {
  /** Nodes, each with 2 GPUs. @default ['a', 'b'] */
  nodes?: string[];
  /** @default TTL 60 s, not ready after 5 s, lost after 20 s */
  health?: Partial<HealthPolicy>;
  /** Called before the gang asks (policy, limits). */
  setup?: (pool: PoolState) => void;
  /** What the gang asks for, besides a spread gang of 2 × (2 GPUs, 8 CPUs, 16Gi) owned by `gang-step`. */
  request?: Partial<AcquireInput>;
}

/** A pool that has granted request `gang`, a spread gang of two, one copy on each of two nodes. */
export function grantedGang(o: GangPoolOptions = {}): PoolState {
  const pool = new PoolState(emptyPoolState('p'));
  pool.setHealth({ leaseTtlMs: 60_000, nodeNotReadyAfterMs: 5_000, nodeLostAfterMs: 20_000, ...o.health });
  o.setup?.(pool);
  for (const id of o.nodes ?? ['a', 'b']) pool.registerNode(node(id), 0);
  pool.acquire(
    {
      requestId: 'gang',
      owner: { kind: 'workflow', workflowId: 'gang-step' },
      resources: resources({ gpu: 2, cpu: 8, memory: '16Gi' }),
      replicas: 2,
      replicaPlacement: 'spread',
      ...o.request,
    },
    0,
  );
  const granted = grants(pool.schedule(0));
  expect(new Set(granted.map((g) => g.lease.nodeId)).size).toBe(2);
  return pool;
}
