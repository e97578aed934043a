/**
 * `allot dev`, `allot worker` and `allot agent`: the long-running parts, with a clean stop on
 * Ctrl-C or SIGTERM.
 */
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { defineSearchAttributeKey } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { DEFAULT_ENV_ALLOWLIST } from '../activities/environment';
import type { NodeTemplate } from '../core';
import {
  ValidationError,
  describeTemplate,
  formatCpu,
  formatMemory,
  parseAutoscaleFlag,
  templateToInput,
} from '../core';
import { localAgentScaler } from '../workers/local-scaler';
import { commandScaler } from '../activities/scaler';
import type { Inventory, InventoryFlags } from '../workers/inventory';
import { describeDetected, detectInventory } from '../workers/inventory';
import type { MetricsServer } from '../workers/metrics';
import { createRegistry, serveMetrics } from '../workers/metrics';
import { startAgent } from '../workers/agent';
import { serveCodec } from '../workers/codec-server';
import { connectClient, connectWorker } from '../workers/connection';
import { startControlWorker } from '../workers/control';
import { PACKAGE_ROOT, describeTemporalCli, findTemporalCli } from '../workers/temporal-cli';
import { DEFAULT_POOL, poolWorkflowId, setTemplatesUpdate } from '../workflows/messages';
import { SEARCH_ATTRIBUTE_LIST } from '../workflows/search-attributes';
import { cliConnectionSettings, cliDataConverter, connectionFailure } from './context';
import { rootMessage, UserError } from './errors';
import { parseInteger, parsePairs, parseSeconds } from './parse';

/** Inventory flags as commander gives them. */
export interface InventoryOptions {
  gpus?: string;
  gpuModel?: string;
  gpuMemory?: string;
  cpu?: string;
  memory?: string;
  label?: string[];
}

/** The metrics endpoint flags. */
export interface MetricsOptions {
  /** Port of the Prometheus endpoint (`GET /metrics`); none without it. */
  metricsPort?: string;
  /** Address the endpoint listens on. @default "0.0.0.0" (`allot dev`: its --ip) */
  metricsHost?: string;
}

/** Starts the metrics endpoint the flags ask for, with a clear error when the port is taken. */
async function metricsEndpoint(
  o: MetricsOptions,
  defaultHost: string,
): Promise<{ registry: ReturnType<typeof createRegistry>; server: MetricsServer } | undefined> {
  if (o.metricsPort === undefined) return undefined;
  const p = port(o.metricsPort, '--metrics-port');
  const registry = createRegistry();
  const host = o.metricsHost ?? defaultHost;
  try {
    return { registry, server: await serveMetrics(registry, p, host) };
  } catch (err) {
    throw new UserError(
      `--metrics-port ${p}: cannot listen on ${host}:${p} (${(err as Error).message}); choose another port`,
      1,
    );
  }
}

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

/** The example pipeline, bundled by `allot dev` unless `--workflows` names others. */
export const EXAMPLE_WORKFLOWS = path.join(PACKAGE_ROOT, 'examples', 'pipeline', 'workflows.ts');

function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

function inventoryFlags(o: InventoryOptions): InventoryFlags {
  return {
    gpus: o.gpus,
    gpuModel: o.gpuModel,
    gpuMemory: o.gpuMemory,
    cpu: o.cpu,
    memory: o.memory,
    labels: parsePairs(o.label, '--label'),
  };
}

/** Worker notices that only say a worker has no workflows or no activities: expected here. */
const EXPECTED = /^No (activities|workflows) registered/;

/**
 * Logs of the Temporal workers as one readable line each: a step that fails is the user's
 * business, shown by message, never by stack trace. `ALLOT_LOG_LEVEL=debug` shows everything.
 */
function quietRuntime(): void {
  const verbose = process.env.ALLOT_LOG_LEVEL === 'debug';
  Runtime.install({
    // Each command stops its workers itself on SIGINT/SIGTERM: the agent drains first.
    shutdownSignals: [],
    logger: new DefaultLogger(verbose ? 'DEBUG' : 'WARN', (entry) => {
      if (verbose) {
        process.stderr.write(`${entry.level} ${entry.message} ${JSON.stringify(entry.meta ?? {})}\n`);
        return;
      }
      if (EXPECTED.test(entry.message)) return;
      const meta = (entry.meta ?? {}) as { workflowId?: string; workflowType?: string; error?: unknown };
      const error =
        meta.error instanceof Error ? meta.error.message : meta.error !== undefined ? String(meta.error) : '';
      const subject = meta.workflowId ? ` ${meta.workflowType ?? 'workflow'} ${meta.workflowId}` : '';
      process.stderr.write(`[${entry.level.toLowerCase()}] ${entry.message}${subject}${error ? `: ${error}` : ''}\n`);
    }),
  });
}

/** Resolves when the process is asked to stop. */
function stopSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

function port(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new UserError(`${flag} must be a port number from 1 to 65535, got ${JSON.stringify(value)}`);
  return n;
}

