/**
 * `allot run <workflowType>`: starts a pipeline (or attaches to a running one with the same id),
 * follows its steps, and exits 0 on success, non-zero on failure.
 */
import { WorkflowFailedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { CONTROL_TASK_QUEUE } from '../workflows/messages';
import type { StepResult } from '../workflows/step-types';
import { cliClient } from './context';
import { UserError } from './errors';
import { parseInput } from './parse';
import { describeProgress, readProgress } from './watch';

/** Options of `allot run`. */
export interface RunOptions {
  input?: string;
  id?: string;
  wait: boolean;
  json?: boolean;
  taskQueue?: string;
}

/** Runs `allot run`; returns the exit code. */
export async function run(workflowType: string, o: RunOptions): Promise<number> {
  if (!/^[A-Za-z_$][\w$]*$/.test(workflowType)) {
    throw new UserError(
      `workflow type must be the name of an exported workflow function (e.g. trainPipeline), got ${JSON.stringify(workflowType)}`,
    );
  }
  const args = parseInput(o.input);
  const { client, close } = await cliClient();
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  try {
    const workflowId = o.id ?? `${workflowType}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    const handle = await client.workflow.start(workflowType, {
      taskQueue: o.taskQueue ?? CONTROL_TASK_QUEUE,
      workflowId,
      args,
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    const attached =
      handle.firstExecutionRunId !== undefined && (await handle.describe()).startTime.getTime() < Date.now() - 2000;
    say(`${attached ? 'attached to running' : 'started'} ${workflowType} ${workflowId}`);
    if (!o.wait) {
      if (o.json) process.stdout.write(`${JSON.stringify({ workflowId, status: 'started' })}\n`);
      return 0;
    }
    const result = handle.result();
    await followPipeline(client, workflowId, result, say);
    try {
      const value: unknown = await result;
      say(`${workflowType} ${workflowId}: succeeded`);
      process.stdout.write(
        `${JSON.stringify(o.json ? { workflowId, status: 'succeeded', result: value } : (value ?? null), null, o.json ? undefined : 2)}\n`,
      );
      return 0;
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      const failed = failedStep(err);
      say(`${workflowType} ${workflowId}: failed${failed ? ` at step ${failed.name}` : ''}: ${rootMessage(err)}`);
      if (failed?.result && failed.result.logTail.length > 0) {
        say(`--- last lines of ${failed.result.logFile} ---\n${failed.result.logTail.join('\n')}`);
      }
      if (o.json)
        process.stdout.write(
          `${JSON.stringify({ workflowId, status: 'failed', step: failed?.name, message: rootMessage(err) })}\n`,
        );
      return 1;
    }
  } finally {
    await close();
  }
}

/** Prints each step's state changes until the pipeline ends. */
async function followPipeline(
  client: Client,
  workflowId: string,
  until: Promise<unknown>,
  say: (line: string) => void,
): Promise<void> {
  let done = false;
  void until.then(
    () => (done = true),
    () => (done = true),
  );
  const last = new Map<string, string>();
  const query = `RootWorkflowId = "${workflowId}" AND WorkflowType = "allotStep"`;
  while (!done) {
    try {
      for await (const wf of client.workflow.list({ query })) {
        const p = await readProgress(client, client.workflow.getHandle(wf.workflowId));
        if (!p) continue;
        const line = describeProgress(p, Date.now());
        if (last.get(wf.workflowId) !== line) say(`  ${line}`);
        last.set(wf.workflowId, line);
      }
    } catch {
      // Visibility may lag or be unavailable; the pipeline's result still arrives.
    }
    await Promise.race([until.catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
  }
}

/** The step a pipeline failure came from, if any. */
function failedStep(err: WorkflowFailedError): { name: string; result?: StepResult } | undefined {
  let cause: unknown = err.cause;
  let name: string | undefined;
  while (cause instanceof Error) {
    const c = cause as Error & { workflowType?: string; execution?: { workflowId?: string }; cause?: unknown };
    if (c.workflowType === 'allotStep' && c.execution?.workflowId) name = c.execution.workflowId.split('/').pop();
    if (cause instanceof ApplicationFailure && cause.type === 'NonZeroExit') {
      const result = cause.details?.[0] as StepResult | undefined;
      return { name: result?.name ?? name ?? '?', result };
    }
    cause = c.cause;
  }
  return name ? { name } : undefined;
}

function rootMessage(err: Error): string {
  let e: unknown = err;
  while (e instanceof Error && (e as { cause?: unknown }).cause instanceof Error) e = (e as { cause?: unknown }).cause;
  return e instanceof Error ? e.message : String(e);
}
