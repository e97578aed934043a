/**
 * The Temporal connection of a CLI command, with a readable error when it cannot be had.
 */
import type { Client } from '@temporalio/client';
import type { ConnectionSettings } from '../workers/connection';
import { connectClient, connectionSettings } from '../workers/connection';
import { connectionHelp } from './errors';

/** Connects to Temporal as `TEMPORAL_ADDRESS`/`TEMPORAL_NAMESPACE` (or the config profile) say. */
export async function cliClient(): Promise<{
  client: Client;
  settings: ConnectionSettings;
  close: () => Promise<void>;
}> {
  const settings = connectionSettings();
  let client: Client;
  try {
    client = await connectClient(settings);
    await client.connection.workflowService.getSystemInfo({});
  } catch (err) {
    throw connectionHelp(settings.connectionOptions.address ?? 'localhost:7233', err);
  }
  return { client, settings, close: () => client.connection.close() };
}
