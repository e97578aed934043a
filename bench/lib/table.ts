/**
 * The table `npm run bench` prints, and the goals of issue 7 checked against the figures.
 */
import type { BenchResults } from '../run';
import type { ScaleMeasured } from '../figures/scale';
import { transferRows } from '../figures/transfer';

/** One goal: what it asks, what was measured, whether it holds. */
export interface Goal {
  goal: string;
  measured: string;
  holds: boolean;
}

/** Checks the goals of issue 7. */
export function goals(r: Pick<BenchResults, 'handoff' | 'throughput' | 'scale' | 'historyCost'>): Goal[] {
  const levels = r.scale.levels;
  const first = levels.find((l): l is ScaleMeasured => !('error' in l));
  // The goal is about 10,000 queued (or the largest level asked for).
  const largest = levels.find((l) => l.queued >= 10_000) ?? levels[levels.length - 1];
  const scaleHolds =
    largest !== undefined &&
    !('error' in largest) &&
    first !== undefined &&
    largest.acquire.p50 <= 2 * first.acquire.p50;
  return [
    {
      goal: 'handoff p50 <= 2x the baseline slot reuse',
      measured: `${r.handoff.ratioP50 ?? '?'}x (${r.handoff.allot.p50} ms vs ${r.handoff.native.p50} ms)`,
      holds: r.handoff.ratioP50 !== null && r.handoff.ratioP50 <= 2,
    },
    {
      goal: '>= 100 acquire/release cycles/s through one pool (the pool alone)',
      measured: `${r.throughput.poolCycles.perSecond} cycles/s`,
      holds: r.throughput.poolCycles.perSecond >= 100,
    },
    {
      goal: '>= 100 steps/s end to end (steps, agent, processes on this machine)',
      measured: `${r.throughput.allot.perSecond} steps/s (baseline ${r.throughput.native.perSecond}/s)`,
      holds: r.throughput.allot.perSecond >= 100,
    },
    {
      goal: `acquire p50 at ${largest?.queued.toLocaleString('en-US') ?? '?'} queued <= 2x at ${first?.queued ?? '?'}`,
      measured:
        largest && 'error' in largest
          ? `pool failed at ${largest.queued.toLocaleString('en-US')} queued`
          : `${r.scale.growth ?? '?'}x`,
      holds: scaleHolds,
    },
    {
      goal: '<= 12 pool history events per step',
      measured: r.historyCost.regimes.map((g) => `${g.perStep} (${g.regime})`).join(', '),
      holds: r.historyCost.worstPerStep <= 12,
    },
  ];
}

const round1 = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;
const ms = (v: number | undefined): string => (v === undefined || Number.isNaN(v) ? '-' : `${v} ms`);
const x = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : `${v}x`);

/** Lines of a table whose first row is its header, columns padded to their widest cell. */
export function alignColumns(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  const line = (row: string[]): string =>
    row
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(rows[0] ?? []), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)];
}

