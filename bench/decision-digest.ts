/**
 * A digest of the scheduler's decisions, to check that a refactor changes none of them:
 *
 *   npx tsx bench/decision-digest.ts [--traces DIR] [--snapshots 2000]
 *
 * It prints one sha256 per part: `allot simulate` (the compiled CLI, so `npm run build` first) on
 * the public traces in DIR (Tiresias and Alibaba GPU v2023, read in place), and a number of random
 * pools driven through the pool's state machine (nodes join, leave and go silent; steps acquire,
 * renew and release; quotas and policies change), with the effects of every call, the status after
 * each, and `decide()` on each snapshot along the way. Run it before and after; the lines must match.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { NodeSpec, SchedulingPolicy, TeamQuota } from '../src/core';
import { SeededRandom } from '../src/chaos/random';
import { PoolState, decide, emptyPoolState, parseResources } from '../src/core';

const args = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const tracesDir = option('--traces');
const snapshots = Number(option('--snapshots') ?? 2000);

const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
const root = path.resolve(__dirname, '..');

function simulateDigest(dir: string): string {
  const t = (p: string) => path.join(dir, p);
  const tiresias = (nodes: string, ...more: string[]) => [
    ...['--trace', t('tiresias/60_job.csv'), '--nodes', t(`tiresias/${nodes}`), '--format', 'tiresias'],
    ...more,
  ];
  const alibaba = (pods: string, ...more: string[]) => [
    ...['--trace', t(`alibaba-gpu-v2023/${pods}`), '--nodes', t('alibaba-gpu-v2023/openb_node_list_gpu_node.csv')],
    ...more,
  ];
  const runs: string[][] = [
    tiresias('cluster_spec.csv'),
    tiresias('n32g4.csv', '--compare', 'backfill'),
    tiresias('n32g4.csv', '--compare', 'fairShare'),
    tiresias('cluster_spec.csv', '--compare', 'preemption'),
    alibaba('openb_pod_list_default.csv', '--format', 'alibaba', '--limit', '1500', '--compare', 'placement'),
    alibaba('openb_pod_list_gpuspec33.csv', '--format', 'alibaba', '--limit', '1500', '--compare', 'preemption'),
    ['--mode', 'packing', ...alibaba('openb_pod_list_gpushare100.csv', '--limit', '3000')],
  ];
  const out = runs.map((r) =>
    execFileSync(process.execPath, [path.join(root, 'bin/allot.js'), 'simulate', '--json', ...r], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    }),
  );
  return sha(out.join('\n'));
}

function pools(count: number): string {
  const hash = createHash('sha256');
  for (let seed = 1; seed <= count; seed++) {
    const random = new SeededRandom(seed);
    const r = () => random.next();
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
    const pool = new PoolState(emptyPoolState(`p${seed}`));
    let now = 0;
    let n = 0;
    let q = 0;
    const out: unknown[] = [];
    const policy: Partial<SchedulingPolicy> = {
      placement: pick(['fragmentation-aware', 'best-fit'] as const),
      preemption: r() < 0.6,
      backfill: r() < 0.6,
      fairShare: r() < 0.4,
      gracePeriodMs: pick([0, 5_000, 30_000]),
    };
    pool.setPolicy(policy);
    if (r() < 0.5) {
      const teams: TeamQuota[] = [
        { name: 'vision', nominal: { gpu: 2000 }, borrowingLimit: { gpu: 1000 } },
        { name: 'nlp', nominal: { gpu: 2000 } },
      ];
      teams.forEach((t) => pool.setTeamQuota(t));
    }
    const steps = 20 + Math.floor(r() * 40);
    for (let i = 0; i < steps; i++) {
      now += Math.floor(r() * 20_000);
      const op = r();
      let result: unknown;
      if (op < 0.15 || n === 0) {
        const gpus = pick([0, 1, 2, 4]);
        const spec: NodeSpec = {
          id: `n${n++}`,
          cpuMilli: pick([2, 8, 16]) * 1000,
          memoryMiB: pick([8, 32, 64]) * 1024,
          gpus: Array.from({ length: gpus }, (_, index) => ({ index, model: pick(['A100', 'T4']), memoryMiB: 40_960 })),
          labels: { zone: pick(['a', 'b']) },
        };
        result = pool.registerNode(spec, now);
      } else if (op < 0.55) {
        const parsed = parseResources({
          gpu: pick([0, 0.25, 0.5, 1, 1, 2, 3]),
          cpu: pick([0, 1, 2, 4]),
          memory: pick(['0', '1Gi', '8Gi']),
          ...(r() < 0.2 ? { gpuModel: pick(['A100', 'T4']) } : {}),
        });
        if (!parsed.request) continue;
        const id = `r${q++}`;
        result = pool.acquire(
          {
            requestId: id,
            owner: { kind: 'workflow', workflowId: `wf-${id}` },
            resources: parsed.request,
            priority: pick([-1, 0, 0, 1, 5]),
            team: pick(['vision', 'nlp', 'other']),
            preemptible: r() < 0.5,
            ...(r() < 0.4 ? { timeLimitMs: pick([10_000, 60_000, 600_000]) } : {}),
          },
          now,
        );
      } else if (op < 0.7 && q > 0) {
        const id = `r${Math.floor(r() * q)}`;
        result = pool.handleRelease(id, now, r() < 0.2 ? { requeue: true } : {});
      } else if (op < 0.8 && q > 0) {
        const id = `r${Math.floor(r() * q)}`;
        result = pool.handleRenew({ requestId: id, workflowId: `wf-${id}` }, now);
      } else if (op < 0.9) {
        const id = `n${Math.floor(r() * n)}`;
        result = [pool.heartbeat(id, now), r() < 0.1 ? pool.setDraining(id, r() < 0.5) : null];
      } else {
        result = pool.checkHealth(now);
      }
      const effects = pool.schedule(now);
      const data = pool.toJSON();
      const decided = decide(
        { nodes: data.nodes, leases: data.leases, queue: data.queue, teams: data.teams ?? [] },
        { policy: { ...policy }, now },
      );
      out.push([result, effects, decided, pool.status(now)]);
    }
    hash.update(JSON.stringify(out));
  }
  return hash.digest('hex');
}

if (tracesDir) {
  if (!existsSync(tracesDir)) throw new Error(`--traces ${tracesDir}: no such folder`);
  console.log(`simulate on traces  ${simulateDigest(tracesDir)}`);
}
console.log(`${snapshots} random pools  ${pools(snapshots)}`);
