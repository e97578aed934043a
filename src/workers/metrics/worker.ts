/**
 * The control worker's metrics: pool gauges (`allot_pool_*`) read from each pool's `status` and
 * `capacity` queries at scrape time, so they are the numbers `allot status` prints, and the step
 * metrics (`allot_step_*`, see step-events.ts).
 */
import type { Client } from '@temporalio/client';
import type { InjectedSinks } from '@temporalio/worker';
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';
import type { DemandGroup, PoolStatus } from '../../core';
import type { AllotMetricsSinks } from '../../workflows/sinks';
import { poolSnapshots } from './pool-snapshot';
import { registerStepMetrics } from './step-events';
import { MiB, countBy, round } from './units';

/** Node states `allot_pool_nodes` always shows, at 0 when no node is in them. */
const NODE_STATES = ['Ready', 'NotReady', 'Draining'];

/**
 * Adds the control worker's metrics for `pools` to `registry`; returns the sinks to give the
 * worker (`Worker.create({ sinks })`) so that step workflows can report their waits and outcomes.
 */
export function registerControlMetrics(
  registry: Registry,
  client: Client,
  pools: readonly string[],
): InjectedSinks<AllotMetricsSinks> {
  registerPoolGauges(registry, poolSnapshots(client, pools));
  return registerStepMetrics(registry, pools);
}

function registerPoolGauges(registry: Registry, snapshot: ReturnType<typeof poolSnapshots>): void {
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
        for (const [pool, s] of await snapshot().statuses) if (s) fill(this, pool, s);
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
        for (const [pool, c] of await snapshot().capacities) {
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
      for (const [pool, s] of await snapshot().statuses) this.set({ pool }, s ? 1 : 0);
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
  poolGauge(
    'allot_pool_team_gpus_allocated',
    'GPUs granted to running steps, per team (shares of a GPU add up)',
    ['pool', 'team'],
    (g, pool, s) => {
      const byTeam = countBy(
        s.leases,
        (l) => l.team,
        (l) => l.gpus.reduce((sum, d) => sum + d.milli, 0) / 1000,
      );
      for (const [team, gpus] of byTeam) g.set({ pool, team }, round(gpus));
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
  poolGauge(
    'allot_pool_custom_resources',
    'Custom resources offered (allot agent --resource), per node and resource',
    ['pool', 'node', 'resource'],
    (g, pool, s) => {
      for (const n of s.nodes)
        for (const [resource, c] of Object.entries(n.custom ?? {})) g.set({ pool, node: n.id, resource }, c.capacity);
    },
  );
  poolGauge(
    'allot_pool_custom_resources_allocated',
    'Custom resources granted to running steps, per node and resource',
    ['pool', 'node', 'resource'],
    (g, pool, s) => {
      for (const n of s.nodes)
        for (const [resource, c] of Object.entries(n.custom ?? {})) g.set({ pool, node: n.id, resource }, c.used);
    },
  );
  poolGauge('allot_pool_limit_max', 'Units of each named limit (allot limit set)', ['pool', 'limit'], (g, pool, s) => {
    for (const l of s.limits ?? []) g.set({ pool, limit: l.name }, l.max);
  });
  poolGauge(
    'allot_pool_limit_in_use',
    'Units of each named limit held by running steps',
    ['pool', 'limit'],
    (g, pool, s) => {
      for (const l of s.limits ?? []) g.set({ pool, limit: l.name }, l.inUse);
    },
  );
  poolGauge('allot_pool_nodes', 'Nodes by status (Ready, NotReady, Draining)', ['pool', 'status'], (g, pool, s) => {
    for (const status of NODE_STATES) g.set({ pool, status }, 0);
    for (const n of s.nodes) g.inc({ pool, status: n.status });
  });
  poolGauge('allot_pool_running_steps', 'Leases held by running steps, per team', ['pool', 'team'], (g, pool, s) => {
    for (const l of s.leases) g.inc({ pool, team: l.team });
  });
  poolGauge('allot_pool_queue_length', 'Requests waiting in the queue, per team', ['pool', 'team'], (g, pool, s) => {
    for (const t of s.queuedByTeam) g.set({ pool, team: t.team }, t.count);
  });
  poolGauge(
    'allot_pool_queue_by_reason',
    'Requests waiting in the queue, per reason (Resources, Priority, QuotaExhausted, LimitExhausted, Preempting, NoNodes, ...)',
    ['pool', 'reason'],
    (g, pool, s) => {
      for (const r of s.queuedByReason) g.set({ pool, reason: r.reason }, r.count);
    },
  );
  poolGauge('allot_pool_queue_gpus', 'GPUs asked for by queued requests, per team', ['pool', 'team'], (g, pool, s) => {
    for (const t of s.queuedByTeam) g.set({ pool, team: t.team }, t.gpuMilli / 1000);
  });
}
