import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core';
import {
  parseAlibabaNodes,
  parseAlibabaPods,
  parseTiresiasCluster,
  parseTiresiasJobs,
  tiresiasJobs,
} from '../../src/sim';

const message = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    if (err instanceof ValidationError) return err.message;
    throw err;
  }
  return '';
};

describe('trace readers', () => {
  it('reads Alibaba pods: shares of one GPU, whole GPUs, model alternatives and qos', () => {
    const pods = parseAlibabaPods(
      'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos\np0,6000,12288,1,460,,LS\np1,8000,1024,2,1000,V100M16|V100M32,BE\np2,1000,1024,0,0,,Burstable\n',
      'pods.csv',
    );
    expect(pods.map((p) => [p.resources.gpuMilli, p.resources.gpuModels, p.priority])).toEqual([
      [460, [], 100],
      [2000, ['V100M16', 'V100M32'], -100],
      [0, [], 0],
    ]);
  });

  it('reads Alibaba nodes with their GPUs', () => {
    const [n] = parseAlibabaNodes('sn,cpu_milli,memory_mib,gpu,model\nnode-0,64000,262144,2,P100\n', 'nodes.csv');
    expect(n).toMatchObject({
      id: 'node-0',
      cpuMilli: 64000,
      memoryMiB: 262144,
      gpus: [
        { index: 0, model: 'P100' },
        { index: 1, model: 'P100' },
      ],
    });
  });

  it.each([
    {
      name: 'a missing column',
      run: () => parseAlibabaPods('name,cpu_milli\n', 'pods.csv'),
      expected:
        /pods\.csv: line 1 must be a header with the columns name,cpu_milli,memory_mib,num_gpu,gpu_milli; missing memory_mib, num_gpu, gpu_milli/,
    },
    {
      name: 'a bad number',
      run: () => parseAlibabaPods('name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,lots,1,0,0\n', 'pods.csv'),
      expected: /pods\.csv\.line 2\.cpu_milli: must be a whole number >= 0, got "lots"/,
    },
    {
      name: 'a share above one GPU',
      run: () => parseAlibabaPods('name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,1500\n', 'pods.csv'),
      expected: /gpu_milli: must be 0\.\.1000/,
    },
    {
      name: 'a Tiresias job with no GPUs',
      run: () => parseTiresiasJobs('job_id,num_gpu,submit_time,duration\n1,0,0,10\n', 'jobs.csv'),
      expected: /jobs\.csv\.line 2\.num_gpu: must be at least 1/,
    },
  ])('rejects $name, naming file, line, column and value', ({ run, expected }) => {
    expect(message(run)).toMatch(expected);
  });

  it('turns Tiresias jobs larger than a node into spread gangs of node-sized replicas, or packed single GPUs', () => {
    const jobs = tiresiasJobs(
      parseTiresiasJobs('job_id,num_gpu,submit_time,duration\n1,8,0,10\n2,2,5,10\n3,6,5,10\n', 'j'),
      4,
    );
    expect(jobs.map((j) => [j.replicas, j.resources.gpuMilli, j.replicaPlacement])).toEqual([
      [2, 4000, undefined],
      [1, 2000, undefined],
      [6, 1000, 'pack'],
    ]);
  });

  it('expands a Tiresias cluster spec into nodes', () => {
    const nodes = parseTiresiasCluster(
      'num_switch,num_node_p_switch,num_gpu_p_node,num_cpu_p_node,mem_p_node\n2,3,4,8,16\n',
      'spec',
    );
    expect(nodes).toHaveLength(6);
    expect(nodes[0]).toMatchObject({ id: 'n1', cpuMilli: 8000, memoryMiB: 16384 });
  });
});
