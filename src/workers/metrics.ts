/**
 * Prometheus metrics (`prom-client`) of the control worker and of node agents, served at
 * `GET /metrics`.
 *
 * Control worker (`allot_pool_*`, `allot_step_*`): GPUs total and allocated per node and model,
 * CPU and memory, nodes by status, running leases and queue length per team, read from each
 * pool's `status` query at scrape time, so they are the numbers `allot status` prints; and the
 * wait-time histogram, preemptions, requeues and step outcomes, counted from what step workflows
 * report through a sink.
 *
 * Agent (`allot_node_*`): the node's GPUs total and allocated per model from its own ledger,
 * running steps with their sampled CPU, memory and GPU use beside what they asked for, launches by
 * outcome, and whether the agent is draining.
 */
import http from 'node:http';
import { fetchCapacity } from './pool-client';
import type { DemandGroup } from '../core';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import type { InjectedSinks } from '@temporalio/worker';
import type { WorkflowInfo } from '@temporalio/workflow';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LaunchOutcome, LeaseLedger, RunningLaunch } from '../activities';
import type { GpuUsageSource } from '../activities/monitor';
import type { NodeSpec, PoolStatus } from '../core';
import { poolWorkflowId, statusQuery } from '../workflows/messages';
import type { AllotMetricsSinks } from '../workflows/sinks';
import type { CapacityReport } from '../workflows/messages';
import type { LaunchInput } from '../workflows/step-types';
import type { StepUsage } from '../workflows/usage-types';

const MiB = 1024 * 1024;

/** Buckets of the wait-time histogram, seconds: from a fast grant to a day in the queue. */
export const WAIT_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400];

/** A registry with the process metrics of this Node.js process (`allot_process_*`). */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'allot_process_' });
  return registry;
}

/** How long a scrape waits for a pool's answer, ms. */
const STATUS_TIMEOUT_MS = 5000;

/**
 * Adds the control worker's metrics for `pools` to `registry`; returns the sinks to give the
 * worker (`Worker.create({ sinks })`) so that step workflows can report their waits and outcomes.
 */
