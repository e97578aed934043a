/**
 * The last lines of a workload's log, for step results and heartbeats.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';

/** Number of log lines kept in results and heartbeats. */
export const LOG_TAIL_LINES = 20;

/** The last `n` lines of a file (reads at most its last 64 KiB). */
export function tail(file: string, n: number): string[] {
  if (!existsSync(file)) return [];
  const size = statSync(file).size;
  const length = Math.min(size, 64 * 1024);
  const buffer = Buffer.alloc(length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, buffer, 0, length, size - length);
  } finally {
    closeSync(fd);
  }
  const lines = buffer.toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.slice(-n);
}
