/**
 * Client-side helpers for talking to a pool: start it if needed, register a node.
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { NodeSpec } from '../core';
import {
  CONTROL_TASK_QUEUE,
  capacityQuery,
  poolWorkflowId,
  registerSignal,
  registrationQuery,
} from '../workflows/messages';
import type { CapacityReport, RegisterResult } from '../workflows/messages';

/** The pool's demand and templates, or `undefined` when the pool cannot say. */
export async function fetchCapacity(client: Client, pool: string): Promise<CapacityReport | undefined> {
  try {
    return await client.workflow.getHandle(poolWorkflowId(pool)).query(capacityQuery);
  } catch {
    return undefined;
  }
}

/** Starts the pool workflow unless it already runs. */
export async function ensurePool(client: Client, pool: string, taskQueue = CONTROL_TASK_QUEUE): Promise<void> {
  await client.workflow.start('allotPool', {
    workflowId: poolWorkflowId(pool),
    taskQueue,
    args: [{ name: pool }],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}

/** How often an agent looks for the outcome of its registration, and sends it again, ms. */
const REGISTRATION_POLL_MS = 200;
const REGISTRATION_RESEND_MS = 10_000;

/**
 * Registers a node with a pool, starting the pool if it does not run yet. The registration goes
 * as a signal and its outcome is read with a query (see `registerSignal`); it is sent again every
 * 10 s until the pool answers (a registration is idempotent), so a pool that continued as new in
 * between, or a control worker or server that is down for a while, only delays it. `deadLeases`
 * are leases whose workloads this agent ran and that are gone now: the pool takes them back.
 */
export async function registerNode(
  client: Client,
  pool: string,
  spec: NodeSpec,
  taskQueue = CONTROL_TASK_QUEUE,
  options: {
    runningLeases?: string[];
    deadLeases?: string[];
    /** Keeps trying while Temporal cannot be reached, as long as this says so; without, such errors throw. */
    keepTrying?: () => boolean;
  } = {},
): Promise<RegisterResult> {
  const { runningLeases = [], deadLeases = [], keepTrying } = options;
  const token = randomUUID();
  const handle = client.workflow.getHandle(poolWorkflowId(pool));
  let sentAt = -Infinity;
  for (;;) {
    if (Date.now() - sentAt >= REGISTRATION_RESEND_MS) {
      await client.workflow
        .signalWithStart('allotPool', {
          workflowId: poolWorkflowId(pool),
          taskQueue,
          args: [{ name: pool }],
          signal: registerSignal,
          signalArgs: [spec, { runningLeases, deadLeases, token }],
        })
        .catch((err: unknown) => {
          // Temporal cannot be reached now (the agent is cut off): try again at the next resend.
          if (!keepTrying?.()) throw err;
        });
      sentAt = Date.now();
    }
    if (keepTrying && !keepTrying()) throw new Error('registration given up: the agent is stopping');
    const outcome = await handle.query(registrationQuery, spec.id).catch(() => null);
    if (outcome?.token === token) {
      if ('error' in outcome) throw new Error(outcome.error);
      return outcome.result;
    }
    await new Promise((r) => setTimeout(r, REGISTRATION_POLL_MS));
  }
}