function workflowModules(list: string[] | undefined): string[] {
  return (list ?? []).map((p) => {
    const abs = path.resolve(p);
    if (!existsSync(abs))
      throw new UserError(`--workflows ${p}: no such file; give a module that exports your pipeline workflows`);
    return abs;
  });
}

/** `allot dev`: dev server + control worker + one local agent, until Ctrl-C. */
export async function dev(o: DevOptions): Promise<number> {
  const nodeId = o.nodeId ?? os.hostname();
  const detected = await detectInventory(nodeId, inventoryFlags(o));
  const inventory = detected.spec;
  const ports = { frontend: port(o.port, '--port'), ui: port(o.uiPort, '--ui-port') };
  if (o.metricsPort !== undefined) port(o.metricsPort, '--metrics-port');
  const modules = o.workflows ? workflowModules(o.workflows) : existsSync(EXAMPLE_WORKFLOWS) ? [EXAMPLE_WORKFLOWS] : [];
  const dataDir = path.resolve(o.dataDir);
  const templates = autoscaleTemplates(o);
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
  say(`[1/4] starting the Temporal dev server: ${describeTemporalCli(cli)}`);
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
    throw new UserError(
      `could not start the Temporal dev server on ${o.ip}:${ports.frontend} (UI ${ports.ui}): ${(err as Error).message.split('\n')[0]}\n` +
        'Is another server using these ports? Choose others with --port and --ui-port, or stop it. Run `npm run setup` to install the Temporal CLI.',
      1,
    );
  }
  const stopped = stopSignal();
  let scaler: ReturnType<typeof localAgentScaler> | undefined;
  let control: Awaited<ReturnType<typeof startControlWorker>> | undefined;
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  let metrics: Awaited<ReturnType<typeof metricsEndpoint>>;
  try {
    metrics = await metricsEndpoint(o, o.ip);
    say(
      `[2/4] bundling workflows${modules.length > 0 ? ` (${modules.map((m) => path.relative(process.cwd(), m)).join(', ')})` : ''}`,
    );
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
      say(`      autoscaling ${templates.map((t) => `${t.name} (${describeTemplate(t)}) up to ${t.max}`).join('; ')}`);
    }
    say(`[3/4] control worker polling task queue "allot"`);
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
    });
    say(
      `[4/4] agent ${inventory.id}: ${inventory.gpus.length} GPU${inventory.gpus.length === 1 ? '' : 's'}` +
        `${inventory.gpus[0] ? ` (${inventory.gpus[0].model}, ${formatMemory(inventory.gpus[0].memoryMiB)})` : ''}, ` +
        `cpu ${formatCpu(inventory.cpuMilli)}, memory ${formatMemory(inventory.memoryMiB)}`,
    );
    say('');
    say(`allot dev is up`);
    say(`  Temporal UI   http://${o.ip === '0.0.0.0' ? 'localhost' : o.ip}:${ports.ui}`);
    say(`  Temporal      ${o.ip}:${ports.frontend}, namespace default`);
    say(`  pool          ${o.pool}`);
    say(`  data          ${dataDir}`);
    if (metrics) say(`  metrics       ${metrics.server.url}`);
    if (codecServer) say(`  codec server  ${codecServer.url} (payloads are encrypted; the UI decrypts through it)`);
    say('');
    say(`try:  npx allot submit --gpu 1 -- sh -c 'echo GPUs $CUDA_VISIBLE_DEVICES'`);
    say(`      npx allot run trainPipeline`);
    say(`      npx allot status`);
    say('Ctrl-C stops everything.');
    const why = await Promise.race([
      stopped,
      control.done.then(() => 'control worker stopped'),
      agent.done.then(() => 'agent stopped'),
    ]);
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
  say('stopped');
  return 0;
}

/** Options of `allot worker`. */
export interface WorkerOptions extends MetricsOptions {
  workflows?: string[];
  pool: string[];
  /** Argv of the scaler command (see `commandScaler`). */
  scalerCommand?: string[];
}

/** `allot worker`: the control worker, with the user's pipeline workflows. */
export async function worker(o: WorkerOptions): Promise<number> {
  quietRuntime();
  const settings = cliConnectionSettings();
  const address = settings.connectionOptions.address ?? 'localhost:7233';
  let client, connection;
  try {
    client = await connectClient(settings);
    connection = await connectWorker(settings);
  } catch (err) {
    throw connectionFailure(address, err);
  }
  const modules = workflowModules(o.workflows);
  const metrics = await metricsEndpoint(o, '0.0.0.0');
  say(
    `bundling workflows${modules.length > 0 ? ` (${modules.map((m) => path.relative(process.cwd(), m)).join(', ')})` : ''}`,
  );
  const control = await startControlWorker({
    client,
    connection,
    namespace: settings.namespace,
    pools: o.pool,
    workflows: modules,
    metrics: metrics?.registry,
    ...(o.scalerCommand && o.scalerCommand.length > 0 ? { scaler: commandScaler(o.scalerCommand) } : {}),
  });
  if (metrics) say(`metrics at ${metrics.server.url}`);
  say(
    `control worker polling task queue "allot" on ${address} (namespace ${settings.namespace}); pools: ${o.pool.join(', ')}`,
  );
  const why = await Promise.race([stopSignal(), control.done.then(() => 'worker stopped')]);
  say(`stopping (${why})…`);
  if (control.worker.getState() === 'RUNNING') control.worker.shutdown();
  await control.done.catch(() => undefined);
  await metrics?.server.close();
  await connection.close();
  await client.connection.close();
  return 0;
}

