/**
 * A pool's nodes, as their agents report them: registration (a node joins, its inventory is
 * replaced, or a lost node comes back), heartbeats, draining, and what an agent learns of its
 * node (the `node` query). Silent nodes are marked by `pool-health.ts`.
 *
 * Invariant: nodes are kept sorted by id, so every cycle sees them in the same order.
 */
import type { Effect, PoolStateData } from './pool-data';
import type { PoolSettings } from './pool-settings';
import type { RequestQueue } from './request-queue';
import type { NodeSpec, NodeStatus, RequestOwner } from './types';

/** What a node's agent learns of its node from the pool (the `node` query). */
export interface NodeReport {
  /** Whether the pool knows the node at all; `false`: it must register. */
  known: boolean;
  /** Declared lost: heartbeats no longer count; it must register again. */
  lost: boolean;
  status?: NodeStatus;
  /** The pool's node-lost time in force, ms: the agent stops its workloads well within it when cut off. */
  nodeLostAfterMs: number;
  /** The leases the pool holds on the node. */
  leases: { leaseId: string; requestId: string; owner: RequestOwner }[];
}

/** What a node's registration answers its agent. */
export interface Registration {
  status: 'registered' | 'updated';
  /** Running leases the pool does not hold on this node: the agent kills them. */
  kill: string[];
  /** Owners to tell that their leases are gone (the agent's earlier life ran them and they died with it). */
  effects: Effect[];
  /** The pool's node-lost time, ms: the agent stops cut-off workloads well within it. */
  nodeLostAfterMs: number;
}

/** The pool's nodes; owns `nodes`. */
export class NodeRegistry {
  constructor(
    private readonly data: PoolStateData,
    private readonly settings: PoolSettings,
    private readonly requests: RequestQueue,
  ) {}

  /**
   * A node's agent registers: the node is added, or its inventory replaced, and it is Ready again
   * (a lost node comes back only this way). `runningLeases` are what the agent runs: those the
   * pool does not hold on the node are to be killed. `deadLeases` died with the agent's earlier
   * life: the pool takes them back and tells their steps, which queue again.
   */
  register(
    spec: NodeSpec,
    now: number,
    options: { runningLeases?: readonly string[]; deadLeases?: readonly string[] } = {},
  ): Registration {
    const kill = this.unknownLeases(spec.id, options.runningLeases ?? []);
    const effects: Effect[] = [];
    for (const leaseId of options.deadLeases ?? []) {
      const lease = this.data.leases.find((l) => l.leaseId === leaseId && l.nodeId === spec.id);
      if (!lease) continue;
      this.requests.takeBack(lease);
      effects.push({
        kind: 'revoke',
        lease,
        reason: 'NodeRestarted',
        message: `the agent of node ${spec.id} restarted; what lease ${lease.leaseId} ran died with its earlier life`,
      });
    }
    const status = this.registerNode(spec, now);
    return { status, kill, effects, nodeLostAfterMs: this.nodeReport(spec.id, now).nodeLostAfterMs };
  }

  /** Adds a node or replaces its inventory; leases already on it are kept. */
  registerNode(spec: NodeSpec, now: number): 'registered' | 'updated' {
    const existing = this.data.nodes.find((n) => n.spec.id === spec.id);
    if (existing) {
      existing.spec = spec;
      // A drain is an operator's decision: it outlives restarts of the agent.
      if (existing.status !== 'Draining') existing.status = 'Ready';
      existing.registeredAt = now;
      existing.lastSeenAt = now;
      delete existing.lostAt;
      return 'updated';
    }
    this.data.nodes.push({ spec, status: 'Ready', registeredAt: now, lastSeenAt: now });
    this.data.nodes.sort((a, b) => (a.spec.id < b.spec.id ? -1 : a.spec.id > b.spec.id ? 1 : 0));
    return 'registered';
  }

  /** Removes a node that holds no lease (its scaler removed it); returns whether it did. */
  remove(nodeId: string): boolean {
    if (this.data.leases.some((l) => l.nodeId === nodeId)) return false;
    this.data.nodes = this.data.nodes.filter((n) => n.spec.id !== nodeId);
    return true;
  }

  /**
   * Records that a node's agent is alive; a NotReady node becomes Ready again. Unknown nodes are
   * ignored, and so are lost ones: they must register again (see `register`).
   */
  heartbeat(nodeId: string, now: number): boolean {
    const node = this.data.nodes.find((n) => n.spec.id === nodeId);
    if (!node || node.lostAt !== undefined) return false;
    node.lastSeenAt = now;
    if (node.status === 'NotReady') {
      node.status = 'Ready';
      return true;
    }
    return false;
  }

  /**
   * Drains a node (no new grants; running leases finish) or makes it schedulable again. Returns
   * the node's status, or `undefined` for an unknown node.
   */
  setDraining(nodeId: string, drain: boolean): string | undefined {
    const node = this.data.nodes.find((n) => n.spec.id === nodeId);
    if (!node) return undefined;
    if (drain) node.status = 'Draining';
    else if (node.status === 'Draining') node.status = 'Ready';
    return node.status;
  }

  /** Marks a Ready node NotReady (its agent said it is stopping); a drained node stays drained. */
  markNotReady(nodeId: string): void {
    const node = this.data.nodes.find((n) => n.spec.id === nodeId);
    if (node?.status === 'Ready') node.status = 'NotReady';
  }

  /** Of the leases an agent says it runs, those the pool does not hold on that node (to be killed). */
  unknownLeases(nodeId: string, running: readonly string[]): string[] {
    const held = new Set(this.data.leases.filter((l) => l.nodeId === nodeId).map((l) => l.leaseId));
    return running.filter((id) => !held.has(id));
  }

  /** What the node's agent needs to know of its node (the `node` query). */
  nodeReport(nodeId: string, now: number): NodeReport {
    const node = this.data.nodes.find((n) => n.spec.id === nodeId);
    return {
      known: node !== undefined,
      lost: node?.lostAt !== undefined,
      ...(node ? { status: node.status } : {}),
      nodeLostAfterMs: Math.min(this.settings.health.nodeLostAfterMs, this.settings.healthAt(now).nodeLostAfterMs),
      leases: this.data.leases
        .filter((l) => l.nodeId === nodeId)
        .map((l) => ({ leaseId: l.leaseId, requestId: l.requestId, owner: l.owner })),
    };
  }
}
