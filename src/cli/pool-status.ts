/**
 * `allot status` and `allot queue`: the pool's nodes, GPUs and queue, for people or as JSON.
 */
import type { Client } from '@temporalio/client';
import type { PoolStatus } from '../core';
import { formatCpu, formatGpu, formatMemory } from '../core';
import { checkpointPrefix } from '../store/layout';
import { poolWorkflowId, statusQuery } from '../workflows/messages';
import { UserError } from './errors';
import { formatDuration, table } from './format';
import type { AttemptReport } from './launches';
import { runningAttempt } from './launches';
import { usageCells } from './usage';

/** What the running steps use now, by lease id (from their launches' heartbeats). */
export type RunningUsage = Map<string, Pick<AttemptReport, 'usage' | 'current'>>;

/** Most running steps whose usage one `allot status` reads. */
const USAGE_LIMIT = 100;

/** Reads the usage of the pool's running steps; those that cannot be read are left out. */
export async function fetchUsage(client: Client, s: PoolStatus): Promise<RunningUsage> {
  const out: RunningUsage = new Map();
  const leases = s.leases.filter((l) => l.owner.kind === 'workflow').slice(0, USAGE_LIMIT);
  await Promise.all(
    leases.map(async (l) => {
      if (l.owner.kind !== 'workflow') return;
      const a = await runningAttempt(client.workflow.getHandle(l.owner.workflowId)).catch(() => undefined);
      if (a?.usage || a?.current) out.set(l.leaseId, { usage: a.usage, current: a.current });
    }),
  );
  return out;
}

/** Queued requests `allot status` lists; `allot queue` lists more. */
const STATUS_QUEUE_SHOWN = 20;

/** Reads a pool's status (with its first `queueLimit` queued requests), with a clear error when the pool does not run. */
export async function fetchStatus(client: Client, pool: string, queueLimit?: number): Promise<PoolStatus> {
  try {
    return await client.workflow
      .getHandle(poolWorkflowId(pool))
      .query(statusQuery, queueLimit === undefined ? undefined : { queueLimit });
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new UserError(
      `cannot read pool "${pool}" (${why.split('\n')[0]}); is a control worker running (\`allot dev\` or \`allot worker\`)?`,
      1,
    );
  }
}

/** The JSON form of `allot status --json`. */
export function statusJson(s: PoolStatus, usage: RunningUsage = new Map()): unknown {
  return {
    pool: s.pool,
    nodes: s.nodes.map((n) => ({
      id: n.id,
      status: n.status,
      labels: n.labels,
      ...(n.address !== undefined ? { address: n.address } : {}),
      cpu: { capacity: n.cpu.capacityMilli / 1000, used: n.cpu.usedMilli / 1000 },
      memoryMiB: { capacity: n.memory.capacityMiB, used: n.memory.usedMiB },
      gpus: n.gpus.map((g) => ({
        index: g.index,
        model: g.model,
        memoryMiB: g.memoryMiB,
        used: g.used,
        holders: g.holders,
      })),
      ...(n.custom ? { custom: customJson(n.custom) } : {}),
    })),
    leases: s.leases.map((l) => ({
      leaseId: l.leaseId,
      step: l.label,
      owner: l.owner,
      nodeId: l.nodeId,
      gpus: l.gpus.map((g) => g.index),
      cpu: l.cpuMilli / 1000,
      memoryMiB: l.memoryMiB,
      ...(l.custom ? { custom: l.custom } : {}),
      heldMs: l.heldMs,
      ...(l.replicas !== undefined ? { replica: l.replica ?? 0, replicas: l.replicas } : {}),
      ...(l.limits ? { limits: l.limits } : {}),
      ...(s.store !== undefined && l.owner.kind === 'workflow'
        ? { checkpoint: `${s.store.replace(/\/+$/, '')}/${checkpointPrefix(l.owner.workflowId)}` }
        : {}),
      ...(usage.get(l.leaseId) ? { usage: usage.get(l.leaseId) } : {}),
    })),
    queued: s.queued,
    queuedByTeam: s.queuedByTeam.map((t) => ({ team: t.team, count: t.count, gpu: t.gpuMilli / 1000 })),
    queue: s.queue.map((q) => ({
      position: q.position,
      requestId: q.requestId,
      step: q.label,
      team: q.team,
      priority: q.priority,
      gpu: q.resources.gpuMilli / 1000,
      cpu: q.resources.cpuMilli / 1000,
      memoryMiB: q.resources.memoryMiB,
      ...(q.resources.custom ? { custom: q.resources.custom } : {}),
      ...(q.limits ? { limits: q.limits } : {}),
      ...(q.replicas !== undefined ? { replicas: q.replicas } : {}),
      reason: q.reason,
      message: q.message,
      waitedMs: q.waitedMs,
    })),
    // Fair share, when on: each team's weight, share now, and decayed usage (unit-seconds).
    ...(s.fairShare ? { fairShare: s.fairShare } : {}),
    ...(s.limits ? { limits: s.limits } : {}),
    store: s.store ?? null,
  };
}

