/**
 * `allot queue`: the queued requests with their position, reason and time waited.
 */
import type { Command } from 'commander';
import { MAX_QUEUED } from '../../core';
import { DEFAULT_POOL } from '../../workflows/messages';
import { cliClient } from '../context';
import type { Exit } from '../options';
import { parseInteger } from '../parse';
import { fetchStatus, renderQueue, statusJson } from '../pool-status';

/** Adds `queue` to the program. */
export function registerQueue(program: Command, exit: Exit): void {
  program
    .command('queue')
    .description('queued requests with their position, reason and time waited')
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .option('--limit <n>', `list at most this many, the first in order (0 to ${MAX_QUEUED})`, '1000')
    .option('--json', 'machine-readable output')
    .action(async (o: { pool: string; json?: boolean; limit: string }) => {
      const limit = parseInteger(o.limit, '--limit', 0, MAX_QUEUED);
      const { client, close } = await cliClient();
      try {
        const s = await fetchStatus(client, o.pool, limit);
        process.stdout.write(
          o.json ? `${JSON.stringify((statusJson(s) as { queue: unknown }).queue, null, 2)}\n` : `${renderQueue(s)}\n`,
        );
      } finally {
        await close();
      }
      exit(0);
    });
}
