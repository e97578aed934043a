/**
 * Small helpers the metric collectors share: units and sums.
 */

/** Bytes in a MiB: allot counts memory in MiB, Prometheus in bytes. */
export const MiB = 1024 * 1024;

/** Sums `value` over `items` grouped by `key`. */
export function countBy<T>(items: readonly T[], key: (t: T) => string, value: (t: T) => number): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of items) out.set(key(item), (out.get(key(item)) ?? 0) + value(item));
  return out;
}

/** `v` to three decimals: shares of a GPU add up without float noise. */
export function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}
