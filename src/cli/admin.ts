/**
 * `allot quota` and `allot policy`: the administrator's commands. They go through the pool's
 * Updates, whose validators reject bad input before it touches the pool's state.
 */
import type { Command } from 'commander';
import type { NodeTemplateInput, ResourceVector, SchedulingPolicy } from '../core';
import { formatCpu, formatGpu, formatIssues, formatMemory, parseNodeTemplate, templateToInput } from '../core';
import { renderCapacity } from './capacity';
import type { QuotaReport } from '../workflows/messages';
import {
  DEFAULT_POOL,
  capacityQuery,
  setTemplatesUpdate,
  policyQuery,
  poolWorkflowId,
  quotasQuery,
  removeQuotaUpdate,
  setHealthPolicyUpdate,
  setPolicyUpdate,
  setQuotaUpdate,
} from '../workflows/messages';
import { cliClient } from './context';
import { rootMessage, UserError } from './errors';
import { table } from './format';
import { parsePairs, parseSeconds } from './parse';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Formats a resource vector for people: `gpu 8, cpu 64, memory 512Gi`. */
export function formatVector(v: ResourceVector | undefined): string {
  if (!v || Object.keys(v).length === 0) return '-';
  return Object.entries(v)
    .map(([k, n]) => {
      if (k === 'gpu') return `gpu ${formatGpu(n)}`;
      if (k === 'cpu') return `cpu ${formatCpu(n)}`;
      if (k === 'memory') return `memory ${formatMemory(n)}`;
      return `${k} ${n}`;
    })
    .join(', ');
}

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

type PoolHandle = ReturnType<Awaited<ReturnType<typeof cliClient>>['client']['workflow']['getHandle']>;

async function withPool<T>(pool: string, action: (handle: PoolHandle) => Promise<T>): Promise<T> {
  const { client, close } = await cliClient();
  try {
    return await action(client.workflow.getHandle(poolWorkflowId(pool)));
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(rootMessage(err), 1);
  } finally {
    await close();
  }
}

function vectorFrom(
  o: { gpu?: string; cpu?: string; memory?: string; custom?: string[] },
  prefix: string,
): Record<string, number | string> | undefined {
  const v: Record<string, number | string> = {};
  if (o.gpu !== undefined) v.gpu = /^\d+(\.\d+)?$/.test(o.gpu) ? Number(o.gpu) : o.gpu;
  if (o.cpu !== undefined) v.cpu = o.cpu;
  if (o.memory !== undefined) v.memory = o.memory;
  for (const [k, n] of Object.entries(parsePairs(o.custom, `${prefix}custom`))) v[k] = /^\d+$/.test(n) ? Number(n) : n;
  return Object.keys(v).length > 0 ? v : undefined;
}

function onOff(value: string | undefined, flag: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (['on', 'true', 'yes'].includes(value)) return true;
  if (['off', 'false', 'no'].includes(value)) return false;
  throw new UserError(`${flag} must be on or off, got ${JSON.stringify(value)}`);
}

