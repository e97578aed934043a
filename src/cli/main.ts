/**
 * The `allot` command line.
 */
import { Command, CommanderError, Option } from 'commander';
import { MAX_QUEUED, ValidationError } from '../core';
import { DEFAULT_POOL, drainUpdate, poolWorkflowId } from '../workflows/messages';
import { registerAdminCommands } from './admin';
import { registerCodecServer } from './codec-server';
import type { UsageOptions } from './accounting';
import { usage } from './accounting';
import { fetchCapacity, renderCapacity } from './capacity';
import { cliClient } from './context';
import { reportError, rootMessage, UserError } from './errors';
import type { LogsOptions } from './logs';
import { logs } from './logs';
import { run } from './run';
import { parseInteger } from './parse';
import { registerSchedule } from './schedule';
import { registerSimulate } from './simulate';
import { agent, dev, worker } from './services';
import { fetchStatus, fetchUsage, renderQueue, renderStatus, statusJson } from './status';
import { submit } from './submit';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function inventoryOptions(cmd: Command): Command {
  return cmd
    .option('--gpus <n>', 'declare this many GPUs instead of detecting them (like Slurm gres.conf)')
    .option('--gpu-model <model>', 'model of the declared GPUs', undefined)
    .option('--gpu-memory <quantity>', 'memory of each declared GPU, e.g. 80Gi')
    .option('--cpu <quantity>', 'CPU to offer, e.g. 16 or 15500m (default: detected cores)')
    .option('--memory <quantity>', 'memory to offer, e.g. 64Gi (default: detected)')
    .option('--label <key=value>', 'node label (repeatable)', collect);
}

