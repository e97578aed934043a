/**
 * Parsers for CLI option values; each error names the flag, the value and the allowed form.
 */
import { readFileSync } from 'node:fs';
import { UserError } from './errors';

/** `k=v` pairs into an object; `flag` names the option in errors. */
export function parsePairs(values: readonly string[] | undefined, flag: string): Record<string, string> {
  const pairs: [string, string][] = [];
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UserError(`${flag} must be KEY=VALUE, got ${JSON.stringify(v)}`);
    pairs.push([v.slice(0, eq), v.slice(eq + 1)]);
  }
  // As own properties: assigning `__proto__` would drop the pair silently, not leave it to validation.
  return Object.fromEntries(pairs);
}

/** Seconds (a non-negative number) into milliseconds. */
export function parseSeconds(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new UserError(`${flag} must be a non-negative number of seconds, got ${JSON.stringify(value)}`);
  }
  return Math.round(n * 1000);
}

const DURATION_UNITS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: seconds (`90`), or a number with a unit `s`, `m`, `h` or `d` (`6h`, `7d`); ms, or `undefined` if absent. */
export function parseDuration(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/.exec(value);
  const ms = m ? Math.round(Number(m[1]) * (DURATION_UNITS[m[2] || 's'] ?? 1_000)) : NaN;
  if (!Number.isSafeInteger(ms)) {
    throw new UserError(
      `${flag} must be a duration: a number of seconds, or a number with s, m, h or d (e.g. 6h, 7d; 0 turns it off), got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

/** An integer within a range. */
export function parseInteger(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || n < min || n > max) {
    throw new UserError(`${flag} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** `--input`: inline JSON, or `@file` with JSON in it. */
export function parseInput(value: string | undefined): unknown[] {
  if (value === undefined) return [];
  let text = value;
  if (value.startsWith('@')) {
    const file = value.slice(1);
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UserError(`--input ${value}: cannot read ${file}: ${(err as Error).message}`);
    }
  }
  try {
    return [JSON.parse(text)];
  } catch (err) {
    throw new UserError(
      `--input must be JSON or @file with JSON in it; ${(err as Error).message} in ${JSON.stringify(value.slice(0, 80))}`,
    );
  }
}

/** A TCP port from 1 to 65535. */
export function parsePort(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new UserError(`${flag} must be a port number from 1 to 65535, got ${JSON.stringify(value)}`);
  return n;
}
