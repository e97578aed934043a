/**
 * A chaos run, in order:
 *
 * 1. start a Temporal dev server on a database file, `allot worker` and several `allot agent`s,
 *    each a separate process;
 * 2. keep a few pipelines of steps in flight, while a seeded schedule kill -9s an agent, the
 *    control worker or the server at random moments and starts it again, and (with partitions)
 *    cuts an agent off from the server for a while through a TCP proxy of its own;
 * 3. after the last kill, let every pipeline finish;
 * 4. check the invariants (see invariants.ts) on what the workloads recorded, on the pool's status
 *    sampled every second and at the end, and on the agents' ledgers.
 *
 * The parts: disruptions.ts (the kill and partition schedules, the keeper), pipeline-runs.ts (the
 * pipelines in flight), run-client.ts (the run's Temporal client), evidence.ts (what the run left
 * on disk) and invariants.ts (the checks).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { PoolStatus } from '../core';
import { clientDataConverter, generateCodecKey } from '../workers/codec';
import { DEFAULT_POOL, poolWorkflowId, setHealthPolicyUpdate, statusQuery } from '../workflows/messages';
import type { Kill, Partition } from './disruptions';
import { Disruptions } from './disruptions';
import { dedupe, readLedger, readRuns, workflowTaskFailures, workloadAlive } from './evidence';
import type { PipelineOutcome, Violation } from './invariants';
import { checkFencing, checkFinal, checkPoolSample, checkRuns } from './invariants';
import { drivePipelines } from './pipeline-runs';
import { PartitionProxy } from './proxy';
import { ManagedProcess, agentSpec, devServerSpec, workerSpec } from './processes';
import { RunClient } from './run-client';
import { writeWorkload } from './workload';

export type { Kill, Partition } from './disruptions';
export { pipelinePlan } from './pipeline-runs';

/** What to run. */
export interface ChaosOptions {
  /** Seed of the kill schedule and of the pipelines' shapes. */
  seed: number;
  /** Kills to make. */
  kills: number;
  /** Network partitions of one agent from the server to make. @default 0 */
  partitions?: number;
  /** Agents (nodes). @default 3 */
  agents: number;
  /** GPUs of each agent. @default 2 */
  gpusPerAgent: number;
  /** Steps per pipeline. @default 4 */
  stepsPerPipeline: number;
  /** Pipelines kept in flight while kills go on. @default 3 */
  concurrency: number;
  /** Pipelines to run at least (also without kills). @default concurrency */
  minPipelines: number;
  /** Seconds between kills: drawn from [min, max]. @default [2, 6] */
  gapSeconds: [number, number];
  /** Free TCP port for the dev server. */
  port: number;
  /** Folder of the run: server database, logs, ledgers, run records. */
  dir: string;
  /** Encrypt payloads with a fresh ALLOT_CODEC_KEY. @default true */
  codec: boolean;
  /** Longest wait for the pipelines after the last kill, ms. @default 600000 */
  finishTimeoutMs: number;
  /** Progress lines. */
  log: (line: string) => void;
}