export function registerControlMetrics(
  registry: Registry,
  client: Client,
  pools: readonly string[],
): InjectedSinks<AllotMetricsSinks> {
  // One status query and one capacity query per pool per scrape, shared by every gauge.
  let scrape:
    | {
        at: number;
        statuses: Promise<Map<string, PoolStatus | undefined>>;
        capacities: Promise<Map<string, CapacityReport | undefined>>;
      }
    | undefined;
  const current = (): NonNullable<typeof scrape> => {
    if (!scrape || Date.now() - scrape.at > 500) {
      scrape = {
        at: Date.now(),
        statuses: Promise.all(pools.map(async (p) => [p, await fetchStatus(client, p)] as const)).then(
          (entries) => new Map(entries),
        ),
        capacities: Promise.all(pools.map(async (p) => [p, await fetchCapacity(client, p)] as const)).then(
          (entries) => new Map(entries),
        ),
      };
    }
    return scrape;
  };
  const statuses = (): Promise<Map<string, PoolStatus | undefined>> => current().statuses;
  const poolGauge = (
    name: string,
    help: string,
    labelNames: string[],
    fill: (g: Gauge, pool: string, s: PoolStatus) => void,
  ): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        for (const [pool, s] of await statuses()) if (s) fill(this, pool, s);
      },
    });
  };
  // Unmet demand, for autoscalers (KEDA, the cluster autoscaler): requests and GPUs waiting per
  // template (or node shape when no template serves them).
  const demandGauge = (name: string, help: string, value: (d: DemandGroup) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['pool', 'template', 'shape'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const [pool, c] of await current().capacities) {
          for (const d of c?.demand ?? []) this.inc({ pool, template: d.template ?? '', shape: d.shape }, value(d));
        }
      },
    });
  };
  demandGauge(
    'allot_pool_demand_requests',
    'Queued requests waiting for resources or capacity, by the node that would serve them',
    (d) => d.requests,
  );
  demandGauge(
    'allot_pool_demand_gpus',
    'GPUs asked by queued requests waiting for resources or capacity',
    (d) => d.gpus,
  );
  new Gauge({
    name: 'allot_pool_up',
    help: 'Whether the pool answered its status query (1) or not (0)',
    labelNames: ['pool'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [pool, s] of await statuses()) this.set({ pool }, s ? 1 : 0);
    },
  });
  poolGauge(
    'allot_pool_gpus',
    'GPUs registered in the pool, per node and model',
    ['pool', 'node', 'model'],
    (g, pool, s) => {
      for (const n of s.nodes)
        for (const [model, count] of countBy(
          n.gpus,
          (d) => d.model,
          () => 1,
        ))
          g.inc({ pool, node: n.id, model }, count);
    },
  );
  poolGauge(
    'allot_pool_gpus_allocated',
    'GPUs granted to running steps, per node and model (shares of a GPU add up)',
    ['pool', 'node', 'model'],
    (g, pool, s) => {
      for (const n of s.nodes)
        for (const [model, used] of countBy(
          n.gpus,
          (d) => d.model,
          (d) => d.used,
        ))
          g.set({ pool, node: n.id, model }, round(used));
    },
  );
  poolGauge('allot_pool_cpu_cores', 'CPU cores offered, per node', ['pool', 'node'], (g, pool, s) => {
    for (const n of s.nodes) g.set({ pool, node: n.id }, n.cpu.capacityMilli / 1000);
  });
  poolGauge('allot_pool_cpu_cores_allocated', 'CPU cores granted, per node', ['pool', 'node'], (g, pool, s) => {
    for (const n of s.nodes) g.set({ pool, node: n.id }, n.cpu.usedMilli / 1000);
  });
  poolGauge('allot_pool_memory_bytes', 'Memory offered, per node', ['pool', 'node'], (g, pool, s) => {
    for (const n of s.nodes) g.set({ pool, node: n.id }, n.memory.capacityMiB * MiB);
  });
  poolGauge('allot_pool_memory_bytes_allocated', 'Memory granted, per node', ['pool', 'node'], (g, pool, s) => {
    for (const n of s.nodes) g.set({ pool, node: n.id }, n.memory.usedMiB * MiB);
  });
  poolGauge('allot_pool_nodes', 'Nodes by status (Ready, NotReady, Draining)', ['pool', 'status'], (g, pool, s) => {
    for (const status of ['Ready', 'NotReady', 'Draining']) g.set({ pool, status }, 0);
    for (const n of s.nodes) g.inc({ pool, status: n.status });
  });
  poolGauge('allot_pool_running_steps', 'Leases held by running steps, per team', ['pool', 'team'], (g, pool, s) => {
    for (const l of s.leases) g.inc({ pool, team: l.team });
  });
  poolGauge('allot_pool_queue_length', 'Requests waiting in the queue, per team', ['pool', 'team'], (g, pool, s) => {
    for (const t of s.queuedByTeam) g.set({ pool, team: t.team }, t.count);
  });
  poolGauge('allot_pool_queue_gpus', 'GPUs asked for by queued requests, per team', ['pool', 'team'], (g, pool, s) => {
    for (const t of s.queuedByTeam) g.set({ pool, team: t.team }, t.gpuMilli / 1000);
  });

  const wait = new Histogram({
    name: 'allot_step_wait_seconds',
    help: 'Time from submission to grant, per pool and team',
    labelNames: ['pool', 'team'],
    buckets: WAIT_BUCKETS,
    registers: [registry],
  });
  const preemptions = new Counter({
    name: 'allot_step_preemptions_total',
    help: 'Running steps preempted (they queue again and resume from their checkpoints)',
    labelNames: ['pool', 'team'],
    registers: [registry],
  });
  const requeues = new Counter({
    name: 'allot_step_requeues_total',
    help: 'Attempts interrupted and queued again, by reason (Preempted, NodeLost, LeaseExpired, NodeDraining, ...)',
    labelNames: ['pool', 'team', 'reason'],
    registers: [registry],
  });
  const outcomes = new Counter({
    name: 'allot_step_outcomes_total',
    help: 'Steps that ended, by outcome (succeeded, failed, cancelled)',
    labelNames: ['pool', 'team', 'outcome'],
    registers: [registry],
  });
  // Series that exist before the first event, so that a scrape shows them at 0.
  for (const pool of pools) {
    preemptions.inc({ pool, team: 'default' }, 0);
    for (const outcome of ['succeeded', 'failed', 'cancelled']) outcomes.inc({ pool, team: 'default', outcome }, 0);
  }
  return {
    allotMetrics: {
      stepState: {
        fn(info, state) {
          const labels = poolAndTeam(info);
          if (state === 'preempted') preemptions.inc(labels);
          if (state === 'succeeded' || state === 'failed' || state === 'cancelled')
            outcomes.inc({ ...labels, outcome: state });
        },
      },
      stepGranted: {
        fn(info, waitMs) {
          wait.observe(poolAndTeam(info), Math.max(0, waitMs) / 1000);
        },
      },
      stepRequeued: {
        fn(info, reason) {
          requeues.inc({ ...poolAndTeam(info), reason });
        },
      },
    },
  };
}

