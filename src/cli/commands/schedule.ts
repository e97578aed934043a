/**
 * `allot schedule create|list|trigger|delete`: pipelines on Temporal Schedules (cron in the
 * server, visible and editable in the Temporal UI's Schedules page).
 */
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import type { Client, ScheduleSummary } from '@temporalio/client';
import type { Command } from 'commander';
import { CONTROL_TASK_QUEUE } from '../../workflows/messages';
import { cliClient } from '../context';
import { UserError } from '../errors';
import { table } from '../format';
import type { Exit } from '../options';
import { collect } from '../options';
import { parseInput } from '../parse';

/** Options of `allot schedule create`. */
export interface ScheduleCreateOptions {
  cron: string[];
  input?: string;
  timezone?: string;
  overlap: string;
  note?: string;
  paused?: boolean;
  json?: boolean;
}

const OVERLAP: Record<string, ScheduleOverlapPolicy> = {
  skip: ScheduleOverlapPolicy.SKIP,
  'buffer-one': ScheduleOverlapPolicy.BUFFER_ONE,
  'buffer-all': ScheduleOverlapPolicy.BUFFER_ALL,
  'cancel-other': ScheduleOverlapPolicy.CANCEL_OTHER,
  'terminate-other': ScheduleOverlapPolicy.TERMINATE_OTHER,
  'allow-all': ScheduleOverlapPolicy.ALLOW_ALL,
};

