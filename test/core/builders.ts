/**
 * Small fluent builders for core fixtures: nodes, requests, leases and snapshots.
 */
import type {
  Lease,
  NamedLimit,
  NodeRecord,
  NodeSpec,
  PendingRequest,
  ReplicaPlacement,
  ResourceRequest,
} from '../../src/core';
import type { Snapshot, TeamQuota } from '../../src/core';

/** A node: `node('n1').gpus(8, 'A100').cpu(64).build()`. */
export function node(id: string) {
  const spec: NodeSpec = { id, cpuMilli: 64_000, memoryMiB: 512 * 1024, gpus: [], labels: {} };
  let status: NodeRecord['status'] = 'Ready';
  const b = {
    gpus(count: number, model = 'A100', memoryMiB = 80 * 1024) {
      spec.gpus = Array.from({ length: count }, (_, index) => ({ index, model, memoryMiB }));
      return b;
    },
    cpu(cores: number) {
      spec.cpuMilli = cores * 1000;
      return b;
    },
    memoryGi(gi: number) {
      spec.memoryMiB = gi * 1024;
      return b;
    },
    labels(labels: Record<string, string>) {
      spec.labels = labels;
      return b;
    },
    custom(custom: Record<string, number>) {
      spec.custom = custom;
      return b;
    },
    status(s: NodeRecord['status']) {
      status = s;
      return b;
    },
    build(): NodeRecord {
      return { spec, status, registeredAt: 0 };
    },
  };
  return b;
}

/** Resources in integer units: `res({ gpu: 2 })` is 2 whole GPUs, `res({ gpu: 0.5 })` half of one. */
export function res(
  r: {
    gpu?: number;
    cpu?: number;
    memGi?: number;
    models?: string[];
    gpuMemGi?: number;
    labels?: Record<string, string>;
    custom?: Record<string, number>;
  } = {},
): ResourceRequest {
  const out: ResourceRequest = {
    cpuMilli: (r.cpu ?? 1) * 1000,
    memoryMiB: (r.memGi ?? 1) * 1024,
    gpuMilli: Math.round((r.gpu ?? 0) * 1000),
    gpuMemoryMiB: (r.gpuMemGi ?? 0) * 1024,
    gpuModels: r.models ?? [],
    labels: r.labels ?? {},
  };
  if (r.custom) out.custom = r.custom;
  return out;
}

let seq = 0;

/** A queued request: `request('r1').gpu(2).priority(5).build()`. */
export function request(id: string) {
  const r: PendingRequest = {
    requestId: id,
    owner: { kind: 'client', name: id },
    resources: res(),
    priority: 0,
    team: 'default',
    label: id,
    submittedAt: 0,
    seq: seq++,
    reason: 'Pending',
    message: '',
  };
  const b = {
    resources(x: ResourceRequest) {
      r.resources = x;
      return b;
    },
    gpu(n: number, more: Parameters<typeof res>[0] = {}) {
      r.resources = res({ cpu: 1, ...more, gpu: n });
      return b;
    },
    priority(p: number) {
      r.priority = p;
      return b;
    },
    team(t: string) {
      r.team = t;
      return b;
    },
    at(ms: number) {
      r.submittedAt = ms;
      return b;
    },
    seq(n: number) {
      r.seq = n;
      return b;
    },
    replicas(n: number) {
      r.replicas = n;
      return b;
    },
    placement(p: ReplicaPlacement) {
      r.replicaPlacement = p;
      return b;
    },
    limit(ms: number) {
      r.timeLimitMs = ms;
      return b;
    },
    preemptible(p = true) {
      r.preemptible = p;
      return b;
    },
    namedLimits(limits: Record<string, number>) {
      r.limits = limits;
      return b;
    },
    build(): PendingRequest {
      return { ...r };
    },
  };
  return b;
}

/** A lease: `lease('x').on('n1').gpus(0, 1).priority(0).preemptible().build()`. */
export function lease(requestId: string) {
  const l: Lease = {
    leaseId: `${requestId}-lease`,
    requestId,
    owner: { kind: 'client', name: requestId },
    nodeId: 'n1',
    cpuMilli: 1000,
    memoryMiB: 1024,
    gpus: [],
    priority: 0,
    team: 'default',
    label: requestId,
    submittedAt: 0,
    grantedAt: 0,
  };
  const b = {
    id(leaseId: string) {
      l.leaseId = leaseId;
      return b;
    },
    on(nodeId: string) {
      l.nodeId = nodeId;
      return b;
    },
    gpus(...indices: number[]) {
      l.gpus = indices.map((index) => ({ index, milli: 1000, memoryMiB: 80 * 1024 }));
      return b;
    },
    share(index: number, milli: number) {
      l.gpus = [{ index, milli, memoryMiB: 0 }];
      return b;
    },
    cpu(cores: number) {
      l.cpuMilli = cores * 1000;
      return b;
    },
    priority(p: number) {
      l.priority = p;
      return b;
    },
    team(t: string) {
      l.team = t;
      return b;
    },
    grantedAt(ms: number) {
      l.grantedAt = ms;
      return b;
    },
    limit(ms: number) {
      l.timeLimitMs = ms;
      return b;
    },
    preemptible(p = true) {
      l.preemptible = p;
      return b;
    },
    preemptedAt(ms: number) {
      l.preemptedAt = ms;
      return b;
    },
    namedLimits(limits: Record<string, number>) {
      l.limits = limits;
      return b;
    },
    build(): Lease {
      return { ...l };
    },
  };
  return b;
}

/** A snapshot from built parts. */
export function snapshot(parts: {
  nodes: NodeRecord[];
  leases?: Lease[];
  queue?: PendingRequest[];
  teams?: TeamQuota[];
  limits?: NamedLimit[];
}): Snapshot {
  return {
    nodes: parts.nodes,
    leases: parts.leases ?? [],
    queue: parts.queue ?? [],
    teams: parts.teams,
    ...(parts.limits ? { limits: parts.limits } : {}),
  };
}
