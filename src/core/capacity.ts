/**
 * Capacity: node templates, unmet demand, and when to scale up or down (after Kubernetes'
 * cluster-autoscaler: scale up for demand that has waited, scale down nodes idle past a threshold,
 * with cooldowns and per-template maximums against flapping).
 */
import { fitOnNode } from './fit';
import { emptyUsage } from './node-usage';
import { formatCpu, formatGpu, formatMemory } from './quantity';
import type { Lease, NodeRecord, NodeSpec, PendingRequest, ResourceRequest } from './types';

/** Label that marks a node made from a template. */
export const TEMPLATE_LABEL = 'allot.template';

/** What a new node of one kind would have, and how many may exist. */
export interface NodeTemplate {
  name: string;
  /** The node's inventory (its id is chosen when it is made). */
  spec: Omit<NodeSpec, 'id'>;
  /** Most nodes of this template at once. */
  max: number;
}

/** Timing of scaling, ms. */
export interface ScalingPolicy {
  /** Demand must wait this long before a scale-up. @default 5000 */
  scaleUpAfterMs: number;
  /** A node made from a template with no lease for this long is drained and removed. @default 60000 */
  scaleDownAfterMs: number;
  /** Least time between two scale-ups of one template. @default 15000 */
  scaleUpCooldownMs: number;
  /** Least time after a scale-up before scaling down. @default 30000 */
  scaleDownCooldownMs: number;
}

/** The defaults of `ScalingPolicy`. */
export const DEFAULT_SCALING: ScalingPolicy = {
  scaleUpAfterMs: 5_000,
  scaleDownAfterMs: 60_000,
  scaleUpCooldownMs: 15_000,
  scaleDownCooldownMs: 30_000,
};

/** A template as a node, to test whether a request would fit on a fresh one. */
export function templateNode(t: NodeTemplate): NodeSpec {
  return { id: `template:${t.name}`, ...t.spec, labels: { ...t.spec.labels, [TEMPLATE_LABEL]: t.name } };
}

/** The first template (in order) a request would fit on when the node is new, if any. */
export function templateFor(templates: readonly NodeTemplate[], request: ResourceRequest): NodeTemplate | undefined {
  return templates.find((t) => fitOnNode(templateNode(t), emptyUsage(), request) !== undefined);
}

/** Queued requests grouped by the shape of node that would serve them. */
export interface DemandGroup {
  /** Template that would serve them, if one does. */
  template?: string;
  /** Shape of the node they need, e.g. `2×A100, cpu 4, memory 16Gi`. */
  shape: string;
  requests: number;
  /** GPUs asked in all. */
  gpus: number;
  /** Longest wait in the group, ms. */
  oldestWaitMs: number;
}

function shapeOf(r: ResourceRequest): string {
  const gpus = r.gpuMilli > 0 ? `${formatGpu(r.gpuMilli)}×${r.gpuModels.join('|') || 'GPU'}` : 'no GPU';
  return `${gpus}, cpu ${formatCpu(r.cpuMilli)}, memory ${formatMemory(r.memoryMiB)}`;
}

/**
 * Unmet demand: requests waiting for resources or capacity (not for quota or priority alone),
 * grouped by template or, without one, by shape.
 */
export function unmetDemand(
  queue: readonly PendingRequest[],
  templates: readonly NodeTemplate[],
  now: number,
): DemandGroup[] {
  const groups = new Map<string, DemandGroup>();
  for (const r of queue) {
    if (r.reason !== 'Resources' && r.reason !== 'WaitingForCapacity' && r.reason !== 'NoNodes') continue;
    const template = templateFor(templates, r.resources);
    const shape = template ? describeTemplate(template) : shapeOf(r.resources);
    const key = template ? `t:${template.name}` : `s:${shape}`;
    const g = groups.get(key) ?? {
      ...(template ? { template: template.name } : {}),
      shape,
      requests: 0,
      gpus: 0,
      oldestWaitMs: 0,
    };
    g.requests += r.replicas ?? 1;
    g.gpus += (r.resources.gpuMilli / 1000) * (r.replicas ?? 1);
    g.oldestWaitMs = Math.max(g.oldestWaitMs, now - r.submittedAt);
    groups.set(key, g);
  }
  return [...groups.values()].sort((a, b) => b.oldestWaitMs - a.oldestWaitMs);
}

