/**
 * `allot dev`: a Temporal dev server, the control worker and one local agent, until Ctrl-C.
 */
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { defineSearchAttributeKey } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Command } from 'commander';
import type { NodeTemplate } from '../../core';
import {
  ValidationError,
  describeTemplate,
  formatCpu,
  formatMemory,
  parseAutoscaleFlag,
  templateToInput,
} from '../../core';
import { startAgent } from '../../workers/agent';
import { serveCodec } from '../../workers/codec-server';
import { startControlWorker } from '../../workers/control';
import { describeCustom, detectInventory } from '../../workers/inventory';
import { localAgentScaler } from '../../workers/local-scaler';
import type { TemporalCli } from '../../workers/temporal-cli';
import { PACKAGE_ROOT, describeTemporalCli, findTemporalCli } from '../../workers/temporal-cli';
import { DEFAULT_POOL, poolWorkflowId, setTemplatesUpdate } from '../../workflows/messages';
import { SEARCH_ATTRIBUTE_LIST } from '../../workflows/search-attributes';
import { cliDataConverter } from '../context';
import { rootMessage, UserError } from '../errors';
import type { MetricsOptions } from '../lifecycle';
import { metricsEndpoint, progress, quietRuntime, say, serve, untilStopped } from '../lifecycle';
import type { Exit, InventoryOptions } from '../options';
import {
  advertiseAddress,
  collect,
  describeModules,
  inventoryFlags,
  inventoryOptions,
  storeUrl,
  workflowModules,
} from '../options';
import { parsePort, parseSeconds } from '../parse';

/** Options of `allot dev`. */
export interface DevOptions extends InventoryOptions, MetricsOptions {
  dataDir: string;
  pool: string;
  nodeId?: string;
  workflows?: string[];
  port: string;
  uiPort: string;
  ip: string;
  /** `<model>x<gpus>=<max>` node templates that the local scaler may start. */
  autoscale?: string[];
  scaleUpAfter?: string;
  scaleDownAfter?: string;
  templateCpu?: string;
  templateMemory?: string;
  /** Store URL or folder. @default `<data dir>/store` */
  store?: string;
}

/** The example pipeline, bundled by `allot dev` unless `--workflows` names others. */
export const EXAMPLE_WORKFLOWS = path.join(PACKAGE_ROOT, 'examples', 'pipeline', 'workflows.ts');

/** Adds `dev` to the program. */
export function registerDev(program: Command, exit: Exit): void {
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
      .option('--metrics-port <port>', 'serve Prometheus metrics of the worker and the agent at /metrics')
      .option(
        '--store <url>',
        "where steps' checkpoints and artifacts live: file:///path, s3://bucket/prefix, or a folder (default: ALLOT_STORE, else <data dir>/store)",
      ),
  ).action(async (o: DevOptions) => exit(await dev(o)));
}

/** True when nothing listens on the address yet. */
function portFree(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, ip, () => server.close(() => resolve(true)));
  });
}

/** Node templates from `--autoscale`, every problem reported at once. */
function autoscaleTemplates(o: DevOptions): NodeTemplate[] {
  const parsed = (o.autoscale ?? []).map((flag) =>
    parseAutoscaleFlag(flag, { cpu: o.templateCpu, memory: o.templateMemory, gpuMemory: o.gpuMemory }),
  );
  const issues = parsed.flatMap((p) => p.issues);
  if (issues.length > 0) throw new ValidationError(issues);
  return parsed.flatMap((p) => (p.template ? [p.template] : []));
}

/** Why the dev server did not start, and what to do about it. */
function serverFailure(cli: TemporalCli, where: string, err: unknown): UserError {
  const why = (err as Error).message.split('\n')[0];
  if (!cli.path) {
    return new UserError(
      `no Temporal CLI was found and downloading one failed (${why}).\n` +
        'Run `npx allot setup` to install it into this project, or set ALLOT_TEMPORAL_CLI to a temporal binary.',
      1,
    );
  }
  return new UserError(
    `could not start the Temporal dev server on ${where}: ${why}\n` +
      'Is another server using these ports? Choose others with --port and --ui-port, or stop it. Run `npx allot setup` to check the Temporal CLI.',
    1,
  );
}

