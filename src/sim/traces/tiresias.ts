/**
 * Readers for the Tiresias simulator inputs ("Tiresias: A GPU Cluster Manager for Distributed Deep
 * Learning", Gu et al., NSDI '19): job lists `job_id,num_gpu,submit_time,iterations,model_name,duration,interval`
 * and cluster specs `num_switch,num_node_p_switch,num_gpu_p_node,num_cpu_p_node,mem_p_node`.
 */
import type { NodeSpec } from '../../core';
import { ValidationError } from '../../core';
import { parseCsv, readRows, wholeNumber } from '../csv';
import type { SimJob } from '../scenario';
import { MAX_GPUS_PER_NODE, MAX_SIM_NODES } from '../scenario';

/** One job of a Tiresias job list. */
export interface TiresiasJob {
  id: string;
  gpus: number;
  /** Seconds. */
  submit: number;
  /** Seconds of run time. */
  duration: number;
  model: string;
}

/** Reads a job list. */
export function parseTiresiasJobs(text: string, file: string): TiresiasJob[] {
  const rows = parseCsv(text, file, ['job_id', 'num_gpu', 'submit_time', 'duration']);
  return readRows(rows, file, (row, issues) => {
    const gpus = wholeNumber(row, 'num_gpu', issues);
    const submit = wholeNumber(row, 'submit_time', issues);
    const duration = wholeNumber(row, 'duration', issues);
    if (gpus === 0)
      issues.push({
        code: 'invalid_field',
        path: [`line ${row.line}`, 'num_gpu'],
        message: 'must be at least 1, got "0"',
      });
    if (duration === 0)
      issues.push({
        code: 'invalid_field',
        path: [`line ${row.line}`, 'duration'],
        message: 'must be at least 1 second, got "0"',
      });
    if (gpus === undefined || submit === undefined || duration === undefined) return undefined;
    return { id: row.fields.job_id || String(row.line), gpus, submit, duration, model: row.fields.model_name ?? '' };
  });
}

/** Reads a cluster spec (one line of shape) into nodes `n1..nN`, each with its GPUs, CPUs and memory (GB). */
export function parseTiresiasCluster(text: string, file: string): NodeSpec[] {
  const rows = parseCsv(text, file, [
    'num_switch',
    'num_node_p_switch',
    'num_gpu_p_node',
    'num_cpu_p_node',
    'mem_p_node',
  ]);
  const shapes = readRows(rows, file, (row, issues) => {
    const switches = wholeNumber(row, 'num_switch', issues);
    const perSwitch = wholeNumber(row, 'num_node_p_switch', issues);
    const gpus = wholeNumber(row, 'num_gpu_p_node', issues);
    const cpus = wholeNumber(row, 'num_cpu_p_node', issues);
    const mem = wholeNumber(row, 'mem_p_node', issues);
    if (
      switches === undefined ||
      perSwitch === undefined ||
      gpus === undefined ||
      cpus === undefined ||
      mem === undefined
    )
      return undefined;
    if (gpus > MAX_GPUS_PER_NODE) {
      issues.push({
        code: 'invalid_field',
        path: [`line ${row.line}`, 'num_gpu_p_node'],
        message: `must be at most ${MAX_GPUS_PER_NODE}, got ${gpus}`,
      });
    }
    if (switches * perSwitch > MAX_SIM_NODES) {
      issues.push({
        code: 'invalid_field',
        path: [`line ${row.line}`, 'num_switch'],
        message: `num_switch × num_node_p_switch must be at most ${MAX_SIM_NODES} nodes, got ${switches} × ${perSwitch}`,
      });
    }
    return { nodes: switches * perSwitch, gpus, cpus, mem };
  });
  if (shapes.length === 0) {
    throw new ValidationError([{ code: 'empty', path: [file], message: 'has no cluster shape line after the header' }]);
  }
  if (shapes.reduce((sum, s) => sum + s.nodes, 0) > MAX_SIM_NODES) {
    throw new ValidationError([
      {
        code: 'too_many',
        path: [file],
        message: `describes more than ${MAX_SIM_NODES} nodes, the most the simulator takes`,
      },
    ]);
  }
  const nodes: NodeSpec[] = [];
  for (const s of shapes) {
    for (let i = 0; i < s.nodes; i++) {
      nodes.push({
        id: `n${nodes.length + 1}`,
        cpuMilli: s.cpus * 1000,
        memoryMiB: s.mem * 1024,
        gpus: Array.from({ length: s.gpus }, (_, index) => ({ index, model: 'GPU', memoryMiB: 0 })),
        labels: {},
      });
    }
  }
  return nodes;
}

/**
 * Turns Tiresias jobs into simulator jobs. A job asking for more GPUs than a node has becomes a
 * gang of node-sized replicas, one per node; when the count does not divide, a gang of single GPUs
 * packed several to a node (spread, it would need a node per GPU). Tiresias jobs name no CPU or
 * memory, so they ask for none. The time limit is the duration.
 */
export function tiresiasJobs(jobs: readonly TiresiasJob[], gpusPerNode: number): SimJob[] {
  return jobs.map((j) => {
    const perNode = Math.max(1, gpusPerNode);
    const divides = j.gpus % perNode === 0;
    const replicas = j.gpus <= perNode ? 1 : divides ? j.gpus / perNode : j.gpus;
    const gpusEach = j.gpus / replicas;
    const job: SimJob = {
      name: `job-${j.id}`,
      team: 'default',
      submitMs: j.submit * 1000,
      durationMs: j.duration * 1000,
      timeLimitMs: j.duration * 1000,
      priority: 0,
      preemptible: true,
      replicas,
      resources: { cpuMilli: 0, memoryMiB: 0, gpuMilli: gpusEach * 1000, gpuMemoryMiB: 0, gpuModels: [], labels: {} },
    };
    if (replicas > 1 && !divides) job.replicaPlacement = 'pack';
    return job;
  });
}