/** `2×A100 (80Gi), cpu 8, memory 32Gi`. */
export function describeTemplate(t: NodeTemplate): string {
  const g = t.spec.gpus[0];
  const gpus =
    t.spec.gpus.length > 0 && g ? `${t.spec.gpus.length}×${g.model} (${formatMemory(g.memoryMiB)})` : 'no GPU';
  return `${gpus}, cpu ${formatCpu(t.spec.cpuMilli)}, memory ${formatMemory(t.spec.memoryMiB)}`;
}

/** Where scaling stands: carried in the pool's state. */
export interface ScalingState {
  /** Nodes asked for and not yet registered, per template. */
  pending: Record<string, number>;
  /** Time (ms) of the last scale-up, per template. */
  lastScaleUpAt: Record<string, number>;
  /** Nodes being scaled down (drained, waiting for the scaler). */
  removing: string[];
  /** Time (ms) each node in `removing` was drained for removal. */
  removingSince?: Record<string, number>;
}

/**
 * How long the pool waits for nodes it asked for to register, and for a drained node's removal
 * to be reported, before it stops waiting (cluster-autoscaler's max-node-provision-time has the
 * same default). An outcome can be lost: the scaler's activity runs on the control worker, and a
 * pool that continues as new does not hear how an activity of its previous run ended.
 */
export const SCALING_TIMEOUT_MS = 15 * 60_000;

/** A scaling action for the pool to carry out. */
export type ScalingAction =
  { kind: 'up'; template: string; count: number } | { kind: 'down'; template: string; nodeId: string };

/**
 * What to scale now. Up: for each template whose demand has waited `scaleUpAfterMs`, enough new
 * nodes for the waiting requests (one request per node at least, by GPUs otherwise), within
 * `max` counting nodes that exist or are pending, and not within the cooldown. Down: nodes made
 * from a template, idle (no lease) for `scaleDownAfterMs`, not within the cooldown of a scale-up
 * of their template, and only while no demand for their template waits.
 */
export function planScaling(input: {
  nodes: readonly NodeRecord[];
  leases: readonly Lease[];
  queue: readonly PendingRequest[];
  templates: readonly NodeTemplate[];
  state: ScalingState;
  policy: ScalingPolicy;
  /** Per node: time (ms) it last held a lease or registered. */
  idleSince: Record<string, number>;
  now: number;
}): ScalingAction[] {
  const { nodes, leases, queue, templates, state, policy, now } = input;
  const actions: ScalingAction[] = [];
  const demand = unmetDemand(queue, templates, now);
  const existing = (name: string): number =>
    nodes.filter((n) => n.spec.labels[TEMPLATE_LABEL] === name && !state.removing.includes(n.spec.id)).length;
  for (const t of templates) {
    const d = demand.find((g) => g.template === t.name);
    if (!d || d.oldestWaitMs < policy.scaleUpAfterMs) continue;
    const last = state.lastScaleUpAt[t.name];
    if (last !== undefined && now - last < policy.scaleUpCooldownMs) continue;
    const perNode = Math.max(1, t.spec.gpus.length);
    const wanted = Math.max(Math.ceil(d.gpus / perNode), d.gpus === 0 ? d.requests : 1);
    const room = t.max - existing(t.name) - (state.pending[t.name] ?? 0);
    const count = Math.min(wanted - (state.pending[t.name] ?? 0), room);
    if (count > 0) actions.push({ kind: 'up', template: t.name, count });
  }
  const busy = new Set(leases.map((l) => l.nodeId));
  for (const n of nodes) {
    const template = n.spec.labels[TEMPLATE_LABEL];
    if (template === undefined || busy.has(n.spec.id) || state.removing.includes(n.spec.id)) continue;
    if (demand.some((g) => g.template === template)) continue;
    const last = state.lastScaleUpAt[template];
    if (last !== undefined && now - last < policy.scaleDownCooldownMs) continue;
    const idle = input.idleSince[n.spec.id] ?? n.registeredAt;
    if (now - idle >= policy.scaleDownAfterMs) actions.push({ kind: 'down', template, nodeId: n.spec.id });
  }
  return actions;
}
