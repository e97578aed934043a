/**
 * The Temporal connection of a CLI command, with a readable error when it cannot be had.
 */
import type { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { CodecKeyError, clientDataConverter } from '../workers/codec';
import type { ConnectionSettings } from '../workers/connection';
import { connectClient, connectionSettings } from '../workers/connection';
import { connectionHelp, rootMessage, UserError } from './errors';

/** Runs `read`, reporting a bad `ALLOT_CODEC_KEY` as the user's mistake it is. */
function withCodecKey<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof CodecKeyError) throw new UserError(err.message);
    throw err;
  }
}

/** Connection settings of a command (with its payload encryption, if `ALLOT_CODEC_KEY` is set). */
export function cliConnectionSettings(): ConnectionSettings {
  return withCodecKey(() => connectionSettings());
}

/** The payload encryption of `ALLOT_CODEC_KEY`, if it is set. */
export function cliDataConverter(): DataConverter | undefined {
  return withCodecKey(() => clientDataConverter());
}

/** Connects to Temporal as `TEMPORAL_ADDRESS`/`TEMPORAL_NAMESPACE` (or the config profile) say. */
export async function cliClient(): Promise<{
  client: Client;
  settings: ConnectionSettings;
  close: () => Promise<void>;
}> {
  const settings = cliConnectionSettings();
  let client: Client;
  try {
    client = await connectClient(settings);
    await client.connection.workflowService.getSystemInfo({});
  } catch (err) {
    throw connectionFailure(settings.connectionOptions.address ?? 'localhost:7233', err);
  }
  return { client, settings, close: () => client.connection.close() };
}

/**
 * Why a connection failed, for people: refused credentials (a wrong API key or client certificate)
 * say so; anything else is a server that cannot be reached.
 */
export function connectionFailure(address: string, err: unknown): UserError {
  const why = rootMessage(err);
  if (/UNAUTHENTICATED|PERMISSION_DENIED/.test(why)) {
    return new UserError(
      `Temporal at ${address} refused these credentials (${why.split('\n')[0]}); check TEMPORAL_API_KEY, ` +
        'the client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH) and TEMPORAL_NAMESPACE',
      1,
    );
  }
  return connectionHelp(address, err);
}
