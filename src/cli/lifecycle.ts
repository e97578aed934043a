/**
 * The lifecycle of the long-running commands (`dev`, `worker`, `agent`, `codec-server`): start
 * their services, show progress on stderr, stop once on SIGINT or SIGTERM, and return the exit
 * code.
 *
 * ```ts
 * return serve(async (stop) => {
 *   const worker = await startSomething();
 *   say(`stopping (${await untilStopped(stop, { worker: worker.done })})…`);
 *   await worker.close();
 * });
 * ```
 */
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { MetricsServer } from '../workers/metrics';
import { createRegistry, serveMetrics } from '../workers/metrics';
import type { ConnectionSettings } from '../workers/connection';
import { connectClient, connectWorker } from '../workers/connection';
import { cliConnectionSettings, connectionFailure } from './context';
import { UserError } from './errors';
import { parsePort } from './parse';

/** Prints one line for people on stderr (stdout stays for results). */
export function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Numbered progress lines: `[1/4] starting …`, `[2/4] …`. */
export function progress(total: number): (line: string) => void {
  let done = 0;
  return (line) => say(`[${++done}/${total}] ${line}`);
}

/** Worker notices that only say a worker has no workflows or no activities: expected here. */
const EXPECTED = /^No (activities|workflows) registered/;

/**
 * Logs of the Temporal workers as one readable line each: a step that fails is the user's
 * business, shown by message, never by stack trace. `ALLOT_LOG_LEVEL=debug` shows everything.
 */
export function quietRuntime(): void {
  const verbose = process.env.ALLOT_LOG_LEVEL === 'debug';
  Runtime.install({
    // Each command stops its workers itself on SIGINT/SIGTERM (see `serve`): the agent drains first.
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

/** The metrics endpoint flags. */
export interface MetricsOptions {
  /** Port of the Prometheus endpoint (`GET /metrics`); none without it. */
  metricsPort?: string;
  /** Address the endpoint listens on. @default "0.0.0.0" (`allot dev`: its --ip) */
  metricsHost?: string;
}

/** A running metrics endpoint and the registry its services report to. */
export interface MetricsEndpoint {
  registry: ReturnType<typeof createRegistry>;
  server: MetricsServer;
}

/** Starts the metrics endpoint the flags ask for, with a clear error when the port is taken. */
export async function metricsEndpoint(o: MetricsOptions, defaultHost: string): Promise<MetricsEndpoint | undefined> {
  if (o.metricsPort === undefined) return undefined;
  const p = parsePort(o.metricsPort, '--metrics-port');
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

/** A client and a worker connection to the Temporal server the environment names. */
export interface TemporalConnections {
  settings: ConnectionSettings;
  /** `host:port` of the server. */
  address: string;
  client: Client;
  connection: NativeConnection;
  /** Closes both connections. */
  close(): Promise<void>;
}

/** Connects to Temporal as `TEMPORAL_ADDRESS`/`TEMPORAL_NAMESPACE` (or the config profile) say. */
export async function connectTemporal(): Promise<TemporalConnections> {
  const settings = cliConnectionSettings();
  const address = settings.connectionOptions.address ?? 'localhost:7233';
  let client: Client;
  let connection: NativeConnection;
  try {
    client = await connectClient(settings);
    connection = await connectWorker(settings);
  } catch (err) {
    throw connectionFailure(address, err);
  }
  return {
    settings,
    address,
    client,
    connection,
    async close() {
      await connection.close();
      await client.connection.close();
    },
  };
}

/** A request to stop, made by the first SIGINT or SIGTERM. */
export interface StopRequest {
  /** Resolves with the signal's name. */
  readonly requested: Promise<string>;
}

/** What a command does on the signals after the first. */
export type OnSignalAgain = (signal: string) => void;

/** By default a second signal stops at once, without the clean stop still under way. */
const EXIT_AT_ONCE: OnSignalAgain = (signal) => {
  say(`${signal} again: exiting now`);
  process.exit(130);
};

/**
 * Runs a long-running command. `body` starts its services and stops them once `stop.requested`
 * resolves (see `untilStopped`); the first SIGINT or SIGTERM resolves it, each later one calls
 * `again`. The handlers are installed when `serve` is called and removed when `body` ends.
 * Resolves to the exit code, 0, after saying `stopped`.
 */
export async function serve(
  body: (stop: StopRequest) => Promise<void>,
  options: { again?: OnSignalAgain } = {},
): Promise<number> {
  const again = options.again ?? EXIT_AT_ONCE;
  let signals = 0;
  let resolve: (signal: string) => void = () => undefined;
  const requested = new Promise<string>((r) => (resolve = r));
  const onSignal = (signal: string): void => {
    signals += 1;
    if (signals === 1) resolve(signal);
    else again(signal);
  };
  const int = (): void => onSignal('SIGINT');
  const term = (): void => onSignal('SIGTERM');
  process.on('SIGINT', int);
  process.on('SIGTERM', term);
  try {
    await body({ requested });
  } finally {
    process.off('SIGINT', int);
    process.off('SIGTERM', term);
  }
  say('stopped');
  return 0;
}

/**
 * Waits until a stop is requested or one of the services ends by itself; resolves with why, e.g.
 * `SIGINT` or `agent stopped`. A service that fails rejects it.
 */
export function untilStopped(stop: StopRequest, services: Record<string, Promise<unknown>>): Promise<string> {
  return Promise.race([
    stop.requested,
    ...Object.entries(services).map(([name, done]) => done.then(() => `${name} stopped`)),
  ]);
}
