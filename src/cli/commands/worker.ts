/**
 * `allot worker`: the control worker (pool, step and the user's pipeline workflows) against the
 * Temporal server the environment names.
 */
import type { Command } from 'commander';
import { commandScaler } from '../../activities/scaler';
import { startControlWorker } from '../../workers/control';
import { DEFAULT_POOL } from '../../workflows/messages';
import type { MetricsOptions } from '../lifecycle';
import { connectTemporal, metricsEndpoint, quietRuntime, say, serve, untilStopped } from '../lifecycle';
import type { Exit } from '../options';
import { collect, describeModules, metricsOptions, storeOption, storeUrl, workflowModules } from '../options';

/** Options of `allot worker`. */
export interface WorkerOptions extends MetricsOptions {
  workflows?: string[];
  pool: string[];
  /** Argv of the scaler command (see `commandScaler`). */
  scalerCommand?: string[];
  /** Store URL or folder the pools name to their agents (else ALLOT_STORE). */
  store?: string;
}

/** Adds `worker` to the program. */
export function registerWorker(program: Command, exit: Exit): void {
  storeOption(
    metricsOptions(
      program
        .command('worker')
        .description('run the control worker (pool, step and your pipeline workflows) against TEMPORAL_ADDRESS')
        .option('--workflows <module>', 'module exporting your pipeline workflows (repeatable)', collect)
        .option('--pool <name>', 'pool to start if it does not run (repeatable)', collect),
      'pools, queues, waits, outcomes',
    ).option(
      '--scaler-command <argv...>',
      'command run to scale: CMD up <template> <count> | CMD down <template> <node>',
    ),
    "where steps' checkpoints and artifacts live; the pools name it to agents without their own",
  ).action(
    async (o: {
      workflows?: string[];
      pool?: string[];
      metricsPort?: string;
      metricsHost?: string;
      scalerCommand?: string[];
      store?: string;
    }) =>
      exit(
        await worker({
          workflows: o.workflows,
          pool: o.pool ?? [DEFAULT_POOL],
          metricsPort: o.metricsPort,
          metricsHost: o.metricsHost,
          scalerCommand: o.scalerCommand,
          store: o.store,
        }),
      ),
  );
}

/** `allot worker`: the control worker, with the user's pipeline workflows. */
export async function worker(o: WorkerOptions): Promise<number> {
  const store = storeUrl(o.store);
  quietRuntime();
  const modules = workflowModules(o.workflows);
  const temporal = await connectTemporal();
  const metrics = await metricsEndpoint(o, '0.0.0.0');
  say(`bundling workflows${describeModules(modules)}`);
  const control = await startControlWorker({
    client: temporal.client,
    connection: temporal.connection,
    namespace: temporal.settings.namespace,
    pools: o.pool,
    workflows: modules,
    metrics: metrics?.registry,
    ...(store !== undefined ? { store } : {}),
    ...(o.scalerCommand && o.scalerCommand.length > 0 ? { scaler: commandScaler(o.scalerCommand) } : {}),
  });
  if (metrics) say(`metrics at ${metrics.server.url}`);
  say(
    `control worker polling task queue "allot" on ${temporal.address} (namespace ${temporal.settings.namespace}); pools: ${o.pool.join(', ')}`,
  );
  return serve(async (stop) => {
    const why = await untilStopped(stop, { worker: control.done });
    say(`stopping (${why})…`);
    if (control.worker.getState() === 'RUNNING') control.worker.shutdown();
    await control.done.catch(() => undefined);
    await metrics?.server.close();
    await temporal.close();
  });
}
