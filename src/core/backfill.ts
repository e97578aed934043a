/**
 * Reserved starts for blocked requests, for conservative backfill after Slurm: a later request may
 * start ahead of a blocked one only if its time limit ends by the blocked one's reserved start, so
 * it can never delay it.
 *
 * The reserved start is the earliest time at which, as running work ends by its time limit (or a
 * preempted lease by the end of its grace period), enough nodes would have room for every copy of
 * the request. Work with no known end never ends here: a request that needs its resources has no
 * reserved start (`Infinity`).
 */
import type { Allocation, ClusterState } from './cluster';
import { allocationOf } from './cluster';
import { fitsNow } from './fit';
import type { Placer } from './placer';
import type { ResourceRequest } from './types';

/** A running allocation and when it ends at the latest (ms; `Infinity` if unknown). */
export interface Ending {
  allocation: Allocation;
  end: number;
}

/** The running allocations of each node. */
export type EndingsByNode = Map<string, Ending[]>;

/** Earliest time (ms) all `replicas` copies of the request could start; `now` if they fit now. */
export function reservedStart(
  cluster: ClusterState,
  placer: Placer,
  endings: EndingsByNode,
  request: ResourceRequest,
  replicas: number,
  now: number,
): number {
  const starts: number[] = [];
  for (const node of placer.eligibleNodes(request)) {
    if (!node.ready) continue;
    const list = [...(endings.get(node.spec.id) ?? [])].sort((a, b) => a.end - b.end);
    const released: Allocation[] = [];
    const copies: Allocation[] = [];
    const takeCopies = (at: number): void => {
      while (copies.length < replicas && fitsNow(node, request)) {
        // Any GPUs will do for timing: the copy only has to fit.
        const probe = placer.placeOnNode(node.spec.id, request);
        if (!probe) break;
        const copy = allocationOf(node.spec.id, request, probe.gpus);
        cluster.allocate(copy);
        copies.push(copy);
        starts.push(at);
      }
    };
    takeCopies(now);
    for (const e of list) {
      if (copies.length >= replicas || e.end === Infinity) break;
      cluster.release(e.allocation);
      released.push(e.allocation);
      takeCopies(Math.max(now, e.end));
    }
    for (const c of copies) cluster.release(c);
    for (const a of released) cluster.allocate(a);
  }
  if (starts.length < replicas) return Infinity;
  starts.sort((a, b) => a - b);
  return starts[replicas - 1] ?? Infinity;
}
