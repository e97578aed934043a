/**
 * `allot run <workflowType>`: starts a pipeline (or attaches to a running one with the same id),
 * follows its steps, and exits 0 on success, non-zero on failure: the CI trigger.
 */
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { Option } from 'commander';
import { CONTROL_TASK_QUEUE } from '../../workflows/messages';
import { cliClient } from '../context';
import { UserError } from '../errors';
import type { Exit } from '../options';
import { parseInput } from '../parse';
import { describeFailure, followPipeline, stepSummary, UNKNOWN_TYPE } from '../pipeline-follow';

/** Adds `run` to the program. */
export function registerRun(program: Command, exit: Exit): void {
  program
    .command('run')
    .description('start a pipeline workflow and follow it; exit 0 on success')
    .argument('<workflowType>', 'name of the pipeline workflow, e.g. trainPipeline')
    .option('--input <json|@file>', 'the workflow argument, as JSON or @file')
    .option('--id <id>', 'workflow id; a second run with the same id attaches to the running one')
    .option('--no-wait', 'return once started')
    .option('--json', 'print a machine-readable result')
    .addOption(new Option('--task-queue <queue>', 'task queue of the control worker').default('allot').hideHelp())
    .action(async (type: string, o: RunOptions) => exit(await run(type, o)));
}

/** Options of `allot run`. */
export interface RunOptions {
  input?: string;
  id?: string;
  wait: boolean;
  json?: boolean;
  taskQueue?: string;
}

/** Exit codes of `allot run`. */
export const RUN_EXIT = { succeeded: 0, failed: 1, cancelled: 130 } as const;

/** Runs `allot run`; returns the exit code. */
export async function run(workflowType: string, o: RunOptions): Promise<number> {
  if (!/^[A-Za-z_$][\w$]*$/.test(workflowType)) {
    throw new UserError(
      `workflow type must be the name of an exported workflow function (e.g. trainPipeline), got ${JSON.stringify(workflowType)}`,
    );
  }
  const args = parseInput(o.input);
  const { client, settings, close } = await cliClient();
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  try {
    const workflowId =
      o.id ?? `${workflowType}-${new Date().toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 4)}`;
    const running = await runningType(client, workflowId);
    if (running !== undefined && running !== workflowType) {
      throw new UserError(
        `--id ${workflowId} is already running as ${running}, not ${workflowType}; choose another --id or run ${running}`,
      );
    }
    // USE_EXISTING: a second `allot run --id X` while X runs attaches to it instead of starting another.
    const handle = await client.workflow.start(workflowType, {
      taskQueue: o.taskQueue ?? CONTROL_TASK_QUEUE,
      workflowId,
      args,
      workflowIdConflictPolicy: 'USE_EXISTING',
      staticSummary: `allot pipeline ${workflowType}`,
      staticDetails: `Started by \`allot run\`. Each step is an \`allotStep\` child workflow; the table of steps is in this workflow's current details. Filter the steps with \`RootWorkflowId = "${workflowId}"\`.`,
    });
    const { runId } = await handle.describe();
    const attached = running !== undefined;
    say(
      `${attached ? 'attached to running' : 'started'} ${workflowType} ${workflowId} (run ${runId}) on ${settings.connectionOptions.address ?? 'localhost:7233'}, namespace ${settings.namespace}`,
    );
    if (!o.wait) {
      if (o.json)
        process.stdout.write(`${JSON.stringify({ workflowId, runId, status: attached ? 'attached' : 'started' })}\n`);
      return 0;
    }
    const result = client.workflow.getHandle(workflowId, runId).result();
    const steps = await followPipeline(client, { workflowId, runId }, result, async (stuck) => {
      say(
        `${workflowType} ${workflowId}: the worker cannot run the pipeline's code (attempt ${stuck.attempt}): ${stuck.message}`,
      );
      if (!attached && UNKNOWN_TYPE.test(stuck.message)) {
        await client.workflow
          .getHandle(workflowId, runId)
          .terminate(`allot run: no worker knows workflow type ${workflowType}`)
          .catch(() => undefined);
        throw new UserError(
          `no worker on task queue ${o.taskQueue ?? CONTROL_TASK_QUEUE} has a pipeline named ${workflowType}; check the name, or start the worker with --workflows pointing at the module that exports it (the run was terminated)`,
        );
      }
      say(
        '  Temporal retries it until a fixed worker is deployed; or stop it with `allot cancel` / `temporal workflow terminate`.',
      );
    });
    const summary = steps.map(stepSummary);
    try {
      const value: unknown = await result;
      say(`${workflowType} ${workflowId}: succeeded`);
      process.stdout.write(
        o.json
          ? `${JSON.stringify({ workflowId, runId, status: 'succeeded', result: value ?? null, steps: summary })}\n`
          : `${JSON.stringify(value ?? null, null, 2)}\n`,
      );
      return RUN_EXIT.succeeded;
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      const outcome = describeFailure(err, steps);
      say(
        `${workflowType} ${workflowId}: ${outcome.status}${outcome.step ? ` at step ${outcome.step}` : ''}: ${outcome.message}`,
      );
      if (outcome.result && outcome.result.logTail.length > 0) {
        say(`--- last lines of ${outcome.step ?? 'the step'}'s log (${outcome.result.logFile}) ---`);
        say(outcome.result.logTail.join('\n'));
        say('---');
      }
      if (o.json) {
        process.stdout.write(
          `${JSON.stringify({
            workflowId,
            runId,
            status: outcome.status,
            step: outcome.step,
            message: outcome.message,
            exitCode: outcome.result?.exitCode,
            logFile: outcome.result?.logFile,
            logTail: outcome.result?.logTail,
            steps: summary,
          })}\n`,
        );
      }
      return outcome.status === 'cancelled' ? RUN_EXIT.cancelled : RUN_EXIT.failed;
    }
  } finally {
    await close();
  }
}

/** The type of the running workflow with this id, or `undefined` if none runs. */
async function runningType(client: Client, workflowId: string): Promise<string | undefined> {
  try {
    const d = await client.workflow.getHandle(workflowId).describe();
    return d.status.name === 'RUNNING' ? d.type : undefined;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}
