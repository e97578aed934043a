/**
 * `allot drain <node> [--undo]`: stops new grants on a node while its running steps finish.
 */
import type { Command } from 'commander';
import { DEFAULT_POOL, drainUpdate, poolWorkflowId } from '../../workflows/messages';
import { cliClient } from '../context';
import { rootMessage, UserError } from '../errors';
import type { Exit } from '../options';

/** Adds `drain` to the program. */
export function registerDrain(program: Command, exit: Exit): void {
  program
    .command('drain')
    .description('stop new grants on a node; its running steps finish (--undo makes it schedulable again)')
    .argument('<nodeId>')
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .option('--undo', 'undrain the node')
    .action(async (nodeId: string, o: { pool: string; undo?: boolean }) => {
      const { client, close } = await cliClient();
      try {
        const r = await client.workflow
          .getHandle(poolWorkflowId(o.pool))
          .executeUpdate(drainUpdate, { args: [{ nodeId, drain: !o.undo }] });
        process.stderr.write(`node ${r.nodeId}: ${r.status}\n`);
      } catch (err) {
        throw new UserError(`cannot ${o.undo ? 'undrain' : 'drain'} ${nodeId}: ${rootMessage(err)}`, 1);
      } finally {
        await close();
      }
      exit(0);
    });
}