/** Named limits in a line: `limits: fs 1/1 (1 waiting), db 0/2`. */
export function renderLimits(limits: NonNullable<PoolStatus['limits']>): string {
  const each = limits.map((l) => `${l.name} ${l.inUse}/${l.max}${l.waiting > 0 ? ` (${l.waiting} waiting)` : ''}`);
  return `limits: ${each.join(', ')}`;
}

/** The readable form of `allot status`. */
export function renderStatus(s: PoolStatus, usage: RunningUsage = new Map()): string {
  const gpuTotal = s.nodes.reduce((n, node) => n + node.gpus.length, 0);
  const gpuUsed = s.nodes.reduce((n, node) => n + node.gpus.reduce((u, g) => u + g.used, 0), 0);
  const out: string[] = [];
  out.push(
    `pool ${s.pool}: ${s.nodes.length} node${s.nodes.length === 1 ? '' : 's'}, ` +
      `${formatGpu(Math.round(gpuUsed * 1000))} of ${gpuTotal} GPUs in use, ${runningSteps(s.leases).length} running, ${s.queued.toLocaleString('en-US')} queued`,
  );
  out.push('');
  if (s.nodes.length === 0) out.push('no nodes yet: start one with `allot agent`');
  else {
    out.push(
      customColumn(
        ['NODE', 'STATUS', 'CPU', 'MEMORY', 'GPUS'],
        s.nodes,
        (n) => describeFree(n.custom),
        (n) => [
          n.id,
          n.status,
          `${formatCpu(n.cpu.usedMilli)}/${formatCpu(n.cpu.capacityMilli)}`,
          `${formatMemory(n.memory.usedMiB)}/${formatMemory(n.memory.capacityMiB)}`,
          n.gpus.length === 0
            ? '-'
            : n.gpus
                .map(
                  (g) =>
                    `${g.index}:${g.used === 0 ? 'free' : g.holders.map((h) => h.label).join('+') + (g.used < 1 ? `(${g.used})` : '')}`,
                )
                .join(' '),
        ],
        5,
      ),
    );
  }
  if (s.limits && s.limits.length > 0) {
    out.push('');
    out.push(renderLimits(s.limits));
  }
  out.push('');
  out.push(
    s.store !== undefined
      ? `store: ${s.store} (checkpoints and artifacts)`
      : 'store: none (checkpoints stay on each node; name one with `allot worker --store`)',
  );
  if (s.leases.length > 0) {
    out.push('');
    out.push(renderRunning(s, usage));
  }
  out.push('');
  if (s.queued === 0) out.push('queue: empty');
  else out.push(renderQueue({ ...s, queue: s.queue.slice(0, STATUS_QUEUE_SHOWN) }));
  return out.join('\n');
}

type StatusLease = PoolStatus['leases'][number];

/** The running steps: one entry per request, a gang's leases together in rank order. */
function runningSteps(leases: readonly StatusLease[]): StatusLease[][] {
  const byRequest = new Map<string, StatusLease[]>();
  for (const l of leases) {
    const group = byRequest.get(l.requestId);
    if (group) group.push(l);
    else byRequest.set(l.requestId, [l]);
  }
  return [...byRequest.values()].map((g) => g.sort((a, b) => (a.replica ?? 0) - (b.replica ?? 0)));
}

/** A lease's GPUs: `0,1`, or `2(0.5)` for a share. */
function leaseGpus(l: StatusLease): string {
  return l.gpus.length === 0
    ? '-'
    : l.gpus.map((g) => (g.milli < 1000 ? `${g.index}(${g.milli / 1000})` : String(g.index))).join(',');
}

