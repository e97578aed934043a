/**
 * Reserved starts for blocked requests, for conservative backfill after Slurm: a later request may
 * start ahead of a blocked one only if its time limit ends by the blocked one's reserved start, so
 * it can never delay it.
 *
 * The reserved start is the earliest time at which, as running work ends by its time limit (or a
 * preempted lease by the end of its grace period), enough nodes would have room for every copy of
 * the request (a spread gang's, one copy per node). Work with no known end never ends here: a
 * request that needs its resources has no reserved start (`Infinity`).
 */
import type { Allocation, NodeState } from './cluster';
import { allocationOf, applyAllocation, scratchCopy } from './cluster';
import { fitsNow } from './fit';
import type { Placer } from './placer';
import type { ReplicaPlacement, ResourceRequest } from './types';

/** A running allocation and when it ends at the latest (ms; `Infinity` if unknown). */
export interface Ending {
  allocation: Allocation;
  end: number;
}

/** The running allocations of each node, by end (ties in the order they were added). */
export type EndingsByNode = Map<string, Ending[]>;

/** Earliest time (ms) all `replicas` copies of the request could start; `now` if they fit now. */
export function reservedStart(
  placer: Placer,
  endings: EndingsByNode,
  request: ResourceRequest,
  replicas: number,
  placement: ReplicaPlacement,
  now: number,
): number {
  // A spread gang takes one copy per node at most: a node's second copy could not start there.
  const perNode = placement === 'spread' ? 1 : replicas;
  const starts: number[] = [];
  // The answer is the replicas-th earliest start found. Once that many are known, a node's copies
  // that start no earlier than it cannot change it, so the search there stops.
  let bound = Infinity;
  for (const node of placer.eligibleNodes(request)) {
    if (!node.ready) continue;
    const list = endings.get(node.spec.id) ?? [];
    // Work ends and copies start on a scratch copy of the node, made at the first change.
    let state = node;
    const changeable = (): NodeState => (state === node ? (state = scratchCopy(node)) : state);
    let copies = 0;
    const takeCopies = (at: number): void => {
      while (copies < perNode && fitsNow(state, request)) {
        // Any GPUs will do for timing: the copy only has to fit.
        const probe = placer.placeOnState(state, request);
        if (!probe) break;
        applyAllocation(changeable(), allocationOf(node.spec.id, request, probe.gpus), -1);
        copies++;
        starts.push(at);
      }
    };
    takeCopies(now);
    for (const e of list) {
      if (copies >= perNode || e.end === Infinity || Math.max(now, e.end) >= bound) break;
      applyAllocation(changeable(), e.allocation, 1);
      takeCopies(Math.max(now, e.end));
    }
    if (starts.length >= replicas && copies > 0) {
      starts.sort((a, b) => a - b);
      starts.length = replicas;
      bound = starts[replicas - 1] ?? Infinity;
    }
  }
  if (starts.length < replicas) return Infinity;
  starts.sort((a, b) => a - b);
  return starts[replicas - 1] ?? Infinity;
}
