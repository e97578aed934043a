/**
 * Helpers for tests against the real dev server: a client, a control worker on a unique task
 * queue, and agents with unique node ids and static inventories.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Registry } from 'prom-client';
import { inject } from 'vitest';
import type { NodeSpec, PoolStatus } from '../../src/core';
import type { Agent, AgentOptions } from '../../src/workers/agent';
import { startAgent } from '../../src/workers/agent';
import { noMetricsSinks, registerControlMetrics } from '../../src/workers/metrics';
import { ensurePool } from '../../src/workers/pool-client';
import { poolWorkflowId, statusQuery } from '../../src/workflows/messages';
import { tempDir } from './temp';

Runtime.install({ logger: new DefaultLogger('WARN') });

/** Agent options a test may add (metrics, sampling, device names). */
export type AgentExtras = Partial<
  Pick<AgentOptions, 'metrics' | 'sampleMs' | 'gpuSampleMs' | 'visibleIds' | 'heartbeatMs'>
>;

/** A little world for one test file: its own pool, control task queue and agents. */
export interface World {
  client: Client;
  connection: NativeConnection;
  pool: string;
  taskQueue: string;
  dataDir: string;
  agents: Agent[];
  /** Starts an agent for a node with `gpus` GPUs (ids are unique per world). */
  addAgent(
    spec?: Partial<NodeSpec> & { gpus?: NodeSpec['gpus'] },
    options?: AgentExtras,
  ): Promise<{ agent: Agent; nodeId: string }>;
  status(): Promise<PoolStatus>;
  /** Stops the control worker and starts a fresh one, which has no workflow in its cache. */
  restartControl(): Promise<void>;
  close(): Promise<void>;
}

/** Builds `n` GPUs of one model. */
export function gpus(n: number, model = 'A100', memoryMiB = 81920): NodeSpec['gpus'] {
  return Array.from({ length: n }, (_, index) => ({ index, model, memoryMiB }));
}

/** Creates a world with a running control worker and a started pool. */
export async function createWorld(name: string, options: { metrics?: Registry } = {}): Promise<World> {
  const address = inject('temporalAddress');
  const client = new Client({ connection: await Connection.connect({ address }) });
  const connection = await NativeConnection.connect({ address });
  const suffix = randomUUID().slice(0, 8);
  const pool = `${name}-${suffix}`;
  const taskQueue = `allot-test-${suffix}`;
  const dataDir = tempDir(name);
  const sinks = options.metrics ? registerControlMetrics(options.metrics, client, [pool]) : noMetricsSinks();
  const startControl = async (): Promise<{ worker: Worker; done: Promise<void> }> => {
    const worker = await Worker.create({
      connection,
      taskQueue,
      workflowBundle: { codePath: inject('workflowBundlePath') },
      sinks,
      shutdownGraceTime: '1s',
    });
    return { worker, done: worker.run() };
  };
  let control = await startControl();
  await ensurePool(client, pool, taskQueue);
  const agents: Agent[] = [];
  let nodes = 0;
  return {
    client,
    connection,
    pool,
    taskQueue,
    dataDir,
    agents,
    async addAgent(spec = {}, extras = {}) {
      const nodeId = spec.id ?? `${name}-${suffix}-n${++nodes}`;
      const inventory: NodeSpec = {
        id: nodeId,
        cpuMilli: spec.cpuMilli ?? 16_000,
        memoryMiB: spec.memoryMiB ?? 65_536,
        gpus: spec.gpus ?? gpus(4),
        labels: spec.labels ?? {},
        ...(spec.custom ? { custom: spec.custom } : {}),
      };
      const agent = await startAgent({
        client,
        connection,
        namespace: 'default',
        pool,
        inventory,
        dataDir: path.join(dataDir, nodeId),
        controlTaskQueue: taskQueue,
        ...extras,
      });
      agents.push(agent);
      return { agent, nodeId };
    },
    status() {
      return client.workflow.getHandle(poolWorkflowId(pool)).query(statusQuery);
    },
    async restartControl() {
      control.worker.shutdown();
      await control.done;
      control = await startControl();
    },
    async close() {
      for (const a of agents) {
        if (a.worker.getState() === 'RUNNING') a.worker.shutdown();
      }
      await Promise.allSettled(agents.map((a) => a.done));
      await client.workflow
        .getHandle(poolWorkflowId(pool))
        .terminate('test over')
        .catch(() => undefined);
      control.worker.shutdown();
      await control.done;
      await connection.close();
      await client.connection.close();
    },
  };
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