/**
 * Running steps with what they use now beside what they asked for (`-`: not sampled yet, or no
 * GPU). A gang is one line: its replicas' nodes and GPUs in rank order (`gpu-a gpu-b`, `0,1 0,1`),
 * its usage replica 0's, its CPU and memory each replica's.
 */
export function renderRunning(s: PoolStatus, usage: RunningUsage = new Map()): string {
  return customColumn(
    ['RUNNING', 'NODE', 'GPUS', 'CPU NOW/ASKED', 'MEMORY NOW/ASKED', 'GPU UTIL', 'GPU MEM', 'FOR'],
    runningSteps(s.leases),
    ([l]) => describeAmounts(l?.custom),
    (gang) => {
      const l = gang[0] as StatusLease;
      const u = usage.get(l.leaseId);
      const cells = usageCells(u?.usage, u?.current);
      const asked = u?.usage?.requested;
      return [
        gang.length > 1 ? `${l.label} (${gang.length} replicas)` : l.label,
        gang.map((x) => x.nodeId).join(' '),
        gang.map(leaseGpus).join(' '),
        asked ? cells.cpu : `${cells.cpu === '-' ? '-' : cells.cpu}/${formatCpu(l.cpuMilli)}`,
        asked ? cells.memory : `${cells.memory === '-' ? '-' : cells.memory}/${formatMemory(l.memoryMiB)}`,
        cells.gpuUtil,
        cells.gpuMemory,
        formatDuration(l.heldMs),
      ];
    },
  );
}

/** The queue as a table: position, step, resources, reason and time waited. */
export function renderQueue(s: PoolStatus): string {
  if (s.queued === 0) return `queue of pool ${s.pool}: empty`;
  const rest = s.queued - s.queue.length;
  const more =
    rest > 0
      ? `\n... and ${rest.toLocaleString('en-US')} more (${s.queuedByTeam
          .map((t) => `${t.team}: ${t.count.toLocaleString('en-US')}`)
          .join(', ')} in all); \`allot queue --limit N\` lists more`
      : '';
  return `${customColumn(
    ['#', 'STEP', 'TEAM', 'PRIO', 'GPU', 'CPU', 'MEMORY', 'WAITED', 'REASON'],
    s.queue,
    (q) => describeAmounts(q.resources.custom),
    (q) => [
      String(q.position),
      q.replicas !== undefined ? `${q.label} (${q.replicas} replicas)` : q.label,
      q.team,
      String(q.priority),
      formatGpu(q.resources.gpuMilli),
      formatCpu(q.resources.cpuMilli),
      formatMemory(q.resources.memoryMiB),
      formatDuration(q.waitedMs),
      `${q.reason}: ${q.message}`,
    ],
  )}${more}`;
}

/**
 * A table with a CUSTOM column at `at` (default: before the last column), only when some row has
 * custom resources: a pool without them reads as before.
 */
function customColumn<T>(
  headers: string[],
  rows: readonly T[],
  custom: (row: T) => string,
  cells: (row: T) => string[],
  at = headers.length - 1,
): string {
  const shown = rows.map(custom);
  if (shown.every((c) => c === '')) return table(headers, rows.map(cells));
  const splice = (r: string[], c: string): string[] => [...r.slice(0, at), c, ...r.slice(at)];
  return table(
    splice(headers, 'CUSTOM'),
    rows.map((r, i) => splice(cells(r), shown[i] || '-')),
  );
}

/** Custom amounts held or asked for: `nvme 1, lic 2`; empty when none. */
function describeAmounts(custom: Readonly<Record<string, number>> | undefined): string {
  return Object.entries(custom ?? {})
    .map(([name, n]) => `${name} ${n}`)
    .join(', ');
}

/** A node's custom resources, free of total: `nvme 1/2 free`; empty when it offers none. */
function describeFree(custom: PoolStatus['nodes'][number]['custom']): string {
  return Object.entries(custom ?? {})
    .map(([name, c]) => `${name} ${Math.max(0, c.capacity - c.used)}/${c.capacity} free`)
    .join(', ');
}

/** The JSON form of a node's custom resources: capacity, used and free of each. */
function customJson(custom: NonNullable<PoolStatus['nodes'][number]['custom']>): unknown {
  return Object.fromEntries(
    Object.entries(custom).map(([name, c]) => [
      name,
      { capacity: c.capacity, used: c.used, free: Math.max(0, c.capacity - c.used) },
    ]),
  );
}