/** `allot dev`: dev server + control worker + one local agent, until Ctrl-C. */
export async function dev(o: DevOptions): Promise<number> {
  const nodeId = o.nodeId ?? os.hostname();
  const detected = await detectInventory(nodeId, inventoryFlags(o));
  const inventory = detected.spec;
  const ports = { frontend: parsePort(o.port, '--port'), ui: parsePort(o.uiPort, '--ui-port') };
  if (o.metricsPort !== undefined) parsePort(o.metricsPort, '--metrics-port');
  const modules = o.workflows ? workflowModules(o.workflows) : existsSync(EXAMPLE_WORKFLOWS) ? [EXAMPLE_WORKFLOWS] : [];
  const dataDir = path.resolve(o.dataDir);
  const templates = autoscaleTemplates(o);
  const store = storeUrl(o.store, pathToFileURL(path.join(dataDir, 'store')).href) as string;
  const advertise = advertiseAddress(o);
  // A folder store of the dev setup is made here; elsewhere a missing one is an error (an unmounted share).
  if (store.startsWith('file:')) mkdirSync(fileURLToPath(store), { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  quietRuntime();

  for (const [p, flag] of [
    [ports.frontend, '--port'],
    [ports.ui, '--ui-port'],
  ] as const) {
    if (!(await portFree(o.ip, p))) {
      throw new UserError(
        `${flag} ${p}: something already listens on ${o.ip}:${p} (another Temporal server or allot dev?); stop it or choose another port`,
        1,
      );
    }
  }
  const cli = findTemporalCli();
  // With ALLOT_CODEC_KEY, payloads are encrypted and the UI decrypts them through a codec server.
  const codec = cliDataConverter()?.payloadCodecs?.[0];
  const uiHost = o.ip === '0.0.0.0' ? 'localhost' : o.ip;
  const codecServer = codec
    ? await serveCodec({
        codec,
        port: 0,
        origins: [
          ...new Set([`http://${uiHost}:${ports.ui}`, `http://localhost:${ports.ui}`, `http://127.0.0.1:${ports.ui}`]),
        ],
      })
    : undefined;
  const step = progress(4);
  step(`starting the Temporal dev server: ${describeTemporalCli(cli)}`);
  let env: TestWorkflowEnvironment;
  try {
    env = await TestWorkflowEnvironment.createLocal({
      ...(codec ? { client: { dataConverter: { payloadCodecs: [codec] } } } : {}),
      server: {
        ...(codecServer ? { extraArgs: ['--ui-codec-endpoint', codecServer.url] } : {}),
        executable: cli.path ? { type: 'existing-path', path: cli.path } : { type: 'cached-download' },
        ip: o.ip,
        port: ports.frontend,
        ui: true,
        uiPort: ports.ui,
        dbFilename: path.join(dataDir, 'temporal.db'),
        namespace: 'default',
        searchAttributes: SEARCH_ATTRIBUTE_LIST.map((a) => defineSearchAttributeKey(a.name, a.type)),
      },
    });
  } catch (err) {
    await codecServer?.close();
    throw serverFailure(cli, `${o.ip}:${ports.frontend} (UI ${ports.ui})`, err);
  }
  return serve(async (stop) => {
    let scaler: ReturnType<typeof localAgentScaler> | undefined;
    let control: Awaited<ReturnType<typeof startControlWorker>> | undefined;
    let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
    let metrics: Awaited<ReturnType<typeof metricsEndpoint>>;
    try {
      metrics = await metricsEndpoint(o, o.ip);
      step(`bundling workflows${describeModules(modules)}`);
      scaler =
        templates.length > 0
          ? localAgentScaler({
              address: `${o.ip}:${ports.frontend}`,
              namespace: 'default',
              dataDir: path.join(dataDir, 'autoscaled'),
              notice: say,
            })
          : undefined;
      control = await startControlWorker({
        client: env.client,
        connection: env.nativeConnection,
        namespace: 'default',
        pools: [o.pool],
        workflows: modules,
        metrics: metrics?.registry,
        scaler,
        store,
      });
      if (templates.length > 0) {
        const scaling = {
          ...(o.scaleUpAfter !== undefined ? { scaleUpAfterMs: parseSeconds(o.scaleUpAfter, '--scale-up-after') } : {}),
          ...(o.scaleDownAfter !== undefined
            ? { scaleDownAfterMs: parseSeconds(o.scaleDownAfter, '--scale-down-after') }
            : {}),
        };
        await env.client.workflow
          .getHandle(poolWorkflowId(o.pool))
          .executeUpdate(setTemplatesUpdate, { args: [{ templates: templates.map(templateToInput), scaling }] })
          .catch((err: unknown) => {
            throw new UserError(`the pool refused the node templates: ${rootMessage(err)}`, 1);
          });
        say(
          `      autoscaling ${templates.map((t) => `${t.name} (${describeTemplate(t)}) up to ${t.max}`).join('; ')}`,
        );
      }
      step(`control worker polling task queue "allot"`);
      agent = await startAgent({
        client: env.client,
        connection: env.nativeConnection,
        namespace: 'default',
        pool: o.pool,
        inventory,
        visibleIds: detected.visibleIds,
        dataDir: path.join(dataDir, 'agent'),
        metrics: metrics?.registry,
        notice: (m) => say(`[agent] ${m}`),
        ...(advertise !== undefined ? { advertiseAddress: advertise } : {}),
      });
      step(
        `agent ${inventory.id}: ${inventory.gpus.length} GPU${inventory.gpus.length === 1 ? '' : 's'}` +
          `${inventory.gpus[0] ? ` (${inventory.gpus[0].model}, ${formatMemory(inventory.gpus[0].memoryMiB)})` : ''}, ` +
          `cpu ${formatCpu(inventory.cpuMilli)}, memory ${formatMemory(inventory.memoryMiB)}` +
          (describeCustom(inventory) ? `, ${describeCustom(inventory)}` : ''),
      );
      say('');
      say(`allot dev is up`);
      say(`  Temporal UI   http://${uiHost}:${ports.ui}`);
      say(`  Temporal      ${o.ip}:${ports.frontend}, namespace default`);
      say(`  pool          ${o.pool}`);
      say(`  data          ${dataDir}`);
      say(`  store         ${store} (checkpoints and artifacts)`);
      if (metrics) say(`  metrics       ${metrics.server.url}`);
      if (codecServer) say(`  codec server  ${codecServer.url} (payloads are encrypted; the UI decrypts through it)`);
      say('');
      say(`try:  npx allot submit --gpu 1 -- sh -c 'echo GPUs $CUDA_VISIBLE_DEVICES'`);
      say(`      npx allot run ${modules.includes(EXAMPLE_WORKFLOWS) ? 'trainPipeline' : '<pipeline>'}`);
      say(`      npx allot status`);
      say('Ctrl-C stops everything.');
      const why = await untilStopped(stop, { 'control worker': control.done, agent: agent.done });
      say(`\nstopping (${why})…`);
    } finally {
      // Workers hold the connection: stop them before the server, also after a failed start.
      for (const w of [agent?.worker, control?.worker]) if (w?.getState() === 'RUNNING') w.shutdown();
      await Promise.allSettled([agent?.done, control?.done]);
      await scaler?.stopAll();
      await metrics?.server.close();
      await env.teardown();
      await codecServer?.close();
    }
  });
}
