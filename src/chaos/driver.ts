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
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { PoolStatus } from '../core';
import { clientDataConverter, generateCodecKey } from '../workers/codec';
import { DEFAULT_POOL, poolWorkflowId, setHealthPolicyUpdate, statusQuery } from '../workflows/messages';
import type { StepInput } from '../workflows/step-types';
import type { PipelineOutcome, RunRecord, Violation } from './invariants';
import { checkFencing, checkFinal, checkPoolSample, checkRuns, parseRunFile } from './invariants';
import { PartitionProxy } from './proxy';
import { ManagedProcess, agentSpec, devServerSpec, workerSpec } from './processes';
import { SeededRandom } from './random';
import { writeWorkload } from './workload';

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

/** One kill of the run. */
export interface Kill {
  target: string;
  kind: 'server' | 'worker' | 'agent';
  /** Ms since the run began. */
  atMs: number;
  /** Ms from the kill until the process served again. */
  downMs: number;
}

/** One partition of the run: an agent cut off from the server, from `atMs` for `durationMs`. */
export interface Partition {
  node: string;
  atMs: number;
  durationMs: number;
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

/** The shape of pipeline `i`: a preparation step, trainers in parallel, an evaluation. */
export function pipelinePlan(
  seed: number,
  index: number,
  steps: number,
  command: (durationMs: number) => string[],
): StepInput[][] {
  const rng = new SeededRandom(seed * 7919 + index);
  const step = (name: string, gpu: number, ms: [number, number]): StepInput => ({
    name,
    command: command(Math.round(rng.between(...ms))),
    resources: { cpu: '500m', memory: '256Mi', ...(gpu > 0 ? { gpu } : {}) },
    gracePeriodMs: 2_000,
  });
  if (steps < 3) return [Array.from({ length: steps }, (_, k) => step(`train-${k}`, 1, [1_000, 4_000]))];
  return [
    [step('prepare', 0, [500, 1_500])],
    Array.from({ length: steps - 2 }, (_, k) => step(`train-${k}`, rng.pick([1, 1, 0.5]), [1_000, 4_000])),
    [step('evaluate', 0.5, [500, 1_500])],
  ];
}

/**
 * One client for the whole run. Its channel reconnects by itself after the server comes back, so
 * it is never closed on an error: a closed channel makes the client's pending retries throw.
 */
class RunClient {
  private client: Client | undefined;
  /** Calls under way: closing waits for them, or a retry of theirs would hit the closed channel. */
  private readonly pending = new Set<Promise<unknown>>();
  private readonly stop = new AbortController();

  constructor(
    private readonly address: string,
    private readonly dataConverter: DataConverter | undefined,
  ) {}

  /** Runs `action` with the client; `undefined` when the server cannot be reached now. */
  async use<T>(action: (client: Client) => Promise<T>): Promise<T | undefined> {
    if (this.stop.signal.aborted) return undefined;
    let call: Promise<T> | undefined;
    try {
      const client = (this.client ??= new Client({
        connection: await Connection.connect({ address: this.address, connectTimeout: '3s' }),
        dataConverter: this.dataConverter,
      }));
      call = client.withAbortSignal(this.stop.signal, () => action(client));
      this.pending.add(call);
      return await call;
    } catch (err) {
      if (isUnavailable(err) || this.stop.signal.aborted) return undefined;
      throw err;
    } finally {
      if (call) this.pending.delete(call);
    }
  }

  /** Cancels the calls under way (a stuck pool's queries retry for long), then closes the channel. */
  async close(): Promise<void> {
    this.stop.abort();
    await Promise.race([Promise.allSettled([...this.pending]), sleep(15_000)]);
    await this.client?.connection.close().catch(() => undefined);
  }
}

function isUnavailable(err: unknown): boolean {
  const text = err instanceof Error ? `${err.name} ${err.message} ${String((err as { cause?: unknown }).cause)}` : '';
  return /UNAVAILABLE|DEADLINE_EXCEEDED|connect|Connection|transport|ECONNREFUSED|Failed to query|ServiceError/i.test(
    text,
  );
}

/** Runs the chaos scenario and checks it. */
export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const began = Date.now();
  const at = (): string => `${((Date.now() - began) / 1000).toFixed(1).padStart(6)}s`;
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
  // An agent exits at start when it cannot reach the server: a supervisor starts it again once
  // its partition is over.
  const reachable = async (p: ManagedProcess): Promise<void> => {
    const proxy = proxies[agents.indexOf(p)];
    while (proxy?.cut) await sleep(250);
  };
  const client = new RunClient(address, dataConverter);
  const violations: Violation[] = [];
  const kills: Kill[] = [];
  const outcomes: PipelineOutcome[] = [];
  const expectedSteps: string[] = [];
  let poolSamples = 0;
  let completedSteps = 0;

