/**
 * `allot limit set|list|remove`: cluster-wide named limits, like Slurm's licenses or Airflow's
 * pools: at most `--max` units held at once by the steps that ask for them (`--limit NAME=N`).
 */
import type { Command } from 'commander';
import { LIMIT_NAME, MAX_LIMIT_UNITS } from '../../core';
import type { LimitReport } from '../../workflows/messages';
import { DEFAULT_POOL, limitsQuery, removeLimitUpdate, setLimitUpdate } from '../../workflows/messages';
import { UserError } from '../errors';
import { table } from '../format';
import type { Exit } from '../options';
import { parseInteger } from '../parse';
import { withPool } from '../pool-admin';

function renderLimits(r: LimitReport): string {
  if (r.limits.length === 0) return 'no limits set; add one with `allot limit set NAME --max N`';
  return table(
    ['LIMIT', 'IN USE', 'WAITING', 'HELD BY'],
    r.limits.map((l) => [
      l.name,
      `${l.inUse}/${l.max}`,
      String(l.waiting),
      l.holders.length === 0
        ? '-'
        : l.holders.map((h) => (h.amount > 1 ? `${h.label}(${h.amount})` : h.label)).join(', '),
    ]),
  );
}

function print(r: LimitReport, json: boolean | undefined): void {
  process.stdout.write(json ? `${JSON.stringify(r, null, 2)}\n` : `${renderLimits(r)}\n`);
}

/** A limit's name, checked here so that the error names the argument. */
function limitName(name: string): string {
  if (!LIMIT_NAME.test(name)) {
    throw new UserError(
      `limit name must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit, got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** Adds `limit` and its subcommands to the program. */
export function registerLimit(program: Command, exit: Exit): void {
  const limit = program
    .command('limit')
    .description('cluster-wide named limits (licenses, Airflow-like pools): at most N steps hold one at once');

  limit
    .command('set')
    .description("set a limit's max (a lower max revokes nothing: it takes effect as holders release)")
    .argument('<name>')
    .requiredOption('--max <n>', `units in all, a whole number from 0 to ${MAX_LIMIT_UNITS}`)
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { max: string; pool: string; json?: boolean }) => {
      const max = parseInteger(o.max, '--max', 0, MAX_LIMIT_UNITS) as number;
      const report = await withPool(o.pool, (h) =>
        h.executeUpdate(setLimitUpdate, { args: [{ name: limitName(name), max }] }),
      );
      print(report, o.json);
      exit(0);
    });

  limit
    .command('list')
    .description('limits with their use, max, waiting steps and holders')
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .option('--json', 'machine-readable output')
    .action(async (o: { pool: string; json?: boolean }) => {
      print(await withPool(o.pool, (h) => h.query(limitsQuery)), o.json);
      exit(0);
    });

  limit
    .command('remove')
    .description('remove a limit (refused while steps hold it)')
    .argument('<name>')
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .option('--json', 'machine-readable output')
    .action(async (name: string, o: { pool: string; json?: boolean }) => {
      const report = await withPool(o.pool, (h) =>
        h.executeUpdate(removeLimitUpdate, { args: [{ name: limitName(name) }] }),
      );
      print(report, o.json);
      exit(0);
    });
}
