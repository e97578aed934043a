/**
 * The simulator on the public traces in ../shared/data/traces (read in place): Tiresias (Gu et
 * al., NSDI '19) and Alibaba GPU v2023 (Weng et al., USENIX ATC '23).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  SIMULATION_POLICY,
  computeMetrics,
  parseAlibabaNodes,
  parseAlibabaPods,
  parseTiresiasCluster,
  parseTiresiasJobs,
  runPacking,
  simulate,
  tiresiasJobs,
} from '../../src/sim';

// The repository root's parent holds shared/ (here and in CI, where shared/ is copied beside the clone).
const TRACES = path.resolve(__dirname, '../../../shared/data/traces');
const present = existsSync(TRACES);
if (!present) process.stderr.write(`[allot tests] traces not found at ${TRACES}: trace tests skipped\n`);
const read = (p: string) => readFileSync(path.join(TRACES, p), 'utf8');

describe.skipIf(!present)("Tiresias 60-job trace (Gu et al., NSDI '19)", () => {
  it.each(['cluster_spec.csv', 'n32g4.csv'])('on %s, backfill waits no longer on average than FIFO', (spec) => {
    const nodes = parseTiresiasCluster(read(`tiresias/${spec}`), spec);
    const jobs = tiresiasJobs(parseTiresiasJobs(read('tiresias/60_job.csv'), '60_job.csv'), 4);
    const meanWait = (backfill: boolean) => {
      const s = { nodes, teams: [], jobs, policy: { ...SIMULATION_POLICY, backfill } };
      return computeMetrics(s, simulate(s));
    };
    const fifo = meanWait(false);
    const bf = meanWait(true);
    expect(fifo.completed).toBe(60);
    expect(bf.meanWait ?? Infinity).toBeLessThanOrEqual(fifo.meanWait ?? 0);
  });

  it('on a smaller cluster (2 nodes × 4 GPUs), backfill cuts the mean wait', () => {
    const nodes = parseTiresiasCluster(
      'num_switch,num_node_p_switch,num_gpu_p_node,num_cpu_p_node,mem_p_node\n1,2,4,128,254\n',
      'small',
    );
    const jobs = tiresiasJobs(parseTiresiasJobs(read('tiresias/60_job.csv'), '60_job.csv'), 4);
    const wait = (backfill: boolean) => {
      const s = { nodes, teams: [], jobs, policy: { ...SIMULATION_POLICY, backfill } };
      return computeMetrics(s, simulate(s)).meanWait ?? 0;
    };
    expect(wait(true)).toBeLessThan(wait(false));
  });
});

describe.skipIf(!present)("Alibaba GPU v2023 packing (Weng et al., USENIX ATC '23)", () => {
  it('fragmentation-aware leaves at least 30% fewer GPUs unallocated than best-fit at 100% arrival', () => {
    const dir = 'alibaba-gpu-v2023';
    const nodes = parseAlibabaNodes(read(`${dir}/openb_node_list_gpu_node.csv`), 'nodes');
    const tasks = parseAlibabaPods(read(`${dir}/openb_pod_list_default.csv`), 'pods').map((t) => t.resources);
    const fgd = runPacking(nodes, tasks, 'fragmentation-aware');
    const bf = runPacking(nodes, tasks, 'best-fit');
    expect(fgd.unallocatedGpuShare).toHaveLength(4);
    // The goal of the FGD experiment (the paper reports up to 49%); exact gradients gave 26%.
    expect(fgd.unallocatedGpuShare[3] ?? 1).toBeLessThanOrEqual((bf.unallocatedGpuShare[3] ?? 0) * 0.7);
  });
});
