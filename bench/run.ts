/**
 * `npm run bench`: the six figures of allot's performance, each beside Temporal's native way to
 * cap GPU concurrency (a worker whose `maxConcurrentActivityTaskExecutions` equals its GPU count,
 * on a hardware task queue), in one run against one real Temporal dev server; and a seventh, the
 * artifact store's transfers beside native copy tools (`bench/figures/transfer.ts`). Prints a table and
 * writes every figure to a JSON file (one field per figure).
 *
 *   npm run bench [-- --json FILE] [--quick]
 *
 * `--quick` runs smaller versions of every figure (a smoke test of the bench, not figures to
 * quote). `BENCH_TEMPORAL_ADDRESS` runs against an existing server instead of starting one.
 * Speed is measured here, never asserted in tests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { format, resolveConfig } from 'prettier';
import { coreDecideRows } from './core-decide';
import type { CoreDecideRow } from './core-decide';
import { handoffFigure } from './figures/handoff';
import type { HandoffFigure } from './figures/handoff';
import { historyFigure, regime } from './figures/history';
import type { HistoryFigure } from './figures/history';
import { overheadFigure } from './figures/overhead';
import type { OverheadFigure } from './figures/overhead';
import { scaleFigure } from './figures/scale';
import type { ScaleFigure } from './figures/scale';
import { throughputFigure } from './figures/throughput';
import type { ThroughputFigure } from './figures/throughput';
import { transferFigure } from './figures/transfer';
import type { TransferFigure } from './figures/transfer';
import type { Load } from './lib/stats';
import { installBenchRuntime } from './lib/sdk-log';
import { LoadSampler, round } from './lib/stats';
import { goals, renderTable } from './lib/table';
import { startWorld } from './lib/world';

/** Everything one run measured. */
export interface BenchResults {
  startedAt: string;
  seconds: number;
  quick: boolean;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; loadAtStart: number[] };
  handoff: HandoffFigure;
  throughput: ThroughputFigure;
  scale: ScaleFigure;
  historyCost: HistoryFigure;
  coreSpeed: { runs: number; rows: CoreDecideRow[]; load: Load };
  overhead: OverheadFigure;
  transfer: TransferFigure;
  goals: ReturnType<typeof goals>;
}

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const jsonFile = path.resolve(
    option('json') ?? path.join(__dirname, 'results', quick ? 'quick.json' : 'latest.json'),
  );
  // The SDK's own warnings (an activity that finished after its step moved on) are symptoms the
  // figures report; keep the table readable.
  installBenchRuntime();
  const t0 = Date.now();
  const stage = (what: string): void =>
    void process.stderr.write(
      `[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s, load ${(loadavg()[0] ?? 0).toFixed(1)}] ${what}\n`,
    );
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    loadAtStart: loadavg().map((l) => round(l, 2)),
  };

  // Figure 5 first, before the server and workers share the CPUs.
  const coreRuns = quick ? 3 : 10;
  stage(`core speed: decide() over 1,000 nodes and 10,000 pending requests, ${coreRuns} runs per case`);
  const coreLoad = new LoadSampler();
  const rows = coreDecideRows(coreRuns);
  const coreSpeed = { runs: coreRuns, rows, load: coreLoad.stop() };
  // Figure 7 too: its S3 server and copies would share the CPUs with the figures on Temporal.
  const transfer = await transferFigure(stage, quick ? { sizeMiB: 64, runs: 1 } : {});

  const world = await startWorld(stage);
  // Interrupted: stop the dev server and the workers rather than leave them behind.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      stage(`${signal}: stopping`);
      void world.close().finally(() => process.exit(130));
    });
  }
  try {
    const overhead = await overheadFigure(world, stage, quick ? 5 : 20);
    const handoff = await handoffFigure(world, stage, quick ? { gpus: 2, workloads: 12 } : {});
    const throughput = await throughputFigure(world, stage, quick ? { steps: 100, gpus: 16, poolCycles: 200 } : {});
    stage('history cost: reading the pools of the figures above');
    const historyCost = historyFigure(
      [
        await regime(world.client, 'one at a time', overhead.pool, overhead.runs, overhead.poolEventsBefore),
        await regime(world.client, 'queue draining', handoff.pool, handoff.workloads, handoff.poolEventsBefore),
        await regime(
          world.client,
          'saturation',
          world.id('throughput'),
          throughput.allot.steps,
          throughput.poolEventsBefore,
        ),
      ],
      throughput.allot.eventsPerWorkflow,
      throughput.native.eventsPerWorkflow,
    );
    const scale = await scaleFigure(world, stage, quick ? { levels: [100, 1_000], probes: 5 } : {});
    const results: BenchResults = {
      startedAt: new Date(t0).toISOString(),
      seconds: Math.round((Date.now() - t0) / 1000),
      quick,
      machine,
      handoff,
      throughput,
      scale,
      historyCost,
      coreSpeed,
      overhead,
      transfer,
      goals: goals({ handoff, throughput, scale, historyCost }),
    };
    mkdirSync(path.dirname(jsonFile), { recursive: true });
    // Formatted as the project's Prettier would, so that `npm run lint` passes with the file in the tree.
    const options = (await resolveConfig(jsonFile)) ?? {};
    writeFileSync(jsonFile, await format(JSON.stringify(results), { ...options, parser: 'json' }));
    process.stdout.write(`${renderTable(results)}\n`);
    process.stdout.write(`\nall figures in ${path.relative(process.cwd(), jsonFile)}; ${results.seconds}s in all\n`);
  } finally {
    await world.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
