import { describe, expect, it } from 'vitest';
import type { AccountedStep } from '../../src/cli/usage-report';
import { parseWhen, usageReport } from '../../src/cli/usage-report';

const H = 3_600_000;
let n = 0;
const step = (
  team: string,
  gpu: number,
  start: number,
  end: number | undefined,
  extra: Partial<AccountedStep> = {},
): AccountedStep => ({
  workflowId: `${team}-${++n}`,
  record: {
    version: 1,
    pool: 'p',
    team,
    pipeline: 'pipe',
    step: `${team}-step`,
    leases: [{ leaseId: 'l', nodeId: 'n', gpu, cpu: 2, memoryMiB: 2048, start, ...(end !== undefined ? { end } : {}) }],
  },
  ...extra,
});

describe('usage report', () => {
  it('sums GPU-, CPU- and memory-hours per team', () => {
    const rows = usageReport([step('a', 2, 0, H), step('a', 1, 0, 2 * H), step('b', 4, 0, H / 2)], {
      since: 0,
      until: 10 * H,
      by: 'team',
      now: 10 * H,
    });
    expect(rows).toMatchObject([
      { key: 'a', steps: 2, gpuHours: 4, cpuHours: 6, memoryGiBHours: 6 },
      { key: 'b', steps: 1, gpuHours: 2 },
    ]);
  });

  it('clips leases to the window, as sreport does', () => {
    const rows = usageReport([step('a', 1, 0, 4 * H)], { since: H, until: 2 * H, by: 'team', now: 10 * H });
    expect(rows[0]?.gpuHours).toBeCloseTo(1);
  });

  it("ends a lease a terminated step never released at the step's close time, and a running one now", () => {
    const closed = usageReport([step('a', 1, 0, undefined, { closedAt: H })], {
      since: 0,
      until: 10 * H,
      by: 'team',
      now: 10 * H,
    });
    expect(closed[0]?.gpuHours).toBeCloseTo(1);
    const running = usageReport([step('a', 1, 0, undefined)], { since: 0, until: 10 * H, by: 'team', now: 3 * H });
    expect(running[0]?.gpuHours).toBeCloseTo(3);
  });

  it('reports efficiency as used against held, weighted by time', () => {
    const s = step('a', 1, 0, H);
    const lease = s.record.leases[0];
    if (lease)
      lease.usage = {
        samples: 10,
        intervalMs: 1000,
        cpuCores: { mean: 1, peak: 2 },
        memoryMiB: { mean: 512, peak: 900 },
      };
    const [row] = usageReport([s], { since: 0, until: H, by: 'team', now: H });
    expect(row?.cpuEfficiency).toBeCloseTo(0.5);
    expect(row?.memoryEfficiency).toBeCloseTo(0.25);
    expect(row?.gpuUtilization).toBeUndefined();
  });

  it('reads dates and durations back from now', () => {
    expect(parseWhen('24h', 100 * H)).toBe(76 * H);
    expect(parseWhen('2026-12-01T00:00:00Z', 0)).toBe(Date.parse('2026-12-01T00:00:00Z'));
    expect(parseWhen('yesterday', 0)).toBeUndefined();
  });
});
