/**
 * What the control worker's pool gauges read: each pool's `status` and `capacity`, asked once per
 * scrape and shared by every gauge of that scrape.
 */
import type { Client } from '@temporalio/client';
import type { PoolStatus } from '../../core';
import { poolWorkflowId, statusQuery } from '../../workflows/messages';
import type { CapacityReport } from '../../workflows/messages';
import { fetchCapacity } from '../pool-client';

/** How long a scrape waits for a pool's status, ms. */
const STATUS_TIMEOUT_MS = 5000;

/**
 * How long one snapshot serves, ms. prom-client collects every gauge of a scrape at once, so they
 * all start within this window and share one pair of queries per pool.
 */
const SNAPSHOT_TTL_MS = 500;

/** Each pool's answers, `undefined` where the pool did not answer. */
export interface PoolSnapshot {
  statuses: Promise<Map<string, PoolStatus | undefined>>;
  capacities: Promise<Map<string, CapacityReport | undefined>>;
}

/**
 * Returns the snapshot of the current scrape: one `status` query and one `capacity` query per
 * pool, made by the first gauge that asks and reused by the others.
 */
export function poolSnapshots(client: Client, pools: readonly string[]): () => PoolSnapshot {
  let current: (PoolSnapshot & { at: number }) | undefined;
  return () => {
    if (!current || Date.now() - current.at > SNAPSHOT_TTL_MS) {
      current = {
        at: Date.now(),
        statuses: perPool(pools, (p) => fetchStatus(client, p)),
        capacities: perPool(pools, (p) => fetchCapacity(client, p)),
      };
    }
    return current;
  };
}

async function perPool<T>(pools: readonly string[], ask: (pool: string) => Promise<T>): Promise<Map<string, T>> {
  return new Map(await Promise.all(pools.map(async (p) => [p, await ask(p)] as const)));
}

async function fetchStatus(client: Client, pool: string): Promise<PoolStatus | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      // Counts per team and per reason come whole: no queue rows are needed.
      client.workflow.getHandle(poolWorkflowId(pool)).query(statusQuery, { queueLimit: 0 }),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), STATUS_TIMEOUT_MS))),
    ]);
  } catch {
    return undefined;
  } finally {
    if (timer) clearTimeout(timer);
  }
}