/** Adds `quota` and `policy` to the program. */
export function registerAdminCommands(program: Command, exit: (code: number) => void): void {
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

  const template = program
    .command('template')
    .description('node templates: kinds of node the scaler may add to the pool');

  const templatesNow = async (h: PoolHandle): Promise<NodeTemplateInput[]> =>
    ((await h.query(capacityQuery)).templateSpecs ?? []).map(templateToInput);

  template
    .command('set')
    .description('declare (or change) a node template')
    .argument('<name>')
    .requiredOption('--max <n>', 'most nodes of this template at once')
    .option('--gpus <n>', 'GPUs per node', '0')
    .option('--gpu-model <model>', 'GPU model', 'GPU')
    .option('--gpu-memory <quantity>', 'memory per GPU', '80Gi')
    .option('--cpu <quantity>', 'CPU per node', '8')
    .option('--memory <quantity>', 'memory per node', '32Gi')
    .option('--label <key=value>', 'node label (repeatable)', collect)
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .action(
      async (
        name: string,
        o: {
          max: string;
          gpus: string;
          gpuModel: string;
          gpuMemory: string;
          cpu: string;
          memory: string;
          label?: string[];
          pool: string;
        },
      ) => {
        const input: NodeTemplateInput = {
          name,
          max: /^\d+$/.test(o.max) ? Number(o.max) : (o.max as unknown as number),
          gpus: /^\d+$/.test(o.gpus) ? Number(o.gpus) : (o.gpus as unknown as number),
          gpuModel: o.gpuModel,
          gpuMemory: o.gpuMemory,
          cpu: o.cpu,
          memory: o.memory,
          labels: parsePairs(o.label, '--label'),
        };
        const { issues } = parseNodeTemplate(input);
        if (issues.length > 0) {
          const flags = issues.map((i) => ({
            ...i,
            path: [`--${String(i.path[i.path.length - 1] ?? '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`],
          }));
          throw new UserError(`invalid template:\n${formatIssues(flags).replace(/^/gm, '  ')}`);
        }
        const report = await withPool(o.pool, async (h) => {
          const others = (await templatesNow(h)).filter((t) => t.name !== name);
          return h.executeUpdate(setTemplatesUpdate, { args: [{ templates: [...others, input] }] });
        });
        process.stdout.write(`${renderCapacity(report).trim()}\n`);
        exit(0);
      },
    );

  template
    .command('list')
    .description('node templates, their nodes, and the demand waiting for them')
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .option('--json', 'machine-readable output')
    .action(async (o: { pool: string; json?: boolean }) => {
      const report = await withPool(o.pool, (h) => h.query(capacityQuery));
      process.stdout.write(
        o.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderCapacity(report).trim() || 'no node templates'}\n`,
      );
      exit(0);
    });

  template
    .command('remove')
    .description('remove a node template (its nodes stay until they are idle and scaled down, or drained)')
    .argument('<name>')
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .action(async (name: string, o: { pool: string }) => {
      const report = await withPool(o.pool, async (h) => {
        const now = await templatesNow(h);
        if (!now.some((t) => t.name === name))
          throw new UserError(
            `no template ${JSON.stringify(name)}; templates: ${now.map((t) => t.name).join(', ') || 'none'}`,
          );
        return h.executeUpdate(setTemplatesUpdate, { args: [{ templates: now.filter((t) => t.name !== name) }] });
      });
      process.stdout.write(`${renderCapacity(report).trim() || 'no node templates'}\n`);
      exit(0);
    });

  program
    .command('policy')
    .description("show or change the pool's scheduling policy and lease/node timing")
    .option('--placement <name>', 'fragmentation-aware or best-fit')
    .option('--preemption <on|off>', 'evict preemptible work for higher priority and reclaim')
    .option('--backfill <on|off>', 'let short jobs start ahead of a blocked one')
    .option('--fair-share <on|off>', 'order teams by dominant resource share')
    .option('--grace-period <seconds>', 'time the scheduler allows a preempted step to stop')
    .option('--lease-ttl <seconds>', 'lease time-to-live; running steps renew at a third of it')
    .option('--node-not-ready-after <seconds>', 'agent silence after which a node gets no new grants')
    .option('--node-lost-after <seconds>', "agent silence after which a node's leases are revoked")
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .option('--json', 'machine-readable output')
    .action(async (o: Record<string, string | undefined> & { pool: string; json?: boolean }) => {
      const policy: Partial<SchedulingPolicy> = {};
      if (o.placement !== undefined) policy.placement = o.placement as SchedulingPolicy['placement'];
      const preemption = onOff(o.preemption, '--preemption');
      if (preemption !== undefined) policy.preemption = preemption;
      const backfill = onOff(o.backfill, '--backfill');
      if (backfill !== undefined) policy.backfill = backfill;
      const fairShare = onOff(o.fairShare, '--fair-share');
      if (fairShare !== undefined) policy.fairShare = fairShare;
      const grace = parseSeconds(o.gracePeriod, '--grace-period');
      if (grace !== undefined) policy.gracePeriodMs = grace;
      const health: Record<string, number> = {};
      const ttl = parseSeconds(o.leaseTtl, '--lease-ttl');
      if (ttl !== undefined) health.leaseTtlMs = ttl;
      const notReady = parseSeconds(o.nodeNotReadyAfter, '--node-not-ready-after');
      if (notReady !== undefined) health.nodeNotReadyAfterMs = notReady;
      const lost = parseSeconds(o.nodeLostAfter, '--node-lost-after');
      if (lost !== undefined) health.nodeLostAfterMs = lost;
      const shown = await withPool(o.pool, async (h) => {
        if (Object.keys(policy).length > 0) await h.executeUpdate(setPolicyUpdate, { args: [policy] });
        if (Object.keys(health).length > 0) await h.executeUpdate(setHealthPolicyUpdate, { args: [health] });
        return h.query(policyQuery);
      });
      if (o.json) process.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
      else {
        const rows = [
          ...Object.entries(shown.policy).map(([k, v]) => [k, String(v)]),
          ...Object.entries(shown.health).map(([k, v]) => [k, String(v)]),
        ];
        process.stdout.write(`${table(['SETTING', 'VALUE'], rows)}\n`);
      }
      exit(0);
    });
}
