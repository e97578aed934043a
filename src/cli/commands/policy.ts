/**
 * `allot policy`: shows or changes the pool's scheduling policy and its lease and node timing.
 */
import type { Command } from 'commander';
import type { SchedulingPolicy } from '../../core';
import { DEFAULT_POOL, policyQuery, setHealthPolicyUpdate, setPolicyUpdate } from '../../workflows/messages';
import { table } from '../format';
import type { Exit } from '../options';
import { parseDuration, parseSeconds } from '../parse';
import { onOff, withPool } from '../pool-admin';

/** Adds `policy` to the program. */
export function registerPolicy(program: Command, exit: Exit): void {
  program
    .command('policy')
    .description("show or change the pool's scheduling policy and lease/node timing")
    .option('--placement <name>', 'fragmentation-aware or best-fit')
    .option('--preemption <on|off>', 'evict preemptible work for higher priority and reclaim')
    .option('--backfill <on|off>', 'let short jobs start ahead of a blocked one')
    .option('--fair-share <on|off>', 'order teams by dominant resource share, recent usage and weight')
    .option(
      '--fair-share-half-life <duration>',
      'recent usage counts half after this long, e.g. 6h, 7d; 0: leases only',
    )
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
      const halfLife = parseDuration(o.fairShareHalfLife, '--fair-share-half-life');
      if (halfLife !== undefined) policy.fairShareHalfLifeMs = halfLife;
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