/** Sinks that count nothing: for workers without a metrics endpoint. */
export function noMetricsSinks(): InjectedSinks<AllotMetricsSinks> {
  const none = { fn: () => undefined };
  return { allotMetrics: { stepState: none, stepGranted: none, stepRequeued: none } };
}

/** Pool and team of the step that called, from its search attributes (the sink gets them as plain data). */
function poolAndTeam(info: WorkflowInfo): { pool: string; team: string } {
  // typedSearchAttributes loses its methods on the way out of the sandbox: read the plain form.
  const attributes = info.searchAttributes as Record<string, unknown[] | undefined> | undefined;
  const first = (key: string): string | undefined => {
    const v = attributes?.[key]?.[0];
    return typeof v === 'string' ? v : undefined;
  };
  return { pool: first('AllotPool') ?? 'unknown', team: first('AllotTeam') ?? 'default' };
}

async function fetchStatus(client: Client, pool: string): Promise<PoolStatus | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      // Counts per team come whole; the queue's rows are not needed.
      client.workflow.getHandle(poolWorkflowId(pool)).query(statusQuery, { queueLimit: 0 }),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), STATUS_TIMEOUT_MS))),
    ]);
  } catch {
    return undefined;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

function countBy<T>(items: readonly T[], key: (t: T) => string, value: (t: T) => number): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of items) out.set(key(item), (out.get(key(item)) ?? 0) + value(item));
  return out;
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** What the agent's metrics read. */
export interface AgentView {
  inventory: NodeSpec;
  ledger: LeaseLedger;
  running: Map<string, RunningLaunch>;
  gpu?: GpuUsageSource;
  draining: () => boolean;
}