/** Builds the command tree; `exit` receives the exit code of the command that ran. */
export function buildProgram(exit: (code: number) => void): Command {
  const program = new Command('allot')
    .description(
      'Durable GPU/CPU scheduling for ML pipeline steps, on Temporal.\nConnection: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS and profiles as the Temporal CLI reads them.',
    )
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .exitOverride();

  inventoryOptions(
    program
      .command('dev')
      .description('start a Temporal dev server, the control worker and a local agent (Ctrl-C stops all)')
      .option('--data-dir <dir>', 'where the server database, logs and checkpoints live', '.allot/dev')
      .option('--pool <name>', 'pool name', DEFAULT_POOL)
      .option('--node-id <id>', 'id of the local node (default: host name)')
      .option(
        '--workflows <module>',
        'module exporting your pipeline workflows (repeatable; default: the example pipeline)',
        collect,
      )
      .option('--ip <address>', 'address the server listens on', '127.0.0.1')
      .option('--port <port>', 'Temporal frontend port', '7233')
      .option('--ui-port <port>', 'Temporal Web UI port', '8233')
      .option(
        '--autoscale <template=max>',
        'node template the local scaler may start as agent processes, e.g. a100x2=3 (repeatable)',
        collect,
      )
      .option('--scale-up-after <seconds>', 'how long demand waits before a scale-up (default 5)')
      .option('--scale-down-after <seconds>', 'how long an autoscaled node is idle before it is stopped (default 60)')
      .option('--template-cpu <quantity>', 'CPU of each autoscaled node (default 8)')
      .option('--template-memory <quantity>', 'memory of each autoscaled node (default 32Gi)')
      .option('--metrics-port <port>', 'serve Prometheus metrics of the worker and the agent at /metrics'),
  ).action(async (o) => exit(await dev(o)));

  program
    .command('worker')
    .description('run the control worker (pool, step and your pipeline workflows) against TEMPORAL_ADDRESS')
    .option('--workflows <module>', 'module exporting your pipeline workflows (repeatable)', collect)
    .option('--pool <name>', 'pool to start if it does not run (repeatable)', collect)
    .option('--metrics-port <port>', 'serve Prometheus metrics (pools, queues, waits, outcomes) at /metrics')
    .option('--metrics-host <address>', 'address of the metrics endpoint', '0.0.0.0')
    .option(
      '--scaler-command <argv...>',
      'command run to scale: CMD up <template> <count> | CMD down <template> <node>',
    )
    .action(
      async (o: {
        workflows?: string[];
        pool?: string[];
        metricsPort?: string;
        metricsHost?: string;
        scalerCommand?: string[];
      }) =>
        exit(
          await worker({
            workflows: o.workflows,
            pool: o.pool ?? [DEFAULT_POOL],
            metricsPort: o.metricsPort,
            metricsHost: o.metricsHost,
            scalerCommand: o.scalerCommand,
          }),
        ),
    );

  inventoryOptions(
    program
      .command('agent')
      .description('register this machine with a pool and run the steps granted to it')
      .option('--pool <name>', 'pool to join', DEFAULT_POOL)
      .option('--node-id <id>', 'node id (default: host name); the agent polls allot-node-<id>')
      .option('--data-dir <dir>', 'where logs, outputs and checkpoints live', '.allot/agent')
      .option('--env-allow <name>', 'pass this variable of the agent through to workloads (repeatable)', collect)
      .option('--metrics-port <port>', "serve Prometheus metrics (this node's GPUs, steps and usage) at /metrics")
      .option('--metrics-host <address>', 'address of the metrics endpoint', '0.0.0.0')
      .option(
        '--drain-timeout <seconds>',
        'on SIGTERM, time running steps have to finish before they are handed back',
        '30',
      )
      .option('--sample-interval <ms>', 'time between usage samples and memory checks of each step', '500')
      .option('--no-cgroups', 'watch memory by polling even where cgroup v2 limits are available'),
  ).action(async (o) => exit(await agent(o)));

  program
    .command('submit')
    .description('run one command as a step, like srun; exits with its exit code')
    .usage('[options] -- CMD [ARGS...]')
    .option('--gpu <n>', 'GPUs: a whole number, or a fraction of one GPU like 0.5')
    .option('--cpu <quantity>', 'CPU, e.g. 2 or 500m (default 1)')
    .option('--memory <quantity>', 'memory, e.g. 8Gi (default 1Gi)')
    .option('--gpu-model <model>', 'GPU model, or alternatives A100|H100')
    .option('--gpu-memory <quantity>', 'minimum memory per GPU, e.g. 40Gi')
    .option('--label <key=value>', 'node label to require (repeatable)', collect)
    .option('--pool <name>', 'pool', DEFAULT_POOL)
    .option('--name <name>', 'step name (default: the command)')
    .option('--priority <n>', 'priority from -1000 to 1000, larger first (default 0)')
    .option('--team <team>', 'team to account the step to')
    .option('--env <key=value>', 'environment variable for the workload (repeatable)', collect)
    .option('--cwd <dir>', 'working directory of the workload (default: here)')
    .option('--grace-period <seconds>', 'SIGTERM to SIGKILL on cancellation (default 30)')
    .option('--time-limit <seconds>', 'wall-clock limit')
    .option('--memory-limit <quantity>', 'kill the step past this memory (default: --memory), e.g. 12Gi')
    .option(
      '--preemptible',
      'may be evicted by higher-priority work; it then queues again and resumes from its checkpoint',
    )
    .option('--no-wait', 'return once submitted')
    .option('--json', 'print one JSON object with workflowId (and the result)')
    .argument('[command...]', 'the workload, as argv (never run through a shell)')
    .action(async (command: string[], o) => exit(await submit(command, o)));

  program
    .command('run')
    .description('start a pipeline workflow and follow it; exit 0 on success')
    .argument('<workflowType>', 'name of the pipeline workflow, e.g. trainPipeline')
    .option('--input <json|@file>', 'the workflow argument, as JSON or @file')
    .option('--id <id>', 'workflow id; a second run with the same id attaches to the running one')
    .option('--no-wait', 'return once started')
    .option('--json', 'print a machine-readable result')
    .addOption(new Option('--task-queue <queue>', 'task queue of the control worker').default('allot').hideHelp())
    .action(async (type: string, o) => exit(await run(type, o)));

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

  registerAdminCommands(program, exit);

  program
    .command('usage')
    .description('GPU-, CPU- and memory-hours and efficiency per team, pipeline or step (like sreport and seff)')
    .option('--since <when>', 'start of the window: a date, or a duration back from now like 24h or 7d', '24h')
    .option('--until <when>', 'end of the window (default: now)')
    .option('--by <grouping>', 'team, pipeline or step', 'team')
    .option('--pool <name>', 'only this pool')
    .option('--csv', 'CSV output')
    .option('--json', 'JSON output')
    .action(async (o: UsageOptions) => exit(await usage(o)));

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

  registerSchedule(program, exit);

  program
    .command('logs')
    .description("print a step's log, finished or running; --follow keeps printing until it ends")
    .argument('<step>', 'the step workflow id, e.g. <pipeline id>/<step name>')
    .option('-f, --follow', 'keep printing while the step runs, through its next attempts')
    .option('--attempt <n>', 'attempt to show (default: the latest)')
    .action(async (step: string, o: LogsOptions) => exit(await logs(step, o)));
  registerSimulate(program);
  registerCodecServer(program, exit);
  return program;
}

/** Entry point of the `allot` binary. */
export function main(argv: string[]): void {
  let code: number | undefined;
  const program = buildProgram((c) => (code = c));
  program
    .parseAsync(argv)
    .then(() => {
      process.exitCode = code ?? 0;
      if (code !== undefined) setTimeout(() => process.exit(code), 100).unref();
    })
    .catch((err: unknown) => {
      if (err instanceof CommanderError) {
        process.exit(err.exitCode === 0 ? 0 : 2);
      }
      process.exit(reportError(err));
    });
}

export { ValidationError };
