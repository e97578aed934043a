/** What the tests of a gang in a pool's state share: nodes, resources, and reading effects. */
import type { Effect, Lease, NodeSpec } from '../../src/core';
import { parseResources } from '../../src/core';
import type { PoolState } from '../../src/core';

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
