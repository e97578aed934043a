/**
 * Benchmark of one scheduling cycle: `decide()` over a snapshot of 1,000 nodes (8 GPUs each) and
 * 10,000 pending requests, for fragmentation-aware placement (the default) and best-fit in the same
 * run. The target is at most 50 ms per decision. Run alone with `npx tsx bench/core-decide.ts`; `npm run bench` runs it as figure 5.
 *
 * Snapshots (seeded, so every run measures the same input):
 * - busy: 90% of GPUs leased; request shapes after the Alibaba GPU trace (shares of a GPU, 1-8 GPUs).
 * - busy + preemption: as busy, with preemptible leases below the queue's top priority.
 * - draining: half of the GPUs free, so a cycle grants hundreds of requests.
 */
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Lease, NodeRecord, PendingRequest, PlacementPolicyName, ResourceRequest, Snapshot } from '../src/core';
import { decide } from '../src/core';

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SHAPES: [gpuMilli: number, cpu: number, weight: number][] = [
  [1000, 12, 48],
  [0, 8, 13],
  [810, 4, 13],
  [470, 6, 9],
  [320, 4, 4],
  [650, 6, 3],
  [2000, 24, 4],
  [4000, 48, 3],
  [8000, 64, 3],
];

function shape(rand: () => number): ResourceRequest {
  const total = SHAPES.reduce((s, x) => s + x[2], 0);
  let pick = rand() * total;
  for (const [gpuMilli, cpu, w] of SHAPES) {
    if ((pick -= w) <= 0)
      return { cpuMilli: cpu * 1000, memoryMiB: cpu * 4096, gpuMilli, gpuMemoryMiB: 0, gpuModels: [], labels: {} };
  }
  return { cpuMilli: 1000, memoryMiB: 1024, gpuMilli: 1000, gpuMemoryMiB: 0, gpuModels: [], labels: {} };
}

function buildSnapshot(seed: number, leasedShare: number, preemptible: boolean): Snapshot {
  const rand = prng(seed);
  const nodes: NodeRecord[] = Array.from({ length: 1000 }, (_, i) => ({
    spec: {
      id: `node-${String(i).padStart(4, '0')}`,
      cpuMilli: 96_000,
      memoryMiB: 768 * 1024,
      gpus: Array.from({ length: 8 }, (_, index) => ({ index, model: i % 4 === 0 ? 'T4' : 'A100', memoryMiB: 81_920 })),
      labels: {},
    },
    status: 'Ready',
    registeredAt: 0,
  }));
  const leases: Lease[] = [];
  for (const n of nodes) {
    const busy = Math.round(8 * leasedShare + (rand() < 0.5 ? -1 : 1) * (rand() < 0.3 ? 1 : 0));
    for (let g = 0; g < Math.min(8, Math.max(0, busy)); g++) {
      leases.push({
        leaseId: `${n.spec.id}-${g}`,
        requestId: `run-${n.spec.id}-${g}`,
        owner: { kind: 'client', name: 'bench' },
        nodeId: n.spec.id,
        cpuMilli: 8000,
        memoryMiB: 32_768,
        gpus: [{ index: g, milli: 1000, memoryMiB: 81_920 }],
        priority: 0,
        team: `team-${g % 4}`,
        label: `run-${g}`,
        submittedAt: 0,
        grantedAt: Math.floor(rand() * 1_000_000),
        timeLimitMs: 3_600_000 + Math.floor(rand() * 7_200_000),
        preemptible,
      });
    }
  }
  const queue: PendingRequest[] = Array.from({ length: 10_000 }, (_, i) => ({
    requestId: `req-${i}`,
    owner: { kind: 'client', name: 'bench' },
    resources: shape(rand),
    priority: preemptible && i < 50 ? 10 : 0,
    team: `team-${i % 4}`,
    label: `req-${i}`,
    submittedAt: 1_000_000 + i,
    seq: i,
    reason: 'Pending',
    message: '',
    timeLimitMs: 600_000 + Math.floor(rand() * 3_600_000),
    preemptible: true,
  }));
  return { nodes, leases, queue };
}

/** One case's timing, ms. */
export interface Timing {
  median: number;
  p95: number;
  /** Median CPU time (user + system) of the process: less sensitive than wall time to a busy machine. */
  cpu: number;
  grants: number;
}

function measure(s: Snapshot, placement: PlacementPolicyName, runs: number): Timing {
  const times: number[] = [];
  const cpu: number[] = [];
  let grants = 0;
  for (let i = 0; i < runs + 2; i++) {
    const c = process.cpuUsage();
    const t = performance.now();
    const d = decide(s, { now: 2_000_000, policy: { placement } });
    const ms = performance.now() - t;
    const used = process.cpuUsage(c);
    if (i >= 2) {
      // The first runs warm the JIT.
      times.push(ms);
      cpu.push((used.user + used.system) / 1000);
    }
    grants = d.grants.length;
  }
  times.sort((x, y) => x - y);
  cpu.sort((x, y) => x - y);
  return {
    median: times[Math.floor(times.length / 2)] ?? 0,
    p95: times[Math.ceil(times.length * 0.95) - 1] ?? 0,
    cpu: cpu[Math.floor(cpu.length / 2)] ?? 0,
    grants,
  };
}

/** One snapshot under one placement policy. */
export interface CoreDecideRow {
  snapshot: string;
  placement: PlacementPolicyName;
  /** Wall time, ms. */
  median: number;
  p95: number;
  /** CPU time of the process, ms (median). */
  cpu: number;
  grants: number;
  /** Median wall time relative to best-fit on the same snapshot. */
  vsBestFit: number;
}

/** Measures every snapshot under both placements, `runs` times each (after two warm-up runs). */
export function coreDecideRows(runs: number): CoreDecideRow[] {
  const cases: [string, Snapshot][] = [
    ['busy (90% leased)', buildSnapshot(1, 0.9, false)],
    ['busy + preemption', buildSnapshot(2, 0.9, true)],
    ['draining (50% leased)', buildSnapshot(3, 0.5, false)],
  ];
  const rows: CoreDecideRow[] = [];
  for (const [name, s] of cases) {
    const bf = measure(s, 'best-fit', runs);
    const fgd = measure(s, 'fragmentation-aware', runs);
    for (const [placement, r] of [
      ['fragmentation-aware', fgd],
      ['best-fit', bf],
    ] as const) {
      rows.push({ snapshot: name, placement, ...r, vsBestFit: r.median / bf.median });
    }
  }
  return rows;
}

function main(): void {
  const runs = Number(process.env.BENCH_RUNS ?? 20);
  console.log(
    `decide(): 1,000 nodes x 8 GPUs, 10,000 pending requests; median and p95 of ${runs} runs (target: <= 50 ms)`,
  );
  console.log(
    `load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')} on ${cpus().length} CPUs (wall times suffer on a busy machine)`,
  );
  console.log('snapshot                  placement             median     p95  median CPU  grants  vs best-fit');
  for (const r of coreDecideRows(runs)) {
    console.log(
      `${r.snapshot.padEnd(25)} ${r.placement.padEnd(20)} ${r.median.toFixed(1).padStart(7)}ms ${r.p95.toFixed(1).padStart(6)}ms ${r.cpu.toFixed(1).padStart(9)}ms ${String(r.grants).padStart(7)}  ${r.vsBestFit.toFixed(2)}x`,
    );
  }
}

if (require.main === module) main();
