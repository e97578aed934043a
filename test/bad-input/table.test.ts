/**
 * The bad-input table itself: at least 40 rows, across every door of allot, each named once.
 */
import { describe, expect, it } from 'vitest';
import { CLI_ROWS, FILE_ROWS, POOL_ROWS, STEP_ROWS } from './rows';

describe('the bad-input table', () => {
  const rows = [...CLI_ROWS, ...FILE_ROWS, ...POOL_ROWS, ...STEP_ROWS];

  it('has at least 40 rows, with some at every door', () => {
    expect(rows.length).toBeGreaterThanOrEqual(40);
    expect(CLI_ROWS.some((r) => r.args[0] === 'agent')).toBe(true);
    expect(FILE_ROWS.some((r) => r.args.includes('tiresias')) && FILE_ROWS.some((r) => r.file.endsWith('.json'))).toBe(
      true,
    );
    expect(POOL_ROWS.some((r) => r.kind === 'update') && POOL_ROWS.some((r) => r.kind === 'signal')).toBe(true);
    expect(STEP_ROWS.length).toBeGreaterThan(0);
  });

  it('names every row once', () => {
    const names = [...CLI_ROWS, ...FILE_ROWS, ...STEP_ROWS].map((r) => r.name);
    names.push(...POOL_ROWS.map((r) => `${r.kind} ${r.name}`));
    expect(new Set(names).size).toBe(names.length);
  });
});
