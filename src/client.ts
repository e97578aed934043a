/**
 * `allot/client`: start pipelines and read the pool from Node code (a CI script, a service).
 *
 * ```ts
 * import { connect, poolStatus, startPipeline } from 'allot/client';
 *
 * const client = await connect(); // TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, ... as the Temporal CLI reads them
 * const handle = await startPipeline(client, 'trainPipeline', { args: [{ epochs: 3 }] });
 * console.log(await handle.result(), (await poolStatus(client)).nodes.length);
 * await client.connection.close();
 * ```
 */
import { randomUUID } from 'node:crypto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { PoolStatus } from './core';
import { connectClient, connectionSettings } from './workers/connection';
import { CONTROL_TASK_QUEUE, DEFAULT_POOL, poolWorkflowId, statusQuery } from './workflows/messages';

export {
  CONTROL_TASK_QUEUE,
  DEFAULT_POOL,
  capacityQuery,
  drainUpdate,
  policyQuery,
  poolWorkflowId,
  progressQuery,
  quotasQuery,
  statusQuery,
} from './workflows/messages';
export type { CapacityReport, QuotaReport } from './workflows/messages';
export type { StepInput, StepProgress, StepResult, StepState } from './workflows/step-types';
export type { PoolStatus, ResourceSpec } from './core';

/** Where to connect; each unset field comes from the environment and the Temporal config file. */
export interface ConnectOptions {
  /** `host:port` of the Temporal frontend. @default TEMPORAL_ADDRESS, else "localhost:7233" */
  address?: string;
  /** @default TEMPORAL_NAMESPACE, else "default" */
  namespace?: string;
  /** Profile of the Temporal config file. @default TEMPORAL_PROFILE, else "default" */
  profile?: string;
}

/**
 * A Temporal client set up as allot's CLI sets its own: `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
 * `TEMPORAL_API_KEY`, TLS and profiles as the Temporal CLI reads them, and the payload encryption
 * of `ALLOT_CODEC_KEY`. Close it with `client.connection.close()`.
 */
export function connect(options: ConnectOptions = {}): Promise<Client> {
  return connectClient(connectionSettings(options));
}

/** Options of `startPipeline`. */
export interface StartPipelineOptions {
  /** Arguments of the pipeline workflow. @default [] */
  args?: unknown[];
  /** Workflow id; one already running with it makes the start fail. @default "<type>-<uuid>" */
  workflowId?: string;
}

/** Starts a pipeline workflow on the control worker's task queue; returns its handle. */
export function startPipeline(
  client: Client,
  workflowType: string,
  options: StartPipelineOptions = {},
): Promise<WorkflowHandle> {
  return client.workflow.start(workflowType, {
    taskQueue: CONTROL_TASK_QUEUE,
    workflowId: options.workflowId ?? `${workflowType}-${randomUUID()}`,
    args: options.args ?? [],
  });
}

/** The pool's nodes, leases and queue, as `allot status --json` shows them. */
export function poolStatus(client: Client, pool: string = DEFAULT_POOL): Promise<PoolStatus> {
  return client.workflow.getHandle(poolWorkflowId(pool)).query(statusQuery);
}
