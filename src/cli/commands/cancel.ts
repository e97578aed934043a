/**
 * `allot cancel <workflowId>`: cancels a step or a pipeline; its processes get SIGTERM, then
 * SIGKILL after their grace period.
 */
import type { Command } from 'commander';
import { cliClient } from '../context';
import { UserError } from '../errors';
import type { Exit } from '../options';

/** Adds `cancel` to the program. */
export function registerCancel(program: Command, exit: Exit): void {
  program
    .command('cancel')
    .description('cancel a step or pipeline by workflow id; its processes get SIGTERM, then SIGKILL')
    .argument('<workflowId>')
    .action(async (workflowId: string) => {
      const { client, close } = await cliClient();
      try {
        await client.workflow.getHandle(workflowId).cancel();
        process.stderr.write(`cancellation requested for ${workflowId}\n`);
      } catch (err) {
        throw new UserError(`cannot cancel ${workflowId}: ${(err as Error).message}`, 1);
      } finally {
        await close();
      }
      exit(0);
    });
}
