/**
 * Client-side helpers for talking to a pool: start it if needed, register a node.
 */
import type { Client } from '@temporalio/client';
import { WithStartWorkflowOperation } from '@temporalio/client';
import type { NodeSpec } from '../core';
import { CONTROL_TASK_QUEUE, poolWorkflowId, registerUpdate } from '../workflows/messages';
import type { RegisterResult } from '../workflows/messages';

/** Starts the pool workflow unless it already runs. */
export async function ensurePool(client: Client, pool: string, taskQueue = CONTROL_TASK_QUEUE): Promise<void> {
  await client.workflow.start('allotPool', {
    workflowId: poolWorkflowId(pool),
    taskQueue,
    args: [{ name: pool }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

/** Registers a node with a pool, starting the pool if it does not run yet. */
export async function registerNode(
  client: Client,
  pool: string,
  spec: NodeSpec,
  taskQueue = CONTROL_TASK_QUEUE,
  runningLeases: string[] = [],
): Promise<RegisterResult> {
  return client.workflow.executeUpdateWithStart(registerUpdate, {
    args: [spec, { runningLeases }],
    startWorkflowOperation: new WithStartWorkflowOperation('allotPool', {
      workflowId: poolWorkflowId(pool),
      taskQueue,
      args: [{ name: pool }],
      workflowIdConflictPolicy: 'USE_EXISTING',
    }),
  });
}
