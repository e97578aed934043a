/**
 * `allot quota set|list|remove`: teams' nominal quotas and how much idle quota of others each may
 * borrow (a Kueue-style cohort).
 */
import type { Command } from 'commander';
import type { QuotaReport } from '../../workflows/messages';
import { DEFAULT_POOL, quotasQuery, removeQuotaUpdate, setQuotaUpdate } from '../../workflows/messages';
import { UserError } from '../errors';
import { table } from '../format';
import type { Exit } from '../options';
import { collect } from '../options';
import { formatVector, vectorFrom, withPool } from '../pool-admin';

function renderQuotas(r: QuotaReport): string {
  if (r.teams.length === 0 && r.unlimited.length === 0) return 'no quotas set and nothing running';
  const rows = [
    ...r.teams.map((t) => [
      t.name,
      formatVector(t.nominal),
      t.borrowingLimit ? formatVector(t.borrowingLimit) : 'any',
      formatVector(t.usage),
    ]),
    ...r.unlimited.map((t) => [t.name, 'none', '-', formatVector(t.usage)]),
  ];
  return table(['TEAM', 'QUOTA', 'MAY BORROW', 'IN USE'], rows);
}

/** Adds `quota` and its subcommands to the program. */
export function registerQuota(program: Command, exit: Exit): void {
  const quota = program.command('quota').description("teams' GPU/CPU/memory quotas and borrowing (Kueue-style cohort)");

  quota
    .command('set')
    .description("set a team's nominal quota and how much idle quota of others it may borrow")
    .argument('<team>')
    .option('--gpu <n>', 'nominal GPUs')
    .option('--cpu <quantity>', 'nominal CPU, e.g. 64')
    .option('--memory <quantity>', 'nominal memory, e.g. 512Gi')
    .option('--custom <name=n>', 'nominal custom resource (repeatable)', collect)
    .option('--borrow <n>', 'GPUs it may borrow beyond its quota (default: any)')
    .option('--borrow-cpu <quantity>', 'CPU it may borrow')
    .option('--borrow-memory <quantity>', 'memory it may borrow')
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .action(
      async (
        team: string,
        o: {
          gpu?: string;
          cpu?: string;
          memory?: string;
          custom?: string[];
          borrow?: string;
          borrowCpu?: string;
          borrowMemory?: string;
          pool: string;
        },
      ) => {
        const nominal = vectorFrom(o, '--');
        if (!nominal) throw new UserError('give at least one of --gpu, --cpu, --memory or --custom for the quota');
        const borrowingLimit = vectorFrom({ gpu: o.borrow, cpu: o.borrowCpu, memory: o.borrowMemory }, '--borrow-');
        const report = await withPool(o.pool, (h) =>
          h.executeUpdate(setQuotaUpdate, {
            args: [{ team, quota: nominal, ...(borrowingLimit ? { borrowingLimit } : {}) }],
          }),
        );
        process.stdout.write(`${renderQuotas(report)}\n`);
        exit(0);
      },
    );

  quota
    .command('list')
    .description('quotas, borrowing limits and current use per team')
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .option('--json', 'machine-readable output')
    .action(async (o: { pool: string; json?: boolean }) => {
      const report = await withPool(o.pool, (h) => h.query(quotasQuery));
      process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderQuotas(report)}\n`);
      exit(0);
    });

  quota
    .command('remove')
    .description("remove a team's quota")
    .argument('<team>')
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .action(async (team: string, o: { pool: string }) => {
      const report = await withPool(o.pool, (h) => h.executeUpdate(removeQuotaUpdate, { args: [team] }));
      process.stdout.write(`${renderQuotas(report)}\n`);
      exit(0);
    });
}
