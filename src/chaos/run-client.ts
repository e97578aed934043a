/**
 * The chaos run's own Temporal client: it starts pipelines and samples the pool while the server
 * is killed and started again.
 */
import { Client, Connection } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One client for the whole run. Its channel reconnects by itself after the server comes back, so
 * it is never closed on an error: a closed channel makes the client's pending retries throw.
 */
export class RunClient {
  private client: Client | undefined;
  /** Calls under way: closing waits for them, or a retry of theirs would hit the closed channel. */
  private readonly pending = new Set<Promise<unknown>>();
  private readonly stop = new AbortController();

  constructor(
    private readonly address: string,
    private readonly dataConverter: DataConverter | undefined,
  ) {}

  /** Runs `action` with the client; `undefined` when the server cannot be reached now. */
  async use<T>(action: (client: Client) => Promise<T>): Promise<T | undefined> {
    if (this.stop.signal.aborted) return undefined;
    let call: Promise<T> | undefined;
    try {
      const client = (this.client ??= new Client({
        connection: await Connection.connect({ address: this.address, connectTimeout: '3s' }),
        dataConverter: this.dataConverter,
      }));
      call = client.withAbortSignal(this.stop.signal, () => action(client));
      this.pending.add(call);
      return await call;
    } catch (err) {
      if (isUnavailable(err) || this.stop.signal.aborted) return undefined;
      throw err;
    } finally {
      if (call) this.pending.delete(call);
    }
  }

  /** Cancels the calls under way (a stuck pool's queries retry for long), then closes the channel. */
  async close(): Promise<void> {
    this.stop.abort();
    await Promise.race([Promise.allSettled([...this.pending]), sleep(15_000)]);
    await this.client?.connection.close().catch(() => undefined);
  }
}

function isUnavailable(err: unknown): boolean {
  const text = err instanceof Error ? `${err.name} ${err.message} ${String((err as { cause?: unknown }).cause)}` : '';
  return /UNAVAILABLE|DEADLINE_EXCEEDED|connect|Connection|transport|ECONNREFUSED|Failed to query|ServiceError/i.test(
    text,
  );
}
