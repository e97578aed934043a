/**
 * The node agent: registers its inventory with the pool and runs workloads granted to this node
 * from the task queue `allot-node-<id>`.
 */
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import { createActivities, LeaseLedger } from '../activities';
import type { NodeSpec } from '../core';
import { nodeTaskQueue } from '../workflows/messages';
import { registerNode } from './pool-client';

/** Options of a node agent. */
export interface AgentOptions {
  client: Client;
  connection: NativeConnection;
  namespace: string;
  pool: string;
  inventory: NodeSpec;
  /** Root of logs, outputs and checkpoints. */
  dataDir: string;
  /** Agent variables passed to workloads. @default DEFAULT_ENV_ALLOWLIST */
  envAllowlist?: string[];
  /** Task queue of the control worker, used if the pool must be started. @default "allot" */
  controlTaskQueue?: string;
}

/** A running agent. */
export interface Agent {
  worker: Worker;
  ledger: LeaseLedger;
  /** Resolves when the worker has stopped. */
  done: Promise<void>;
}

/** Registers the node and starts polling its task queue. */
export async function startAgent(options: AgentOptions): Promise<Agent> {
  const ledger = new LeaseLedger();
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: nodeTaskQueue(options.inventory.id),
    activities: createActivities({
      nodeId: options.inventory.id,
      dataDir: options.dataDir,
      ledger,
      envAllowlist: options.envAllowlist,
    }),
    maxConcurrentActivityTaskExecutions: 1000,
    // Cancellation reaches an activity only with a heartbeat: send them at once so that a
    // cancelled step's processes are signalled within about a second.
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
    shutdownGraceTime: '5s',
  });
  const done = worker.run();
  await registerNode(options.client, options.pool, options.inventory, options.controlTaskQueue);
  return { worker, ledger, done };
}