/** Options of `allot agent`. */
export interface AgentCommandOptions extends InventoryOptions, MetricsOptions {
  pool: string;
  nodeId?: string;
  dataDir: string;
  envAllow?: string[];
  /** Seconds running steps have to finish when the agent is stopped. @default "30" */
  drainTimeout?: string;
  /** Milliseconds between usage samples (and memory checks) of each workload. @default "500" */
  sampleInterval?: string;
  /** `false` with --no-cgroups: watch memory by polling even where cgroup v2 is available. */
  cgroups?: boolean;
}

/** Resolves on each SIGINT or SIGTERM, with its name. */
function onStopSignals(handler: (signal: string) => void): () => void {
  const int = (): void => handler('SIGINT');
  const term = (): void => handler('SIGTERM');
  process.on('SIGINT', int);
  process.on('SIGTERM', term);
  return () => {
    process.off('SIGINT', int);
    process.off('SIGTERM', term);
  };
}

function describeInventory(inv: Inventory): string[] {
  const { spec } = inv;
  const lines = [
    `node ${spec.id}: cpu ${formatCpu(spec.cpuMilli)}, memory ${formatMemory(spec.memoryMiB)}, ` +
      `${spec.gpus.length} GPU${spec.gpus.length === 1 ? '' : 's'}` +
      (inv.detected ? ` (detected${inv.detected.length === 0 ? ': none on this machine' : ''})` : ' (declared)'),
  ];
  for (const d of describeDetected(inv.detected ?? [])) lines.push(`  ${d}`);
  if (!inv.detected || inv.detected.some((g) => g.migEnabled)) {
    for (const g of spec.gpus)
      lines.push(`  device ${g.index}: ${g.model}, ${formatMemory(g.memoryMiB)}${g.uuid ? `, ${g.uuid}` : ''}`);
  }
  const labels = Object.entries(spec.labels);
  if (labels.length > 0) lines.push(`  labels: ${labels.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  return lines;
}

/** `allot agent`: registers this machine with a pool and runs the steps granted to it. */
export async function agent(o: AgentCommandOptions): Promise<number> {
  const drainTimeoutMs = parseSeconds(o.drainTimeout ?? '30', '--drain-timeout') ?? 30_000;
  const sampleMs = parseInteger(o.sampleInterval ?? '500', '--sample-interval', 50, 60_000) ?? 500;
  if (o.metricsPort !== undefined) port(o.metricsPort, '--metrics-port');
  quietRuntime();
  const nodeId = o.nodeId ?? os.hostname();
  const inventory = await detectInventory(nodeId, inventoryFlags(o));
  for (const line of describeInventory(inventory)) say(line);
  const settings = cliConnectionSettings();
  const address = settings.connectionOptions.address ?? 'localhost:7233';
  let client, connection;
  try {
    client = await connectClient(settings);
    connection = await connectWorker(settings);
  } catch (err) {
    throw connectionFailure(address, err);
  }
  const metrics = await metricsEndpoint(o, '0.0.0.0');
  const running = await startAgent({
    client,
    connection,
    namespace: settings.namespace,
    pool: o.pool,
    inventory: inventory.spec,
    visibleIds: inventory.visibleIds,
    dataDir: path.resolve(o.dataDir, nodeId),
    envAllowlist: [...DEFAULT_ENV_ALLOWLIST, ...(o.envAllow ?? [])],
    sampleMs,
    cgroups: o.cgroups !== false,
    metrics: metrics?.registry,
    notice: (m) => say(m),
  });
  if (metrics) say(`metrics at ${metrics.server.url}`);
  say(`agent ${nodeId} registered with pool ${o.pool} on ${address}; polling allot-node-${nodeId}`);
  let signals = 0;
  let stop: (why: string) => void = () => undefined;
  const stopRequested = new Promise<string>((resolve) => (stop = resolve));
  const removeHandlers = onStopSignals((signal) => {
    signals += 1;
    if (signals === 1) stop(signal);
    else {
      say(`${signal} again: handing running steps back now`);
      running.handBack();
    }
  });
  const why = await Promise.race([stopRequested, running.done.then(() => 'worker stopped')]);
  say(`stopping (${why}): draining node ${nodeId}; running steps have ${Math.round(drainTimeoutMs / 1000)}s to finish`);
  await running.drainAndStop(drainTimeoutMs);
  removeHandlers();
  await metrics?.server.close();
  await connection.close();
  await client.connection.close();
  say('stopped');
  return 0;
}

export { DEFAULT_POOL };
