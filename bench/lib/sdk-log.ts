/**
 * The SDK's log during a benchmark: errors only, on one line each, and a record of payloads over
 * Temporal's limit (the pool's continue-as-new state, for one), which the figures report.
 */
import type { LogEntry } from '@temporalio/worker';
import { DefaultLogger, Runtime } from '@temporalio/worker';

/** A payload the SDK refused to upload: its size and the limit, bytes. */
export interface PayloadOverLimit {
  at: number;
  size: number;
  limit: number;
}

/** Payloads over the limit seen so far, oldest first. */
export const payloadsOverLimit: PayloadOverLimit[] = [];

function record(entry: LogEntry): void {
  const meta = (entry.meta ?? {}) as { size?: unknown; limit?: unknown };
  if (entry.message.includes('TMPRL1103') && typeof meta.size === 'number') {
    payloadsOverLimit.push({ at: Date.now(), size: meta.size, limit: typeof meta.limit === 'number' ? meta.limit : 0 });
    return;
  }
  process.stderr.write(`[sdk ${entry.level}] ${entry.message}\n`);
}

/** Installs the SDK runtime with this log (core's own messages included, errors only). */
export function installBenchRuntime(): void {
  Runtime.install({
    logger: new DefaultLogger('ERROR', record),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' }, forward: {} } },
  });
}
