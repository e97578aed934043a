/**
 * Scenarios written by hand for gangs, where the drawn ones reach a case too rarely.
 */
import type { Scenario, SimStepSpec } from './scenario';

/**
 * A gang of two spread over three one-GPU nodes, whose workload ignores SIGTERM: at 100 s the
 * node of replica `silent` is cut off from Temporal for 120 s, and the agent of the other
 * replica's node crashes for 2 s. The restarted agent names its replica's lease dead, and the
 * pool revokes the gang (`NodeRestarted`); both launches time out at 120 s. The silent replica may
 * still run (its agent fences it only by 2/3 of the node-lost time, at about 135 s), so the step
 * must wait for it before it runs again on the two other nodes.
 */
export function silentReplicaBesideRestartedNode(seed: number, silent: 0 | 1): Scenario {
  const step: SimStepSpec = {
    id: 's1',
    gpu: 1,
    cpu: 1,
    priority: 0,
    team: 'a',
    preemptible: false,
    graceMs: 30_000,
    durationMs: 600_000,
    exitAfterTermMs: Infinity,
    replicas: 2,
    replicaPlacement: 'spread',
  };
  return {
    seed,
    nodes: [1, 2, 3].map((i) => ({ id: `n${i}`, gpus: 1, cpu: 8 })),
    policy: { gracePeriodMs: 30_000, preemption: true },
    health: { leaseTtlMs: 60_000, nodeNotReadyAfterMs: 15_000, nodeLostAfterMs: 60_000 },
    quotas: [],
    events: [
      { at: 1_000, kind: 'submit', step },
      { at: 100_000, kind: 'partition-replica', step: 's1', rank: silent, durationMs: 120_000 },
      { at: 100_000, kind: 'crash-replica', step: 's1', rank: 1 - silent, downMs: 2_000 },
    ],
    horizonMs: 15 * 60_000,
  };
}
