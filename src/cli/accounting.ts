/**
 * Who used what, from the accounting records steps keep in their memos: read by `allot usage`.
 */
import type { Client } from '@temporalio/client';
import type { AccountingRecord } from '../workflows/accounting-types';
import { ACCOUNTING_MEMO } from '../workflows/accounting-types';
import { table } from './format';
import type { AccountedStep, UsageGrouping, UsageRow } from './usage-report';

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
  // One column of resource-hours per custom resource any row held, after memory.
  const customNames = [...new Set(rows.flatMap((r) => Object.keys(r.customHours ?? {})))].sort();
  const customHours = (r: UsageRow): number[] => customNames.map((n) => r.customHours?.[n] ?? 0);
  const header = [
    by.toUpperCase(),
    'STEPS',
    'GPU-HOURS',
    'CPU-HOURS',
    'MEM-GIB-HOURS',
    ...customNames.map((n) => `${n.toUpperCase()}-HOURS`),
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
    ...customHours(r).map(num),
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
      ...customHours(r).map(String),
      String(r.cpuEfficiency ?? ''),
      String(r.memoryEfficiency ?? ''),
      String(r.gpuUtilization ?? ''),
    ]);
    return [header.map((h) => h.toLowerCase()), ...raw].map((row) => row.map(esc).join(',')).join('\n');
  }
  if (rows.length === 0) return 'no usage in this window';
  return table(header, cells);
}
