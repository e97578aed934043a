/**
 * One benchmark world: a real Temporal dev server, one workflow bundle (allot's workflows and the
 * baseline's), a control worker, node agents with static inventories, and native baseline
 * workers — all in this process, as on the machine that runs `npm run bench`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { defineSearchAttributeKey } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { NativeConnection, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import type { NodeSpec } from '../../src/core';
import type { Agent } from '../../src/workers/agent';
import { startAgent } from '../../src/workers/agent';
import { bundleWorkflows } from '../../src/workers/bundle';
import { noMetricsSinks } from '../../src/workers/metrics';
import { ensurePool } from '../../src/workers/pool-client';
import { findTemporalCli } from '../../src/workers/temporal-cli';
import { poolWorkflowId } from '../../src/workflows/messages';
import { SEARCH_ATTRIBUTE_LIST } from '../../src/workflows/search-attributes';
import { createNativeActivities } from '../native/activities';

/** A running world; `close()` stops everything it started. */
export interface BenchWorld {
  client: Client;
  connection: NativeConnection;
  dataDir: string;
  /** Task queue of the control worker (pool, step and baseline workflows). */
  controlQueue: string;
  /** A name made unique to this run (pools, nodes, workflow ids), for servers that outlive it. */
  id(name: string): string;
  /** Starts a pool by name (each figure uses its own, so its history is its own). */
  startPool(pool: string): Promise<void>;
  /** Starts an agent for a node with `gpus` GPUs in `pool`. */
  addAgent(pool: string, nodeId: string, gpus: number): Promise<Agent>;
  /** Starts a baseline worker on `taskQueue` running at most `gpus` activities at once. */
  addNativeWorker(taskQueue: string, gpus: number): Promise<Worker>;
  /** Stops an agent or a baseline worker (and waits for it). */
  stop(worker: Worker): Promise<void>;
  close(): Promise<void>;
}

/** Builds `n` fake A100s. */
function gpuList(n: number): NodeSpec['gpus'] {
  return Array.from({ length: n }, (_, index) => ({ index, model: 'A100', memoryMiB: 81_920 }));
}

/** Starts the dev server, bundles the workflows and starts the control worker. */
export async function startWorld(stage: (what: string) => void): Promise<BenchWorld> {
  const cli = findTemporalCli();
  const existing = process.env.BENCH_TEMPORAL_ADDRESS;
  stage(existing ? `using the Temporal server at ${existing}` : 'starting the Temporal dev server');
  const env = existing
    ? await TestWorkflowEnvironment.createFromExistingServer({ address: existing })
    : await TestWorkflowEnvironment.createLocal({
        server: {
          executable: cli.path ? { type: 'existing-path', path: cli.path } : { type: 'cached-download' },
          searchAttributes: SEARCH_ATTRIBUTE_LIST.map((a) => defineSearchAttributeKey(a.name, a.type)),
        },
      });
  const tag = Date.now().toString(36).slice(-5);
  const controlQueue = `allot-bench-${tag}`;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'allot-bench-'));
  stage('bundling workflows');
  const bundle: WorkflowBundleWithSourceMap = await bundleWorkflows([
    path.join(__dirname, '..', 'native', 'workflows.ts'),
  ]);
  const control = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: controlQueue,
    workflowBundle: bundle,
    sinks: noMetricsSinks(),
    shutdownGraceTime: '1s',
  });
  const running = new Map<Worker, Promise<void>>();
  running.set(control, control.run());
  const agents: Agent[] = [];
  const pools: string[] = [];
  const stop = async (worker: Worker): Promise<void> => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running.get(worker)?.catch(() => undefined);
    running.delete(worker);
  };
  return {
    client: env.client,
    connection: env.nativeConnection,
    dataDir,
    controlQueue,
    id: (name) => `${name}-${tag}`,
    async startPool(pool) {
      await ensurePool(env.client, pool, controlQueue);
      pools.push(pool);
    },
    async addAgent(pool, nodeId, gpus) {
      const agent = await startAgent({
        client: env.client,
        connection: env.nativeConnection,
        namespace: 'default',
        pool,
        inventory: { id: nodeId, cpuMilli: 256_000, memoryMiB: 1_048_576, gpus: gpuList(gpus), labels: {} },
        dataDir: path.join(dataDir, 'agents', nodeId),
        controlTaskQueue: controlQueue,
      });
      agents.push(agent);
      running.set(agent.worker, agent.done);
      return agent;
    },
    async addNativeWorker(taskQueue, gpus) {
      const worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        activities: createNativeActivities(gpus, path.join(dataDir, 'native', taskQueue)),
        maxConcurrentActivityTaskExecutions: gpus,
        shutdownGraceTime: '1s',
      });
      running.set(worker, worker.run());
      return worker;
    },
    stop,
    async close() {
      // A client call still retrying when its connection closes throws from a timer: harmless here.
      process.on('uncaughtException', (err) => {
        if (err.message !== 'Channel has been shut down') throw err;
      });
      // On a server that outlives the run, leave no pool behind.
      for (const pool of pools) {
        await env.client.workflow
          .getHandle(poolWorkflowId(pool))
          .terminate('benchmark over')
          .catch(() => undefined);
      }
      for (const worker of [...running.keys()].reverse()) await stop(worker);
      await env.teardown();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The pool's workflow id (re-exported for figures). */
export { poolWorkflowId };
