/**
 * `allot usage`: GPU-, CPU- and memory-hours and efficiency per team, pipeline or step, from the
 * accounting records steps keep in their memos (like Slurm's sreport and seff).
 */
import type { Command } from 'commander';
import { fetchAccounting, renderUsage } from '../accounting';
import { cliClient } from '../context';
import { UserError } from '../errors';
import type { Exit } from '../options';
import type { UsageGrouping } from '../usage-report';
import { parseWhen, usageReport } from '../usage-report';

/** Options of `allot usage`. */
export interface UsageOptions {
  since?: string;
  until?: string;
  by: string;
  csv?: boolean;
  json?: boolean;
  pool?: string;
}

/** Adds `usage` to the program. */
export function registerUsage(program: Command, exit: Exit): void {
  program
    .command('usage')
    .description('GPU-, CPU- and memory-hours and efficiency per team, pipeline or step (like sreport and seff)')
    .option('--since <when>', 'start of the window: a date, or a duration back from now like 24h or 7d', '24h')
    .option('--until <when>', 'end of the window (default: now)')
    .option('--by <grouping>', 'team, pipeline or step', 'team')
    .option('--pool <name>', 'only this pool')
    .option('--csv', 'CSV output')
    .option('--json', 'JSON output')
    .action(async (o: UsageOptions) => exit(await usage(o)));
}

/** Runs `allot usage`. */
export async function usage(o: UsageOptions): Promise<number> {
  const now = Date.now();
  if (!['team', 'pipeline', 'step'].includes(o.by))
    throw new UserError(`--by must be team, pipeline or step, got ${JSON.stringify(o.by)}`);
  const since = o.since === undefined ? now - 24 * 3_600_000 : parseWhen(o.since, now);
  if (since === undefined)
    throw new UserError(
      `--since must be a date (2026-12-01, 2026-12-01T08:00Z) or a duration back from now (90m, 24h, 7d), got ${JSON.stringify(o.since)}`,
    );
  const until = o.until === undefined ? now : parseWhen(o.until, now);
  if (until === undefined)
    throw new UserError(`--until must be a date or a duration back from now, got ${JSON.stringify(o.until)}`);
  if (until <= since)
    throw new UserError(
      `--until (${new Date(until).toISOString()}) must be after --since (${new Date(since).toISOString()})`,
    );
  const { client, close } = await cliClient();
  try {
    const started = Date.now();
    const steps = await fetchAccounting(client, until, o.pool);
    const rows = usageReport(steps, { since, until, by: o.by as UsageGrouping, now });
    const format = o.csv ? 'csv' : o.json ? 'json' : 'table';
    if (format === 'table') {
      process.stderr.write(
        `usage from ${new Date(since).toISOString()} to ${new Date(until).toISOString()}, by ${o.by} (${steps.length} step records read in ${((Date.now() - started) / 1000).toFixed(1)} s)\n`,
      );
    }
    process.stdout.write(`${renderUsage(rows, o.by as UsageGrouping, format)}\n`);
  } finally {
    await close();
  }
  return 0;
}
