/**
 * `allot usage`: who used what, from the accounting records steps keep in their memos.
 */
import type { Client } from '@temporalio/client';
import type { AccountingRecord } from '../workflows/accounting-types';
import { ACCOUNTING_MEMO } from '../workflows/accounting-types';
import { cliClient } from './context';
import { UserError } from './errors';
import { table } from './format';
import type { AccountedStep, UsageGrouping, UsageRow } from './usage-report';
import { parseWhen, usageReport } from './usage-report';

/** Options of `allot usage`. */
export interface UsageOptions {
  since?: string;
  until?: string;
  by: string;
  csv?: boolean;
  json?: boolean;
  pool?: string;
}

/** Every step record that may overlap the window (steps started before `until`). */
export async function fetchAccounting(client: Client, until: number, pool?: string): Promise<AccountedStep[]> {
  const query = [
    `WorkflowType = "allotStep"`,
    `StartTime < "${new Date(until).toISOString()}"`,
    ...(pool ? [`AllotPool = "${pool}"`] : []),
  ].join(' AND ');
  const steps: AccountedStep[] = [];
  for await (const wf of client.workflow.list({ query, pageSize: 1000 })) {
    const record = wf.memo?.[ACCOUNTING_MEMO] as AccountingRecord | undefined;
    if (!record || record.version !== 1) continue;
    steps.push({ record, workflowId: wf.workflowId, ...(wf.closeTime ? { closedAt: wf.closeTime.getTime() } : {}) });
  }
  return steps;
}

const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(x * 100).toFixed(0)}%`);
const num = (x: number): string => x.toFixed(x >= 100 ? 0 : x >= 1 ? 2 : 4);

/** Renders rows as a table, CSV or JSON. */
export function renderUsage(rows: UsageRow[], by: UsageGrouping, format: 'table' | 'csv' | 'json'): string {
  if (format === 'json') return JSON.stringify(rows, null, 2);
  const header = [
    by.toUpperCase(),
    'STEPS',
    'GPU-HOURS',
    'CPU-HOURS',
    'MEM-GIB-HOURS',
    'CPU-EFF',
    'MEM-EFF',
    'GPU-UTIL',
  ];
  const cells = rows.map((r) => [
    r.key,
    String(r.steps),
    num(r.gpuHours),
    num(r.cpuHours),
    num(r.memoryGiBHours),
    pct(r.cpuEfficiency),
    pct(r.memoryEfficiency),
    pct(r.gpuUtilization),
  ]);
  if (format === 'csv') {
    const esc = (c: string): string => (/[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c);
    const raw = rows.map((r) => [
      r.key,
      String(r.steps),
      String(r.gpuHours),
      String(r.cpuHours),
      String(r.memoryGiBHours),
      String(r.cpuEfficiency ?? ''),
      String(r.memoryEfficiency ?? ''),
      String(r.gpuUtilization ?? ''),
    ]);
    return [header.map((h) => h.toLowerCase()), ...raw].map((row) => row.map(esc).join(',')).join('\n');
  }
  if (rows.length === 0) return 'no usage in this window';
  return table(header, cells);
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
