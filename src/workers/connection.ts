/**
 * Connection settings, read the way Temporal's own tools read them (`@temporalio/envconfig`):
 * the config file's profile, then `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`,
 * `TEMPORAL_TLS_*`. Defaults: `localhost:7233`, namespace `default`.
 */
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';
import { NativeConnection } from '@temporalio/worker';
import { clientDataConverter } from './codec';

/** Where to connect and as whom. */
export interface ConnectionSettings {
  connectionOptions: NativeConnectionOptions;
  namespace: string;
  /** Payload encryption of clients, from `ALLOT_CODEC_KEY` (see codec.ts). @default none */
  dataConverter?: DataConverter;
}

/** Reads connection settings from the environment and the Temporal config file. */
export function connectionSettings(
  overrides: { address?: string; namespace?: string; profile?: string } = {},
): ConnectionSettings {
  const config = loadClientConnectConfig({
    ...(overrides.profile ? { profile: overrides.profile } : {}),
    overrideEnvVars: withoutEmptyTemporalVars(process.env),
  });
  const connectionOptions: NativeConnectionOptions = { ...config.connectionOptions };
  connectionOptions.address = overrides.address ?? connectionOptions.address ?? 'localhost:7233';
  const dataConverter = clientDataConverter();
  return {
    connectionOptions,
    namespace: overrides.namespace ?? config.namespace ?? 'default',
    ...(dataConverter ? { dataConverter } : {}),
  };
}

/**
 * The environment without empty `TEMPORAL_*` variables. CI systems set a variable to "" when its
 * secret is missing; an empty `TEMPORAL_API_KEY` or certificate must mean "not set", not "use this".
 */
export function withoutEmptyTemporalVars(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined || (key.startsWith('TEMPORAL_') && value.trim() === '')) continue;
    out[key] = value;
  }
  return out;
}

/** A Temporal client for the settings. */
export async function connectClient(settings: ConnectionSettings): Promise<Client> {
  const connection = await Connection.connect({ ...settings.connectionOptions, connectTimeout: '5s' } as Parameters<
    typeof Connection.connect
  >[0]);
  return new Client({ connection, namespace: settings.namespace, dataConverter: settings.dataConverter });
}

/** A worker connection for the settings. */
export function connectWorker(settings: ConnectionSettings): Promise<NativeConnection> {
  return NativeConnection.connect(settings.connectionOptions);
}
