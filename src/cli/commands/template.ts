/**
 * `allot template set|list|remove`: node templates, the kinds of node the scaler may add to the
 * pool.
 */
import type { Command } from 'commander';
import type { NodeTemplateInput } from '../../core';
import { formatIssues, parseNodeTemplate, templateToInput } from '../../core';
import { DEFAULT_POOL, capacityQuery, setTemplatesUpdate } from '../../workflows/messages';
import { renderCapacity } from '../capacity';
import { UserError } from '../errors';
import type { Exit } from '../options';
import { collect } from '../options';
import { parsePairs } from '../parse';
import type { PoolHandle } from '../pool-admin';
import { withPool } from '../pool-admin';

/** Adds `template` and its subcommands to the program. */
export function registerTemplate(program: Command, exit: Exit): void {
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
}