/** What happened, and what broke. */
export interface ChaosReport {
  seed: number;
  kills: Kill[];
  partitions: Partition[];
  pipelines: PipelineOutcome[];
  stepsSubmitted: number;
  stepsCompleted: number;
  runs: number;
  /** Runs that did not reach their end (killed, stopped, handed back). */
  interruptedRuns: number;
  poolSamples: number;
  unplannedExits: string[];
  /** Distinct reasons the control worker failed workflow tasks (nondeterminism, say), from its log. */
  workflowTaskFailures: string[];
  violations: Violation[];
  durationMs: number;
  dir: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The pool's node-lost time in a run with partitions, ms (the shortest allowed). */
const PARTITION_NODE_LOST_MS = 30_000;

/** Runs the chaos scenario and checks it. */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const began = Date.now();
  const at = (): string => `${((Date.now() - began) / 1000).toFixed(1).padStart(6)}s`;
  const say = (line: string): void => o.log(`${at()} ${line}`);
  for (const sub of ['logs', 'runs', 'agents']) mkdirSync(path.join(o.dir, sub), { recursive: true });
  const runsDir = path.join(o.dir, 'runs');
  const workload = writeWorkload(o.dir);
  const address = `127.0.0.1:${o.port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: 'default',
    ALLOT_CODEC_KEY: o.codec ? generateCodecKey() : '',
    ALLOT_LOG_LEVEL: 'info',
  };
  const dataConverter = clientDataConverter(env);
  // The run's key, beside its database, to read or replay its histories afterwards.
  if (env.ALLOT_CODEC_KEY) writeFileSync(path.join(o.dir, 'codec-key'), `${env.ALLOT_CODEC_KEY}\n`, { mode: 0o600 });
  const logFile = (name: string): string => path.join(o.dir, 'logs', `${name}.log`);
  const server = new ManagedProcess(devServerSpec(path.join(o.dir, 'temporal.db'), o.port, logFile('server')));
  const worker = new ManagedProcess(workerSpec(env, logFile('worker')));
  const nodes = Array.from({ length: o.agents }, (_, i) => `chaos-n${i + 1}`);
  // Each agent reaches the server through a proxy of its own, which a partition cuts.
  const proxies = nodes.map(() => new PartitionProxy({ host: '127.0.0.1', port: o.port }));
  for (const p of proxies) await p.start();
  const agents = nodes.map(
    (id, i) =>
      new ManagedProcess(
        agentSpec(
          id,
          o.gpusPerAgent,
          path.join(o.dir, 'agents'),
          { ...env, TEMPORAL_ADDRESS: proxies[i]?.address ?? address },
          logFile(id),
        ),
      ),
  );
  const all = [server, worker, ...agents];
  const client = new RunClient(address, dataConverter);
  const violations: Violation[] = [];
  let poolSamples = 0;

  say(`starting the Temporal server, the control worker and ${o.agents} agents (logs in ${o.dir}/logs)`);
  await server.start();
  await worker.start();
  for (const a of agents) await a.start();

  const disruptions = new Disruptions(
    { server, worker, agents, nodes, proxies },
    { seed: o.seed, kills: o.kills, partitions: o.partitions ?? 0, gapSeconds: o.gapSeconds },
    began,
    violations,
    say,
  );
  const keeper = disruptions.keepAlive();

  let sampling = false;
  const sampler = setInterval(() => {
    if (sampling) return; // the previous query still waits for the server
    sampling = true;
    void client
      .use((c) => c.workflow.getHandle(poolWorkflowId(DEFAULT_POOL)).query(statusQuery))
      .then((status) => {
        if (!status) return;
        poolSamples++;
        violations.push(...checkPoolSample(status, Date.now()));
      })
      .catch(() => undefined)
      .finally(() => (sampling = false));
  }, 1_000);

  if ((o.partitions ?? 0) > 0) {
    // The shortest node-lost time: agents fence themselves after 10 s cut off, the pool gives up
    // on a node after 30 s.
    await client.use((c) =>
      c.workflow
        .getHandle(poolWorkflowId(DEFAULT_POOL))
        .executeUpdate(setHealthPolicyUpdate, { args: [{ nodeLostAfterMs: PARTITION_NODE_LOST_MS }] }),
    );
  }

  let disruptionsOver = false;
  const disrupted = disruptions.run().then(() => {
    disruptionsOver = true;
  });

  // Pipelines: keep `concurrency` in flight until the kills are done, then let them finish.
  const { outcomes, expectedSteps, completedSteps } = await drivePipelines(client, {
    seed: o.seed,
    stepsPerPipeline: o.stepsPerPipeline,
    concurrency: o.concurrency,
    minPipelines: o.minPipelines,
    finishTimeoutMs: o.finishTimeoutMs,
    command: (ms) => [process.execPath, workload, runsDir, String(ms)],
    disruptionsOver: () => disruptionsOver,
    stuck: () => disruptions.stuck,
    say,
  });
  await disrupted;
  say('all pipelines ended; checking the invariants');

  // The end state: nothing held, nothing queued, empty ledgers.
  let final: PoolStatus | undefined;
  const settle = Date.now() + (disruptions.stuck ? 5_000 : 60_000);
  while (Date.now() < settle) {
    final = await client
      .use((c) => c.workflow.getHandle(poolWorkflowId(DEFAULT_POOL)).query(statusQuery))
      .catch(() => undefined);
    if (final && final.leases.length === 0 && final.queued === 0) break;
    await sleep(1_000);
  }
  const ledgers = nodes.map((node) => ({ node, claims: readLedger(path.join(o.dir, 'agents', node, 'ledger.json')) }));
  clearInterval(sampler);
  disruptions.stopKeeping();
  await keeper;
  if (final) violations.push(...checkFinal(final, ledgers, outcomes));
  else violations.push({ invariant: 'not freed', message: 'the pool did not answer at the end of the run' });

  const runs = readRuns(runsDir);
  violations.push(...checkRuns(runs, expectedSteps));
  violations.push(...checkFencing(runs, disruptions.partitions, began, PARTITION_NODE_LOST_MS));
  await sleep(2_000); // a killed agent's watchdog takes up to a second
  for (const r of runs.filter((run) => !run.ended && workloadAlive(run.pid))) {
    violations.push({ invariant: 'not freed', message: `workload of ${r.step} (pid ${r.pid}) still runs` });
  }

  for (const a of agents) await a.stop(5_000);
  await worker.stop(5_000);
  await client.close();
  await server.stop(5_000);
  for (const p of proxies) await p.close();
  return {
    seed: o.seed,
    kills: disruptions.kills,
    partitions: disruptions.partitions,
    pipelines: outcomes,
    stepsSubmitted: expectedSteps.length,
    stepsCompleted: completedSteps,
    runs: runs.length,
    interruptedRuns: runs.filter((r) => !r.ended).length,
    poolSamples,
    unplannedExits: all.flatMap((p) => p.unplannedExits),
    workflowTaskFailures: workflowTaskFailures(logFile('worker')),
    violations: dedupe(violations),
    durationMs: Date.now() - began,
    dir: o.dir,
  };
}
