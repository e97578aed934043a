/**
 * A node agent's metrics (`allot_node_*`): the node's GPUs total and allocated per model from its
 * own ledger, running steps with their sampled CPU, memory and GPU use beside what they asked for,
 * launches by outcome, whether the agent is draining, and its traffic with the store.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { LaunchOutcome, LeaseLedger, RunningLaunch } from '../../activities';
import type { StoreEvents } from '../../activities/context';
import type { GpuUsageSource } from '../../activities/monitor';
import type { NodeSpec } from '../../core';
import type { LaunchInput } from '../../workflows/step-types';
import type { StepUsage } from '../../workflows/usage-types';
import { MiB, countBy } from './units';

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

/** Adds the counters of an agent's traffic with the store to `registry`; returns what counts them. */
export function registerStoreMetrics(registry: Registry, node: string): StoreEvents {
  const bytes = new Counter({
    name: 'allot_node_store_bytes_total',
    help: 'Bytes this node moved to and from the store, by what (checkpoint, artifact) and direction (upload, download)',
    labelNames: ['node', 'what', 'direction'],
    registers: [registry],
  });
  const failures = new Counter({
    name: 'allot_node_checkpoint_save_failures_total',
    help: 'Checkpoint saves to the store that failed (each is tried again; the workload goes on)',
    labelNames: ['node'],
    registers: [registry],
  });
  for (const what of ['checkpoint', 'artifact'])
    for (const direction of ['upload', 'download']) bytes.inc({ node, what, direction }, 0);
  failures.inc({ node }, 0);
  return {
    transferred: (what, direction, n) => bytes.inc({ node, what, direction }, n),
    checkpointSaveFailed: () => failures.inc({ node }),
  };
}