/** Adds an agent's metrics to `registry`; returns the hook that counts ended launches. */
export function registerAgentMetrics(
  registry: Registry,
  view: AgentView,
): (input: LaunchInput, outcome: LaunchOutcome, usage?: StepUsage) => void {
  const node = view.inventory.id;
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge) => void): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        fill(this);
      },
    });
  };
  const models = new Map(view.inventory.gpus.map((g) => [g.index, g.model]));
  gauge('allot_node_gpus', 'GPUs of this node, per model', ['node', 'model'], (g) => {
    for (const [model, n] of countBy(
      view.inventory.gpus,
      (d) => d.model,
      () => 1,
    ))
      g.set({ node, model }, n);
  });
  gauge(
    'allot_node_gpus_allocated',
    "GPUs held by the leases in this node's ledger, per model (shares of a GPU add up)",
    ['node', 'model'],
    (g) => {
      for (const model of new Set(models.values())) g.set({ node, model }, 0);
      for (const claim of view.ledger.list())
        for (const d of claim.gpus) g.inc({ node, model: models.get(d.index) ?? 'unknown' }, d.milli / 1000);
    },
  );
  gauge('allot_node_cpu_cores', 'CPU cores this node offers', ['node'], (g) =>
    g.set({ node }, view.inventory.cpuMilli / 1000),
  );
  gauge('allot_node_memory_bytes', 'Memory this node offers', ['node'], (g) =>
    g.set({ node }, view.inventory.memoryMiB * MiB),
  );
  gauge('allot_node_draining', 'Whether the agent is draining (1) or taking new steps (0)', ['node'], (g) =>
    g.set({ node }, view.draining() ? 1 : 0),
  );
  gauge('allot_node_steps_running', 'Workloads running on this node', ['node'], (g) =>
    g.set({ node }, view.running.size),
  );
  const perStep = (name: string, help: string, value: (r: RunningLaunch) => number | undefined): void =>
    gauge(name, help, ['node', 'step', 'name'], (g) => {
      for (const r of view.running.values()) {
        const v = value(r);
        if (v !== undefined) g.set({ node, step: r.input.stepId, name: r.input.name }, v);
      }
    });
  perStep('allot_node_step_cpu_cores', 'CPU cores a running step uses (latest sample)', (r) => r.current().cpuCores);
  perStep('allot_node_step_memory_bytes', 'Memory a running step uses (latest sample)', (r) => {
    const m = r.current().memoryMiB;
    return m !== undefined ? m * MiB : undefined;
  });
  perStep('allot_node_step_memory_peak_bytes', 'Highest memory of a running step so far', (r) => {
    const m = r.usage().memoryMiB?.peak;
    return m !== undefined ? m * MiB : undefined;
  });
  perStep(
    'allot_node_step_gpu_utilization_percent',
    "Utilization of a running step's GPUs (latest sample)",
    (r) => r.current().gpuUtilPercent,
  );
  perStep('allot_node_step_gpu_memory_bytes', "GPU memory a running step's processes hold", (r) => {
    const m = r.current().gpuMemoryMiB;
    return m !== undefined ? m * MiB : undefined;
  });
  perStep('allot_node_step_requested_cpu_cores', 'CPU cores a running step asked for', (r) => r.input.requested?.cpu);
  perStep('allot_node_step_requested_memory_bytes', 'Memory a running step asked for', (r) =>
    r.input.requested ? r.input.requested.memoryMiB * MiB : undefined,
  );
  perStep('allot_node_step_memory_limit_bytes', 'Memory at which a running step is killed', (r) =>
    r.input.memoryLimitMiB !== undefined ? r.input.memoryLimitMiB * MiB : undefined,
  );
  if (view.gpu) {
    const gpu = view.gpu;
    gauge(
      'allot_node_gpu_utilization_percent',
      'Utilization of each GPU, from nvidia-smi (sampled while steps run)',
      ['node', 'gpu', 'model'],
      (g) => {
        for (const d of gpu.latest()?.gpus ?? [])
          if (d.utilizationPercent !== undefined)
            g.set({ node, gpu: String(d.index), model: models.get(d.index) ?? 'unknown' }, d.utilizationPercent);
      },
    );
  }
  const launches = new Counter({
    name: 'allot_node_launches_total',
    help: 'Launches that ended on this node, by outcome (succeeded, failed, memory_limit, time_limit, cancelled, handed_back, launch_failed)',
    labelNames: ['node', 'outcome'],
    registers: [registry],
  });
  const peakMemory = new Histogram({
    name: 'allot_node_step_memory_peak_ratio',
    help: 'Peak memory of ended steps over the memory they asked for (below 1: they asked for too much)',
    labelNames: ['node'],
    buckets: [0.1, 0.25, 0.5, 0.75, 0.9, 1, 1.25, 1.5, 2],
    registers: [registry],
  });
  const OUTCOMES: LaunchOutcome[] = [
    'succeeded',
    'failed',
    'memory_limit',
    'time_limit',
    'cancelled',
    'handed_back',
    'launch_failed',
  ];
  for (const outcome of OUTCOMES) launches.inc({ node, outcome }, 0);
  return (input, outcome, usage) => {
    launches.inc({ node, outcome });
    const peak = usage?.memoryMiB?.peak;
    if (peak !== undefined && input.requested && input.requested.memoryMiB > 0)
      peakMemory.observe({ node }, peak / input.requested.memoryMiB);
  };
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** `http://host:port/metrics`. */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves `registry` at `GET /metrics` on `host:port` (port 0: any free port). */
export function serveMetrics(registry: Registry, port: number, host = '0.0.0.0'): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || (url !== '/metrics' && url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    if (url === '/') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('allot metrics: GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const actual = (server.address() as AddressInfo).port;
      const shown = host === '0.0.0.0' || host === '::' ? 'localhost' : host;
      resolve({
        url: `http://${shown}:${actual}/metrics`,
        port: actual,
        close: () => new Promise((r) => server.close(() => r())),
      });
    });
  });
}
