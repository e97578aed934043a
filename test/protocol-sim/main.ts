/**
 * `npm run protocol-sim -- --seeds N [--first F] [--events M] [--seed S] [--only i,j,...] [--trace]`
 *
 * Runs the deterministic simulation of the whole protocol (the real pool core, models of steps
 * and agents, faults) for seeds F..F+N-1 (1..N by default), or for one seed S. On a violation it shrinks the seed's
 * input events to a short list that still breaks the same invariant and prints it, with the
 * command that replays it. The last line is `seeds N, events E, violations V`; the exit code is 1
 * when any invariant broke.
 */
import { Command, InvalidArgumentError } from 'commander';
import { runScenario } from './run';
import { describeEvent, generateScenario } from './scenario';
import { shrink } from './shrink';

function whole(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max)
      throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
    return n;
  };
}

function indexList(value: string): number[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^\d+$/.test(p)))
    throw new InvalidArgumentError(
      `must be event indices separated by commas, like 0,3,7, got ${JSON.stringify(value)}`,
    );
  return parts.map(Number);
}

function main(argv: string[]): number {
  const program = new Command('protocol-sim')
    .description('simulate the pool, steps and agents under faults, checking every invariant after every event')
    .option('--seeds <n>', 'run n seeds, from --first on', whole(1, 1_000_000), 100)
    .option('--first <s>', 'the first of the seeds (to split a long run between processes)', whole(1, 2 ** 31), 1)
    .option('--seed <s>', 'run this one seed (with --only, a shrunk reproduction)', whole(0, 2 ** 31))
    .option('--events <m>', 'input events per seed (arrivals, faults, changes)', whole(1, 10_000), 40)
    .option('--only <indices>', "keep only these input events of the seed's list", indexList)
    .option('--trace', "print the world's trace of a single seed")
    .option('--no-shrink', 'report violations without shrinking them')
    .showHelpAfterError()
    .exitOverride();
  try {
    program.parse(argv);
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    return code === 0 ? 0 : 2;
  }
  const opts = program.opts<{
    seeds: number;
    first: number;
    seed?: number;
    events: number;
    only?: number[];
    trace?: boolean;
    shrink: boolean;
  }>();
  const seeds = opts.seed !== undefined ? [opts.seed] : Array.from({ length: opts.seeds }, (_, i) => opts.first + i);
  let events = 0;
  let violations = 0;
  const started = Date.now();
  let lastProgress = started;
  for (const [i, seed] of seeds.entries()) {
    const full = generateScenario(seed, opts.events);
    const scenario = opts.only
      ? { ...full, events: opts.only.map((j) => full.events[j]).filter((e) => e !== undefined) }
      : full;
    const result = runScenario(scenario, { trace: opts.trace ? 2_000 : 60 });
    events += result.events;
    if (opts.trace && seeds.length === 1) process.stdout.write(`${result.trace.join('\n')}\n`);
    if (result.violations.length > 0) {
      violations += result.violations.length;
      const v = result.violations[0];
      if (!v) continue;
      process.stdout.write(`\nseed ${seed}: ${v.invariant} at ${(v.at / 1000).toFixed(1)}s: ${v.message}\n`);
      const kept = opts.shrink && !opts.only ? shrink(full, v.invariant) : (opts.only ?? full.events.map((_, j) => j));
      process.stdout.write(`  reproduced by ${kept.length} of ${full.events.length} input events:\n`);
      for (const j of kept) {
        const e = full.events[j];
        if (e) process.stdout.write(`    [${j}] ${describeEvent(e)}\n`);
      }
      process.stdout.write(
        `  replay: npm run protocol-sim -- --seed ${seed} --events ${opts.events} --only ${kept.join(',')} --trace\n`,
      );
    }
    if (Date.now() - lastProgress > 5_000 && seeds.length > 1) {
      lastProgress = Date.now();
      process.stderr.write(`  ... ${i + 1} of ${seeds.length} seeds, ${violations} violations so far\n`);
    }
  }
  process.stderr.write(`  ran in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
  process.stdout.write(`seeds ${seeds.length}, events ${events}, violations ${violations}\n`);
  return violations > 0 ? 1 : 0;
}

process.exitCode = main(process.argv);
