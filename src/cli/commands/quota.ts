/**
 * `allot quota set|list|remove`: teams' nominal quotas and how much idle quota of others each may
 * borrow (a Kueue-style cohort).
 */
import type { Command } from 'commander';
import type { ResourceVector } from '../../core';
import { weightProblem } from '../../core';
import type { QuotaReport } from '../../workflows/messages';
import { DEFAULT_POOL, quotasQuery, removeQuotaUpdate, setQuotaUpdate } from '../../workflows/messages';
import { UserError } from '../errors';
import { table } from '../format';
import type { Exit } from '../options';
import { collect } from '../options';
import { formatVector, vectorFrom, withPool } from '../pool-admin';

/** Decayed usage for people: GPU-hours, CPU-hours, GiB-hours, custom-hours. */
function formatUsage(usage: ResourceVector): string {
  const hours = (v: number, per: number) => (v / per / 3600).toFixed(1);
  const parts: string[] = [];
  for (const [k, v] of Object.entries(usage)) {
    if (v <= 0) continue;
    if (k === 'gpu') parts.push(`${hours(v, 1000)} GPU-h`);
    else if (k === 'cpu') parts.push(`${hours(v, 1000)} CPU-h`);
    else if (k === 'memory') parts.push(`${hours(v, 1024)} GiB-h`);
    else parts.push(`${hours(v, 1)} ${k}-h`);
  }
  return parts.join(', ') || '-';
}

function renderQuotas(r: QuotaReport): string {
  const shares = new Map((r.fairShare?.teams ?? []).map((t) => [t.team, t]));
  const names = [...r.teams.map((t) => t.name), ...r.unlimited.map((t) => t.name)];
  const weightOnly = [...shares.keys()].filter((n) => !names.includes(n));
  if (names.length === 0 && weightOnly.length === 0) return 'no quotas set and nothing running';
  const fair = (name: string) => {
    const s = shares.get(name);
    return [String(s?.weight ?? 1), s ? s.share.toFixed(2) : '0.00', s ? formatUsage(s.usage) : '-'];
  };
  const rows = [
    ...r.teams.map((t) => [
      t.name,
      formatVector(t.nominal),
      t.borrowingLimit ? formatVector(t.borrowingLimit) : 'any',
      formatVector(t.usage),
      ...fair(t.name),
    ]),
    ...r.unlimited.map((t) => [t.name, 'none', '-', formatVector(t.usage), ...fair(t.name)]),
    ...weightOnly.map((name) => [name, 'none', '-', '-', ...fair(name)]),
  ];
  const out = table(['TEAM', 'QUOTA', 'MAY BORROW', 'IN USE', 'WEIGHT', 'SHARE', 'RECENT USAGE'], rows);
  if (!r.fairShare) return out;
  const halfLife = r.fairShare.halfLifeMs > 0 ? `half-life ${r.fairShare.halfLifeMs / 3_600_000}h` : 'no history';
  return `${out}\nfair share ${r.fairShare.on ? `on (${halfLife})` : 'off'}; SHARE = (current + recent) / weight`;
}

/** `--weight`: a team's weight in fair share, a number > 0. */
function parseWeight(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const problem = value.trim() === '' ? 'must be a number greater than 0, got ""' : weightProblem(n);
  if (problem) throw new UserError(`--weight ${problem.replace(/got .*$/, `got ${JSON.stringify(value)}`)}`);
  return n;
}

/** Adds `quota` and its subcommands to the program. */
export function registerQuota(program: Command, exit: Exit): void {
  const quota = program.command('quota').description("teams' GPU/CPU/memory quotas and borrowing (Kueue-style cohort)");

  quota
    .command('set')
    .description("set a team's nominal quota, how much idle quota of others it may borrow, and its fair-share weight")
    .argument('<team>')
    .option('--gpu <n>', 'nominal GPUs')
    .option('--cpu <quantity>', 'nominal CPU, e.g. 64')
    .option('--memory <quantity>', 'nominal memory, e.g. 512Gi')
    .option('--custom <name=n>', 'nominal custom resource (repeatable)', collect)
    .option('--weight <n>', "the team's weight in fair share (default 1); alone, it sets no quota")
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
          weight?: string;
          pool: string;
        },
      ) => {
        const weight = parseWeight(o.weight);
        const nominal = vectorFrom(o, '--');
        const borrowingLimit = vectorFrom({ gpu: o.borrow, cpu: o.borrowCpu, memory: o.borrowMemory }, '--borrow-');
        if (!nominal && (weight === undefined || borrowingLimit))
          throw new UserError('give at least one of --gpu, --cpu, --memory or --custom for the quota, or --weight');
        const report = await withPool(o.pool, (h) =>
          h.executeUpdate(setQuotaUpdate, {
            args: [
              {
                team,
                ...(nominal ? { quota: nominal } : {}),
                ...(borrowingLimit ? { borrowingLimit } : {}),
                ...(weight !== undefined ? { weight } : {}),
              },
            ],
          }),
        );
        process.stdout.write(`${renderQuotas(report)}\n`);
        exit(0);
      },
    );

  quota
    .command('list')
    .description('quotas, borrowing limits, current use, fair-share weight, share and recent usage per team')
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .option('--json', 'machine-readable output')
    .action(async (o: { pool: string; json?: boolean }) => {
      const report = await withPool(o.pool, (h) => h.query(quotasQuery));
      process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderQuotas(report)}\n`);
      exit(0);
    });

  quota
    .command('remove')
    .description("remove a team's quota and weight")
    .argument('<team>')
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .action(async (team: string, o: { pool: string }) => {
      const report = await withPool(o.pool, (h) => h.executeUpdate(removeQuotaUpdate, { args: [team] }));
      process.stdout.write(`${renderQuotas(report)}\n`);
      exit(0);
    });
}
