/**
 * Usage accounting, after Slurm's sreport and seff: GPU-, CPU- and memory-hours per team, pipeline
 * or step within a window, and efficiency (what was used against what was held).
 */
import type { AccountingRecord } from '../workflows/accounting-types';

/** A step's record with when its workflow closed (to end leases a terminated step never ended). */
export interface AccountedStep {
  record: AccountingRecord;
  workflowId: string;
  /** Close time of the step workflow, ms; absent while it runs. */
  closedAt?: number;
}

/** One row of the report. */
export interface UsageRow {
  key: string;
  steps: number;
  leases: number;
  gpuHours: number;
  cpuHours: number;
  /** GiB-hours. */
  memoryGiBHours: number;
  /** Custom resource-hours by name (`{ nvme: 2.5 }`); absent when no lease held any. */
  customHours?: Record<string, number>;
  /** Mean CPU used / CPU held, over leases with samples; absent without samples. */
  cpuEfficiency?: number;
  /** Mean memory used / memory held. */
  memoryEfficiency?: number;
  /** Mean GPU utilization (0..1), over leases that measured it. */
  gpuUtilization?: number;
}

/** What to group by. */
export type UsageGrouping = 'team' | 'pipeline' | 'step';

const HOUR = 3_600_000;

/**
 * Sums leases that overlap [since, until), each clipped to the window. A lease without an end
 * ends at its step's close time, or at `now` while the step runs.
 */
export function usageReport(
  steps: readonly AccountedStep[],
  options: { since: number; until: number; by: UsageGrouping; now: number },
): UsageRow[] {
  const rows = new Map<
    string,
    UsageRow & { stepIds: Set<string>; eff: { cpu: [number, number]; mem: [number, number]; gpu: [number, number] } }
  >();
  for (const { record, workflowId, closedAt } of steps) {
    const key =
      options.by === 'team'
        ? record.team
        : options.by === 'pipeline'
          ? (record.pipeline ?? '(none)')
          : `${record.pipeline ?? ''}${record.pipeline ? '/' : ''}${record.step}`;
    for (const lease of record.leases) {
      const end = lease.end ?? closedAt ?? options.now;
      const from = Math.max(lease.start, options.since);
      const to = Math.min(end, options.until);
      if (to <= from) continue;
      const hours = (to - from) / HOUR;
      let row = rows.get(key);
      if (!row) {
        row = {
          key,
          steps: 0,
          leases: 0,
          gpuHours: 0,
          cpuHours: 0,
          memoryGiBHours: 0,
          stepIds: new Set(),
          eff: { cpu: [0, 0], mem: [0, 0], gpu: [0, 0] },
        };
        rows.set(key, row);
      }
      row.stepIds.add(workflowId);
      row.leases++;
      row.gpuHours += lease.gpu * hours;
      row.cpuHours += lease.cpu * hours;
      row.memoryGiBHours += (lease.memoryMiB / 1024) * hours;
      for (const [name, n] of Object.entries(lease.custom ?? {})) {
        const custom = (row.customHours ??= {});
        custom[name] = (custom[name] ?? 0) + n * hours;
      }
      const u = lease.usage;
      if (u?.cpuCores && lease.cpu > 0) {
        row.eff.cpu[0] += u.cpuCores.mean * hours;
        row.eff.cpu[1] += lease.cpu * hours;
      }
      if (u?.memoryMiB && lease.memoryMiB > 0) {
        row.eff.mem[0] += u.memoryMiB.mean * hours;
        row.eff.mem[1] += lease.memoryMiB * hours;
      }
      if (u?.gpuUtilPercent && lease.gpu > 0) {
        row.eff.gpu[0] += (u.gpuUtilPercent.mean / 100) * lease.gpu * hours;
        row.eff.gpu[1] += lease.gpu * hours;
      }
    }
  }
  return [...rows.values()]
    .map(({ stepIds, eff, ...row }) => ({
      ...row,
      steps: stepIds.size,
      ...(eff.cpu[1] > 0 ? { cpuEfficiency: eff.cpu[0] / eff.cpu[1] } : {}),
      ...(eff.mem[1] > 0 ? { memoryEfficiency: eff.mem[0] / eff.mem[1] } : {}),
      ...(eff.gpu[1] > 0 ? { gpuUtilization: eff.gpu[0] / eff.gpu[1] } : {}),
    }))
    .sort((a, b) => b.gpuHours - a.gpuHours || b.cpuHours - a.cpuHours || (a.key < b.key ? -1 : 1));
}

/** Reads `--since`/`--until`: an ISO date or time, or a duration back from now (`90m`, `24h`, `7d`). */
export function parseWhen(value: string, now: number): number | undefined {
  const rel = /^(\d+(?:\.\d+)?)(s|m|h|d|w)$/.exec(value.trim());
  if (rel) {
    const unit = { s: 1_000, m: 60_000, h: HOUR, d: 24 * HOUR, w: 7 * 24 * HOUR }[
      rel[2] as 's' | 'm' | 'h' | 'd' | 'w'
    ];
    return now - Number(rel[1]) * unit;
  }
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}
