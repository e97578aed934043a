/**
 * The control worker: runs pool, step and pipeline workflows on the task queue `allot`.
 */
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import type { NativeConnection, WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { Worker } from '@temporalio/worker';
import type { Registry } from 'prom-client';
import { CONTROL_TASK_QUEUE, poolWorkflowId, setStoreUpdate } from '../workflows/messages';
import type { Scaler } from '../activities/scaler';
import { createScalerActivities } from '../activities/scaler';
import { bundleWorkflows } from './bundle';
import { workerDataConverter } from './codec';
import { noMetricsSinks, registerControlMetrics } from './metrics';
import { ensurePool } from './pool-client';

/** Options of the control worker. */
export interface ControlWorkerOptions {
  client: Client;
  connection: NativeConnection;
  namespace: string;
  /** Pools to start if they do not run. @default ["default"] */
  pools?: string[];
  /** Modules of the user's pipeline workflows. */
  workflows?: string[];
  /** A prebuilt bundle (tests build one per run). */
  bundle?: WorkflowBundleWithSourceMap;
  /** Task queue. @default "allot" */
  taskQueue?: string;
  /**
   * The store (URL, no credentials) the pools name to agents without one of their own; agents
   * use it for checkpoints and artifacts. @default leave what the pools name as it is
   */
  store?: string;
  /** Registry to add the pools' and steps' metrics to (`allot_pool_*`, `allot_step_*`). @default none */
  metrics?: Registry;
  /** What adds and removes nodes when a pool with node templates scales. @default none (scaling fails with NoScaler) */
  scaler?: Scaler;
  /** Payload codecs. @default workerDataConverter(): the unreadable-payload guard, and encryption with ALLOT_CODEC_KEY */
  dataConverter?: DataConverter;
}

/** Creates the worker and makes sure the pools run. */
export async function startControlWorker(
  options: ControlWorkerOptions,
): Promise<{ worker: Worker; done: Promise<void> }> {
  const worker = await Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue ?? CONTROL_TASK_QUEUE,
    workflowBundle: options.bundle ?? (await bundleWorkflows(options.workflows)),
    sinks: options.metrics
      ? registerControlMetrics(options.metrics, options.client, options.pools ?? ['default'])
      : noMetricsSinks(),
    activities: createScalerActivities(options.scaler),
    dataConverter: options.dataConverter ?? workerDataConverter(),
    shutdownGraceTime: '5s',
  });
  const done = worker.run();
  for (const pool of options.pools ?? ['default']) {
    await ensurePool(options.client, pool, options.taskQueue);
    if (options.store !== undefined)
      await options.client.workflow
        .getHandle(poolWorkflowId(pool))
        .executeUpdate(setStoreUpdate, { args: [{ url: options.store }] });
  }
  return { worker, done };
}
