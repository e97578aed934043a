/**
 * `allot status`: the pool's nodes, each GPU's use and holder, and the queue.
 */
import type { Command } from 'commander';
import { DEFAULT_POOL } from '../../workflows/messages';
import { fetchCapacity, renderCapacity } from '../capacity';
import { cliClient } from '../context';
import type { Exit } from '../options';
import { fetchStatus, fetchUsage, renderStatus, statusJson } from '../pool-status';

/** Adds `status` to the program. */
export function registerStatus(program: Command, exit: Exit): void {
  program
    .command('status')
    .description("the pool's nodes, each GPU's use and holder, and the queue")
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .option('--json', 'machine-readable output')
    .action(async (o: { pool: string; json?: boolean }) => {
      const { client, close } = await cliClient();
      try {
        const s = await fetchStatus(client, o.pool);
        const usage = await fetchUsage(client, s);
        const capacity = await fetchCapacity(client, o.pool);
        const json = {
          ...(statusJson(s, usage) as object),
          demand: capacity?.demand ?? [],
          templates: capacity?.templates ?? [],
        };
        process.stdout.write(
          o.json ? `${JSON.stringify(json, null, 2)}\n` : `${renderStatus(s, usage)}${renderCapacity(capacity)}\n`,
        );
      } finally {
        await close();
      }
      exit(0);
    });
}