/** Renders the table of all seven figures, with baseline ratios and the load each was measured under. */
export function renderTable(r: BenchResults): string {
  const rows: string[][] = [['figure', 'allot', 'native baseline', 'ratio', 'load (1-min, mean)']];
  const h = r.handoff;
  rows.push([
    `1 handoff p50 (${h.gpus} GPUs, ${h.workloads} x ${h.workloadSeconds}s)`,
    ms(h.allot.p50),
    ms(h.native.p50),
    x(h.ratioP50),
    `${h.load.allot.mean} / ${h.load.native.mean}`,
  ]);
  rows.push(['1 handoff p99', ms(h.allot.p99), ms(h.native.p99), x(h.ratioP99), '']);
  const t = r.throughput;
  rows.push([
    `2 throughput (${t.allot.steps} trivial steps, ${t.gpus} GPUs)`,
    `${t.allot.perSecond} steps/s`,
    `${t.native.perSecond} /s`,
    x(t.ratio),
    `${t.allot.load.mean} / ${t.native.load.mean}`,
  ]);
  rows.push([
    `2 pool alone: acquire+release cycles (${t.poolCycles.cycles}, Updates)`,
    `${t.poolCycles.perSecond} cycles/s`,
    '-',
    '-',
    `${t.poolCycles.load.mean}`,
  ]);
  rows.push([
    '2 launch at saturation: pickup / fencing+spawn',
    `${ms(t.allotLaunch.scheduledToStarted.p50)} / ${ms(t.allotLaunch.startedToProcess.p50)} (p99 ${ms(t.allotLaunch.startedToProcess.p99)}; ${Math.round(t.allotLaunch.relaunched * 100)}% relaunched)`,
    '-',
    '-',
    '',
  ]);
  const cpu = (c: { worker: number; server?: number }): string =>
    c.server !== undefined ? `${round1(c.worker + c.server)} ms (${c.worker} + server ${c.server})` : `${c.worker} ms`;
  rows.push([
    '2 CPU per step (this process + dev server)',
    cpu(t.allot.cpuMsPerStep),
    cpu(t.native.cpuMsPerStep),
    x(
      t.native.cpuMsPerStep.worker + (t.native.cpuMsPerStep.server ?? 0) > 0
        ? round1(
            (t.allot.cpuMsPerStep.worker + (t.allot.cpuMsPerStep.server ?? 0)) /
              (t.native.cpuMsPerStep.worker + (t.native.cpuMsPerStep.server ?? 0)),
            2,
          )
        : null,
    ),
    '',
  ]);
  for (const l of r.scale.levels) {
    if ('error' in l) {
      rows.push([
        `3 acquire p50, ${l.queued.toLocaleString('en-US')} queued`,
        `FAILED: ${/exceeded the error limit|PayloadsTooLarge/.test(l.error) ? 'continue-as-new state over 2 MB' : l.error.slice(0, 60)}`,
        '-',
        '-',
        `${l.load.mean}`,
      ]);
      continue;
    }
    rows.push([
      `3 acquire p50, ${l.queued.toLocaleString('en-US')} queued (enqueue)`,
      ms(l.acquire.p50),
      ms(l.nativeEnqueue.p50),
      x(l.ratioP50),
      `${l.load.mean}`,
    ]);
    rows.push([
      `3 pool task p50 / p99, ${l.queued.toLocaleString('en-US')} queued`,
      `${l.poolTask.p50} / ${l.poolTask.p99} ms`,
      ms(l.nativeTask.p50),
      '-',
      '',
    ]);
  }
  const hc = r.historyCost;
  for (const g of hc.regimes) {
    rows.push([
      `4 pool events per step (${g.regime})`,
      `${g.perStep} (${g.poolRuns} run${g.poolRuns === 1 ? '' : 's'}; CAN every ~${g.stepsPerRun} steps)`,
      '-',
      '-',
      '',
    ]);
  }
  rows.push([
    '4 events per step, total (pool + step)',
    `${round1((hc.regimes.find((g) => g.regime === 'saturation')?.perStep ?? 0) + hc.stepEvents, 2)}`,
    `${hc.nativeEvents}`,
    x(hc.ratioTotal),
    '',
  ]);
  for (const c of r.coreSpeed.rows.filter((row) => row.placement === 'fragmentation-aware')) {
    rows.push([
      `5 decide() ${c.snapshot}`,
      `${c.median.toFixed(1)} ms (CPU ${c.cpu.toFixed(1)} ms)`,
      'n/a',
      '-',
      `${r.coreSpeed.load.mean}`,
    ]);
  }
  const o = r.overhead;
  rows.push([
    `6 one 1-GPU step, end to end (p50 of ${o.runs})`,
    ms(o.allot.p50),
    ms(o.native.p50),
    x(o.ratioP50),
    `${o.load.mean}`,
  ]);
  rows.push(...transferRows(r.transfer));
  const out = alignColumns(rows);
  out.push('', 'goals (issue 7):');
  for (const g of r.goals) out.push(`  ${g.holds ? 'holds' : 'MISSED'}  ${g.goal}: ${g.measured}`);
  out.push(
    '',
    `machine: ${r.machine.cpus} CPUs (${r.machine.cpuModel}), ${r.machine.memoryGiB} GiB, Node ${r.machine.node}; ` +
      `load average at start ${r.machine.loadAtStart.join(' ')}`,
  );
  return out.join('\n');
}
