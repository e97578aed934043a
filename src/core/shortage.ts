/**
 * What is short for a request that fits some node but is free on none: the resources that no Ready
 * node that could hold it has free now, with the most free of each; or, when each node lacks
 * something else, what each lacks. Only the words of a wait's reason: no decision reads it.
 */
import type { NodeState } from './cluster';
import { copiesWhenEmpty, deviceTakes } from './fit';
import { formatCpu, formatGpu, formatMemory } from './quantity';
import { isFractional, wholeGpus } from './resources';
import type { ResourceRequest } from './types';

/** Nodes named when each lacks something different. */
const NODES_NAMED = 3;

/** One resource a node lacks: its name, and what it has free against what the request needs. */
interface Lack {
  resource: string;
  free: number;
  need: number;
  format: (n: number) => string;
  /** A share of one GPU: no device that fits has that much free. */
  share?: boolean;
}

/** What one node lacks to take the request now (empty: it has room). */
function lacks(n: NodeState, r: ResourceRequest): Lack[] {
  const out: Lack[] = [];
  // Free is below zero where a node registered again smaller than its leases: none is free.
  if (n.freeCpuMilli < r.cpuMilli)
    out.push({ resource: 'cpu', free: Math.max(0, n.freeCpuMilli), need: r.cpuMilli, format: formatCpu });
  if (n.freeMemoryMiB < r.memoryMiB)
    out.push({ resource: 'memory', free: Math.max(0, n.freeMemoryMiB), need: r.memoryMiB, format: formatMemory });
  for (const [name, need] of Object.entries(r.custom ?? {})) {
    const free = n.customFree[name] ?? 0;
    if (free < need) out.push({ resource: name, free: Math.max(0, free), need, format: String });
  }
  if (r.gpuMilli > 0) {
    const fractional = isFractional(r);
    const need = fractional ? 1 : wholeGpus(r);
    let free = 0;
    for (let i = 0; i < n.spec.gpus.length; i++) if (deviceTakes(n, i, r, fractional)) free++;
    if (free < need) {
      out.push(
        fractional
          ? { resource: 'gpu', free: 0, need: r.gpuMilli, format: formatGpu, share: true }
          : { resource: 'gpu', free, need, format: String },
      );
    }
  }
  return out;
}

/**
 * Says what is short, e.g. `short: cpu (at most 0 of 1 free)`, or which node lacks what when no
 * resource is short on all of them; `undefined` when no Ready node could hold the request at all,
 * or one has room.
 */
export function describeShortage(nodes: readonly NodeState[], r: ResourceRequest): string | undefined {
  const candidates = nodes.filter((n) => n.ready && copiesWhenEmpty(n.spec, r) > 0);
  if (candidates.length === 0) return undefined;
  const perNode = candidates.map((n) => ({ id: n.spec.id, lacks: lacks(n, r) }));
  if (perNode.some((p) => p.lacks.length === 0)) return undefined;
  const everywhere = (perNode[0]?.lacks ?? [])
    .map((l) => l.resource)
    .filter((name) => perNode.every((p) => p.lacks.some((l) => l.resource === name)));
  if (everywhere.length > 0) {
    const parts = everywhere.map((name) => {
      const all = perNode.flatMap((p) => p.lacks.filter((l) => l.resource === name));
      const first = all[0] as Lack;
      if (first.share) {
        // A device may have the share free but not the memory it reserves: name both.
        const memory = r.gpuMemoryMiB > 0 ? ` with ${formatMemory(r.gpuMemoryMiB)} of its memory` : '';
        return `gpu (no GPU that fits has ${formatGpu(first.need)}${memory} free)`;
      }
      const most = Math.max(...all.map((l) => l.free));
      return `${name} (at most ${first.format(most)} of ${first.format(first.need)} free)`;
    });
    return `short: ${parts.join(' and ')}`;
  }
  const named = perNode
    .slice(0, NODES_NAMED)
    .map((p) => `${p.id} lacks ${p.lacks.map((l) => l.resource).join(' and ')}`);
  const more = perNode.length > NODES_NAMED ? `, and ${perNode.length - NODES_NAMED} more` : '';
  return `no node has all of it free at once: ${named.join(', ')}${more}`;
}
