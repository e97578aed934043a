/**
 * Progress reports for a transfer's log line: the first bytes at once (so that a resumed transfer
 * says at once how much it kept), then at most one report per interval, and always the end.
 */
import type { TransferOptions } from './types';

/** Milliseconds between two reports. */
const INTERVAL_MS = 250;

/** A function to call with the bytes in place so far; it forwards a report when one is due. */
export function progressReporter(
  key: string,
  total: number,
  onProgress: TransferOptions['onProgress'],
): (done: number) => void {
  let lastAt: number | undefined;
  let lastDone = -1;
  return (done) => {
    if (!onProgress || done === lastDone) return;
    const now = Date.now();
    const due =
      done === total || (lastAt === undefined && done > 0) || (lastAt !== undefined && now - lastAt >= INTERVAL_MS);
    if (!due) return;
    lastAt = now;
    lastDone = done;
    onProgress({ key, done, total });
  };
}