  o.log(`${at()} starting the Temporal server, the control worker and ${o.agents} agents (logs in ${o.dir}/logs)`);
  await server.start();
  await worker.start();
  for (const a of agents) await a.start();

  // Processes the kill schedule is not restarting right now; one that dies on its own comes back.
  const busy = new Set<ManagedProcess>();
  let stopping = false;
  const keeper = (async () => {
    while (!stopping) {
      for (const p of all) {
        if (!stopping && !busy.has(p) && !p.alive) {
          o.log(`${at()} ${p.name} died on its own; starting it again`);
          busy.add(p);
          await reachable(p);
          await p.start().catch((err: unknown) => o.log(`${at()} ${p.name} did not start: ${String(err)}`));
          busy.delete(p);
        }
      }
      await sleep(1_000);
    }
  })();

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

  let killsDone = false;
  let stuck: string | undefined;
  const partitions: Partition[] = [];
  const partitioner = (async () => {
    const rng = new SeededRandom(o.seed * 31 + 7);
    for (let k = 1; k <= (o.partitions ?? 0) && !stuck; k++) {
      await sleep((rng.between(o.gapSeconds[0], o.gapSeconds[1]) + rng.between(5, 15)) * 1000);
      const i = Math.floor(rng.next() * proxies.length);
      const proxy = proxies[i];
      const node = nodes[i] ?? '';
      if (!proxy) continue;
      const durationMs = Math.round(rng.between(12_000, 45_000));
      const atMs = Date.now() - began;
      proxy.partition();
      o.log(`${at()} partition ${k}/${o.partitions}: ${node} cut off for ${(durationMs / 1000).toFixed(1)}s`);
      await sleep(durationMs);
      proxy.heal();
      partitions.push({ node, atMs, durationMs });
    }
  })();
  const killer = (async () => {
    const rng = new SeededRandom(o.seed);
    for (let k = 1; k <= o.kills; k++) {
      await sleep(rng.between(o.gapSeconds[0], o.gapSeconds[1]) * 1000);
      const roll = rng.next();
      const target = roll < 0.25 ? server : roll < 0.5 ? worker : rng.pick(agents);
      const down = rng.between(300, 2_500);
      while (busy.has(target)) await sleep(200);
      busy.add(target);
      const killedAt = Date.now();
      await target.kill9();
      await sleep(down);
      let back = false;
      for (let attempt = 1; attempt <= 2 && !back; attempt++) {
        try {
          await reachable(target);
          await target.start(120_000);
          back = true;
        } catch (err) {
          o.log(`${at()} ${target.name} did not come back (${String(err).split('\n')[0]})`);
        }
      }
      if (!back) {
        // An agent waits for the pool to take its registration: the pool has stopped answering.
        stuck = `${target.name} could not start again after kill ${k} (${target.spec.kind === 'agent' ? 'the pool did not take its registration' : 'not ready'})`;
        violations.push({ invariant: 'step lost', message: `the system did not recover: ${stuck}` });
        break;
      }
      busy.delete(target);
      kills.push({
        target: target.name,
        kind: target.spec.kind,
        atMs: killedAt - began,
        downMs: Date.now() - killedAt,
      });
      o.log(`${at()} kill ${k}/${o.kills}: ${target.name}, back after ${((Date.now() - killedAt) / 1000).toFixed(1)}s`);
    }
  })();
  const disrupted = Promise.all([killer, partitioner]).then(() => {
    killsDone = true;
  });