/** Checks a five-field cron expression (or a `@daily`-style shorthand), naming what is wrong. */
export function checkCron(cron: string): void {
  const shorthand = /^@(yearly|annually|monthly|weekly|daily|midnight|hourly|every\s+\S+)$/;
  const fields = cron.trim().split(/\s+/);
  if (shorthand.test(cron.trim())) return;
  if (fields.length < 5 || fields.length > 7 || fields.some((f) => !/^[\d*/,?LW#A-Za-z-]+$/.test(f))) {
    throw new UserError(
      `--cron must be a cron expression of five fields, minute hour day-of-month month day-of-week (e.g. "0 2 * * *" for 02:00 every day), or @daily, @hourly, ...; got ${JSON.stringify(cron)}`,
    );
  }
}

function checkName(name: string): void {
  if (!/^[A-Za-z0-9][\w.-]*$/.test(name)) {
    throw new UserError(
      `schedule name must be letters, digits, ".", "_" or "-", starting with a letter or digit (e.g. nightly-train), got ${JSON.stringify(name)}`,
    );
  }
}

/** `allot schedule create`. */
export async function createSchedule(name: string, workflowType: string, o: ScheduleCreateOptions): Promise<number> {
  checkName(name);
  if (!/^[A-Za-z_$][\w$]*$/.test(workflowType)) {
    throw new UserError(
      `workflow type must be the name of an exported workflow function (e.g. trainPipeline), got ${JSON.stringify(workflowType)}`,
    );
  }
  if (o.cron.length === 0) throw new UserError('--cron is required, e.g. --cron "0 2 * * *" for 02:00 every day');
  o.cron.forEach(checkCron);
  const overlap = OVERLAP[o.overlap];
  if (overlap === undefined) {
    throw new UserError(
      `--overlap must be one of ${Object.keys(OVERLAP).join(', ')}, got ${JSON.stringify(o.overlap)}`,
    );
  }
  const args = parseInput(o.input);
  const { client, close } = await cliClient();
  try {
    const handle = await client.schedule.create({
      scheduleId: name,
      // The server keeps cron as calendars; the memo keeps the expressions as written, for `list`.
      memo: { allotCron: o.cron },
      spec: { cronExpressions: o.cron, timezone: o.timezone },
      policies: { overlap, catchupWindow: '1 minute' },
      state: { paused: o.paused === true, note: o.note ?? `allot schedule create ${name}` },
      action: {
        type: 'startWorkflow',
        workflowType,
        // Temporal appends the scheduled time to this id: one pipeline id per run.
        workflowId: name,
        taskQueue: CONTROL_TASK_QUEUE,
        args,
        staticSummary: `allot pipeline ${workflowType} (schedule ${name})`,
      },
    });
    const d = await handle.describe();
    const next = d.info.nextActionTimes[0];
    if (o.json) {
      process.stdout.write(
        `${JSON.stringify({ scheduleId: name, workflowType, cron: o.cron, nextRun: next?.toISOString() ?? null })}\n`,
      );
    } else {
      process.stderr.write(
        `schedule ${name}: ${workflowType} at "${o.cron.join('", "')}"${o.timezone ? ` (${o.timezone})` : ' (UTC)'}; next run ${next ? next.toISOString() : 'none'}${o.paused ? ' (paused)' : ''}\n`,
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) {
      throw new UserError(
        `a schedule named ${name} already exists; delete it first with \`allot schedule delete ${name}\``,
        1,
      );
    }
    throw err;
  } finally {
    await close();
  }
}

/** `allot schedule list`. */
export async function listSchedules(o: { json?: boolean }): Promise<number> {
  const { client, close } = await cliClient();
  try {
    const rows: ScheduleSummary[] = [];
    for await (const s of client.schedule.list()) rows.push(s);
    rows.sort((a, b) => a.scheduleId.localeCompare(b.scheduleId));
    if (o.json) {
      process.stdout.write(`${JSON.stringify(rows.map(summaryJson), null, 2)}\n`);
      return 0;
    }
    if (rows.length === 0) {
      process.stdout.write('no schedules; create one with `allot schedule create NAME --cron "0 2 * * *" WORKFLOW`\n');
      return 0;
    }
    process.stdout.write(
      `${table(
        ['SCHEDULE', 'WORKFLOW', 'CRON', 'STATE', 'NEXT RUN', 'LAST RUN'],
        rows.map((s) => {
          const j = summaryJson(s);
          return [
            s.scheduleId,
            j.workflowType ?? '',
            (j.cron ?? []).join('; '),
            s.state.paused ? 'paused' : 'active',
            j.nextRun ?? '',
            j.lastRun ?? '',
          ];
        }),
      )}\n`,
    );
    return 0;
  } finally {
    await close();
  }
}

function summaryJson(s: ScheduleSummary): {
  scheduleId: string;
  workflowType?: string;
  cron?: string[];
  paused: boolean;
  nextRun?: string;
  lastRun?: string;
} {
  const last = s.info?.recentActions.at(-1);
  return {
    scheduleId: s.scheduleId,
    workflowType: s.action?.type === 'startWorkflow' ? s.action.workflowType : undefined,
    cron: scheduleCron(s),
    paused: s.state.paused,
    nextRun: s.info?.nextActionTimes[0]?.toISOString(),
    lastRun: last
      ? `${last.takenAt.toISOString()} ${last.action.type === 'startWorkflow' ? last.action.workflow.workflowId : ''}`.trim()
      : undefined,
  };
}

/** The cron expressions a schedule was created with, as the server reports them. */
function scheduleCron(s: ScheduleSummary): string[] | undefined {
  const written = s.memo?.allotCron;
  if (Array.isArray(written)) return written.map(String);
  const spec = s.spec as { cronExpressions?: string[]; calendars?: unknown[] } | undefined;
  if (spec?.cronExpressions && spec.cronExpressions.length > 0) return spec.cronExpressions;
  return spec?.calendars && spec.calendars.length > 0 ? [`${spec.calendars.length} calendar spec(s)`] : undefined;
}

/** `allot schedule trigger`: runs the scheduled pipeline now. */
export async function triggerSchedule(name: string): Promise<number> {
  return withSchedule(name, async (client) => {
    await client.schedule.getHandle(name).trigger(ScheduleOverlapPolicy.ALLOW_ALL);
    process.stderr.write(`schedule ${name}: triggered a run now\n`);
  });
}

/** `allot schedule delete`. */
export async function deleteSchedule(name: string): Promise<number> {
  return withSchedule(name, async (client) => {
    await client.schedule.getHandle(name).delete();
    process.stderr.write(`schedule ${name}: deleted (pipelines it started keep running)\n`);
  });
}

async function withSchedule(name: string, fn: (client: Client) => Promise<void>): Promise<number> {
  const { client, close } = await cliClient();
  try {
    await fn(client);
    return 0;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) {
      throw new UserError(`no schedule named ${name}; see \`allot schedule list\``, 1);
    }
    throw err;
  } finally {
    await close();
  }
}

/** Adds `allot schedule ...` to the program. */
export function registerSchedule(program: Command, exit: Exit): void {
  const schedule = program
    .command('schedule')
    .description('run pipelines on a cron schedule, with Temporal Schedules (see them in the UI under Schedules)');
  schedule
    .command('create')
    .description('create a schedule that starts a pipeline, e.g. create nightly --cron "0 2 * * *" trainPipeline')
    .argument('<name>', 'schedule id, e.g. nightly-train')
    .argument('<workflowType>', 'pipeline workflow to start, e.g. trainPipeline')
    .option('--cron <expression>', 'cron expression, e.g. "0 2 * * *" (repeatable)', collect, [])
    .option('--input <json|@file>', 'the workflow argument, as JSON or @file')
    .option('--timezone <tz>', 'time zone of the cron expression, e.g. Europe/Berlin (default UTC)')
    .option('--overlap <policy>', `when the previous run is still going: ${Object.keys(OVERLAP).join(', ')}`, 'skip')
    .option('--note <text>', 'note shown with the schedule')
    .option('--paused', 'create it paused')
    .option('--json', 'machine-readable output')
    .action(async (name: string, type: string, o: ScheduleCreateOptions) => exit(await createSchedule(name, type, o)));
  schedule
    .command('list')
    .description('schedules with their pipeline, cron, next and last run')
    .option('--json', 'machine-readable output')
    .action(async (o: { json?: boolean }) => exit(await listSchedules(o)));
  schedule
    .command('trigger')
    .description('start the scheduled pipeline now')
    .argument('<name>')
    .action(async (name: string) => exit(await triggerSchedule(name)));
  schedule
    .command('delete')
    .description('delete a schedule (pipelines it started keep running)')
    .argument('<name>')
    .action(async (name: string) => exit(await deleteSchedule(name)));
}
