/**
 * `npm run chaos -- --seed S --kills K [--partitions P]`: kill -9 agents, the control worker and
 * the Temporal server, and cut agents off from the server, while pipelines run, then check that nothing was lost, nothing ran twice at once, no GPU
 * was double-booked and everything is free at the end. Exits 0 when no invariant broke.
 */
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import type { ChaosReport } from './driver';
import { runChaos } from './driver';

function whole(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max)
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
    return n;
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** The figures of a run, for people. */
export function renderReport(r: ChaosReport): string {
  const byKind = (kind: string): number => r.kills.filter((k) => k.kind === kind).length;
  const completed = r.pipelines.filter((p) => p.status === 'completed').length;
  const recovered = completed === r.pipelines.length;
  const lines = [
    '',
    `chaos seed ${r.seed}: ${Math.round(r.durationMs / 1000)}s`,
    `  kills survived    ${recovered ? r.kills.length : 0} of ${r.kills.length} ` +
      `(agents ${byKind('agent')}, control worker ${byKind('worker')}, Temporal server ${byKind('server')})`,
    `  partitions        ${r.partitions.length}${r.partitions.length > 0 ? ` (${r.partitions.map((p) => `${p.node} ${Math.round(p.durationMs / 1000)}s`).join(', ')})` : ''}`,
    `  pipelines         ${completed} completed of ${r.pipelines.length}`,
    `  steps completed   ${r.stepsCompleted} of ${r.stepsSubmitted} ` +
      `(${r.runs} runs; ${r.interruptedRuns} cut short by a kill and run again)`,
    `  pool samples      ${r.poolSamples}`,
    `  unplanned exits   ${r.unplannedExits.length}${r.unplannedExits.length > 0 ? `: ${r.unplannedExits.join('; ')}` : ''}`,
    `  failed wf tasks   ${r.workflowTaskFailures.length === 0 ? 'none' : r.workflowTaskFailures.map((f) => `\n    - ${f}`).join('')}`,
    `  violations        ${r.violations.length}`,
  ];
  for (const v of r.violations.slice(0, 50)) lines.push(`    - ${v.invariant}: ${v.message}`);
  if (r.violations.length > 50) lines.push(`    ... and ${r.violations.length - 50} more`);
  lines.push(`  data              ${r.dir}`);
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const program = new Command('chaos')
    .description('kill -9 agents, the control worker and the Temporal server while pipelines run; check the invariants')
    .option('--seed <n>', 'seed of the kill schedule and of the pipelines', whole(0, 2 ** 31), 1)
    .option('--kills <n>', 'kills to make', whole(0, 10_000), 10)
    .option('--partitions <n>', 'network partitions of one agent from the server to make', whole(0, 1_000), 0)
    .option('--agents <n>', 'agents, each a separate process', whole(1, 16), 3)
    .option('--gpus <n>', 'GPUs of each agent', whole(1, 16), 2)
    .option('--steps <n>', 'steps per pipeline', whole(1, 20), 4)
    .option('--concurrency <n>', 'pipelines in flight while kills go on', whole(1, 20), 3)
    .option('--pipelines <n>', 'pipelines to run at least', whole(0, 1000))
    .option('--gap <seconds>', 'seconds between kills, as MIN-MAX', '2-6')
    .option('--dir <dir>', 'folder for the run (default: a new temporary folder)')
    .option('--no-codec', 'do not encrypt payloads')
    .option('--json', 'print the report as JSON')
    .exitOverride();
  program.parse(argv);
  const o = program.opts<{
    seed: number;
    kills: number;
    partitions: number;
    agents: number;
    gpus: number;
    steps: number;
    concurrency: number;
    pipelines?: number;
    gap: string;
    dir?: string;
    codec: boolean;
    json?: boolean;
  }>();
  const gap = /^(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)$/.exec(o.gap);
  if (!gap || Number(gap[1]) > Number(gap[2]))
    throw new InvalidArgumentError(`--gap must be MIN-MAX seconds, got ${o.gap}`);
  const dir = o.dir ? path.resolve(o.dir) : mkdtempSync(path.join(tmpdir(), `allot-chaos-${o.seed}-`));
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  log(
    `allot chaos: seed ${o.seed}, ${o.kills} kills, ${o.partitions} partitions, ${o.agents} agents × ${o.gpus} GPUs, ` +
      `pipelines of ${o.steps} steps, ${o.concurrency} at a time`,
  );
  const report = await runChaos({
    seed: o.seed,
    kills: o.kills,
    partitions: o.partitions,
    agents: o.agents,
    gpusPerAgent: o.gpus,
    stepsPerPipeline: o.steps,
    concurrency: o.concurrency,
    minPipelines: o.pipelines ?? o.concurrency,
    gapSeconds: [Number(gap[1]), Number(gap[2])],
    port: await freePort(),
    dir,
    codec: o.codec,
    finishTimeoutMs: 600_000,
    log,
  });
  process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderReport(report)}\n`);
  const finished = report.pipelines.every((p) => p.status === 'completed');
  return report.violations.length === 0 && finished ? 0 : 1;
}

// Stopping the run stops what it started (processes.ts kills them on exit).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

main(process.argv).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) process.exit(e.exitCode === 0 ? 0 : 2);
    process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
