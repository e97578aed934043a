/**
 * The node agent: registers its inventory with the pool, heartbeats, and runs workloads granted
 * to this node from the task queue `allot-node-<id>`.
 *
 * On start it kills what a previous life of the agent left running (those launches died with it;
 * their steps run again), then registers; the pool answers which reported leases it no longer
 * holds, and those are killed too.
 */
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import { createActivities, killGroup, LeaseLedger } from '../activities';
import type { NodeSpec } from '../core';
import { leaseQuery, nodeHeartbeatSignal, nodeTaskQueue, poolWorkflowId } from '../workflows/messages';
import { registerNode } from './pool-client';

/** Options of a node agent. */
export interface AgentOptions {
  client: Client;
  connection: NativeConnection;
  namespace: string;
  pool: string;
  inventory: NodeSpec;
  /** Root of logs, outputs, checkpoints and the lease ledger. */
  dataDir: string;
  /** Agent variables passed to workloads. @default DEFAULT_ENV_ALLOWLIST */
  envAllowlist?: string[];
  /** Task queue of the control worker, used if the pool must be started. @default "allot" */
  controlTaskQueue?: string;
  /** Interval of heartbeats to the pool, ms. @default 5000 */
  heartbeatMs?: number;
  /** Called with notices worth a person's attention. */
  notice?: (message: string) => void;
}

/** A running agent. */
export interface Agent {
  worker: Worker;
  ledger: LeaseLedger;
  /** Resolves when the worker has stopped (heartbeats stop with it). */
  done: Promise<void>;
}

/** Kills the process groups of claims, returning their lease ids. */
function killClaims(claims: { leaseId: string; pgid?: number }[]): string[] {
  return claims.filter((c) => c.pgid !== undefined && killGroup(c.pgid)).map((c) => c.leaseId);
}

/** Registers the node and starts polling its task queue. */
export async function startAgent(options: AgentOptions): Promise<Agent> {
  const notice = options.notice ?? (() => undefined);
  const ledger = new LeaseLedger(path.join(options.dataDir, 'ledger.json'));
  const orphans = killClaims(ledger.takeOrphans());
  if (orphans.length > 0) notice(`killed workloads left by a previous run of this agent: leases ${orphans.join(', ')}`);
  const pool = options.client.workflow.getHandle(poolWorkflowId(options.pool));
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: nodeTaskQueue(options.inventory.id),
    activities: createActivities({
      nodeId: options.inventory.id,
      dataDir: options.dataDir,
      ledger,
      envAllowlist: options.envAllowlist,
      leaseHeld: async (poolName, leaseId) => {
        try {
          const lease = await options.client.workflow.getHandle(poolWorkflowId(poolName)).query(leaseQuery, leaseId);
          return lease !== null && lease.nodeId === options.inventory.id;
        } catch {
          return undefined;
        }
      },
    }),
    maxConcurrentActivityTaskExecutions: 1000,
    // Cancellation reaches an activity only with a heartbeat: send them at once so that a
    // cancelled step's processes are signalled within about a second.
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
    shutdownGraceTime: '5s',
  });
  const done = worker.run();
  const registered = await registerNode(
    options.client,
    options.pool,
    options.inventory,
    options.controlTaskQueue,
    ledger.list().map((c) => c.leaseId),
  );
  const stale = killClaims(ledger.list().filter((c) => registered.kill.includes(c.leaseId)));
  if (stale.length > 0) notice(`killed workloads whose leases the pool no longer holds: ${stale.join(', ')}`);

  const beat = setInterval(() => {
    pool.signal(nodeHeartbeatSignal, { nodeId: options.inventory.id }).catch(() => undefined);
  }, options.heartbeatMs ?? 5000);
  void done.finally(() => clearInterval(beat));
  return { worker, ledger, done };
}