  // Pipelines: keep `concurrency` in flight until the kills are done, then let them finish.
  const command = (ms: number): string[] => [process.execPath, workload, runsDir, String(ms)];
  const inFlight: string[] = [];
  let started = 0;
  let finishDeadline = Infinity;
  for (;;) {
    for (const id of [...inFlight]) {
      const outcome = await client.use((c) => pipelineOutcome(c, id)).catch(() => undefined);
      if (outcome === undefined || outcome === 'running') continue;
      inFlight.splice(inFlight.indexOf(id), 1);
      outcomes.push(outcome.outcome);
      completedSteps += outcome.steps;
      o.log(
        `${at()} pipeline ${id} ${outcome.outcome.status}${outcome.outcome.message ? `: ${outcome.outcome.message}` : ''}`,
      );
    }
    while ((!killsDone || started < o.minPipelines) && inFlight.length < o.concurrency) {
      const id = `chaos-${o.seed}-p${started + 1}`;
      const stages = pipelinePlan(o.seed, started + 1, o.stepsPerPipeline, command);
      const ok = await client
        .use((c) =>
          c.workflow
            .start('chaosPipeline', { taskQueue: 'allot', workflowId: id, args: [stages] })
            .then(() => true)
            .catch((err: unknown) => {
              if ((err as Error).name === 'WorkflowExecutionAlreadyStartedError') return true;
              throw err;
            }),
        )
        .catch(() => undefined);
      if (!ok) break;
      started++;
      inFlight.push(id);
      expectedSteps.push(...stages.flat().map((s) => `${id}/${s.name}`));
    }
    if (stuck) {
      for (const id of inFlight)
        outcomes.push({ workflowId: id, status: 'unfinished', message: `the run stopped: ${stuck}` });
      break;
    }
    if (killsDone && finishDeadline === Infinity) finishDeadline = Date.now() + o.finishTimeoutMs;
    if (killsDone && started >= o.minPipelines && inFlight.length === 0) break;
    if (Date.now() > finishDeadline) {
      for (const id of inFlight) {
        outcomes.push({
          workflowId: id,
          status: 'unfinished',
          message: `still running ${o.finishTimeoutMs / 1000}s after the last kill`,
        });
      }
      break;
    }
    await sleep(1_000);
  }
  await disrupted;
  o.log(`${at()} all pipelines ended; checking the invariants`);

  // The end state: nothing held, nothing queued, empty ledgers.
  let final: PoolStatus | undefined;
  const settle = Date.now() + (stuck ? 5_000 : 60_000);
  while (Date.now() < settle) {
    final = await client
      .use((c) => c.workflow.getHandle(poolWorkflowId(DEFAULT_POOL)).query(statusQuery))
      .catch(() => undefined);
    if (final && final.leases.length === 0 && final.queued === 0) break;
    await sleep(1_000);
  }
  const ledgers = nodes.map((node) => ({ node, claims: readLedger(path.join(o.dir, 'agents', node, 'ledger.json')) }));
  clearInterval(sampler);
  stopping = true;
  await keeper;
  if (final) violations.push(...checkFinal(final, ledgers, outcomes));
  else violations.push({ invariant: 'not freed', message: 'the pool did not answer at the end of the run' });

  const runs = readRuns(runsDir);
  violations.push(...checkRuns(runs, expectedSteps));
  violations.push(...checkFencing(runs, partitions, began, PARTITION_NODE_LOST_MS));
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
    kills,
    partitions,
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

/** Where a pipeline stands: still running, or how it ended and how many steps it completed. */
async function pipelineOutcome(
  client: Client,
  workflowId: string,
): Promise<'running' | { outcome: PipelineOutcome; steps: number }> {
  const handle = client.workflow.getHandle(workflowId);
  const { status } = await handle.describe();
  if (status.name === 'RUNNING') return 'running';
  if (status.name === 'COMPLETED') {
    const results = (await handle.result()) as unknown[];
    return { outcome: { workflowId, status: 'completed' }, steps: results.length };
  }
  const message = await handle.result().then(
    () => status.name,
    (err: unknown) => `${status.name}: ${rootMessage(err)}`,
  );
  return { outcome: { workflowId, status: 'failed', message }, steps: 0 };
}

function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause?: unknown }).cause;
  return e instanceof Error ? e.message : String(e);
}

function readLedger(file: string): { leaseId: string; stepId: string }[] {
  if (!existsSync(file)) return [];
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return Array.isArray(parsed) ? (parsed as { leaseId: string; stepId: string }[]) : [];
  } catch {
    return [];
  }
}

function readRuns(dir: string): RunRecord[] {
  const runs: RunRecord[] = [];
  for (const step of existsSync(dir) ? readdirSync(dir) : []) {
    for (const file of readdirSync(path.join(dir, step))) {
      const full = path.join(dir, step, file);
      const run = parseRunFile(readFileSync(full, 'utf8'), full);
      if (run) runs.push(run);
    }
  }
  return runs;
}

/** Whether a chaos workload with this pid still runs (and the pid was not reused by another program). */
function workloadAlive(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('chaos-workload.js');
  } catch {
    return false;
  }
}

function dedupe(violations: Violation[]): Violation[] {
  const seen = new Set<string>();
  return violations.filter((v) => {
    const key = `${v.invariant}|${v.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The distinct messages of the workflow tasks the worker failed, as its log shows them. */
function workflowTaskFailures(logFile: string): string[] {
  if (!existsSync(logFile)) return [];
  const seen = new Set<string>();
  for (const m of readFileSync(logFile, 'utf8').matchAll(
    /Failing workflow task .*?message: "((?:[^"\\]|\\.){0,300})/g,
  )) {
    if (m[1]) seen.add(m[1]);
  }
  return [...seen];
}
