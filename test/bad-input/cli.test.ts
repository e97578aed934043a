/**
 * The bad-input table, part 1: flags of the real `allot` binary and files given to
 * `allot simulate`. Each gets exit code 2 and a message naming the problem, never a stack trace.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { allot } from '../helpers/cli';
import { CLI_ROWS, COMPANION_FILES, FILE_ROWS } from './rows';
import { tempDir } from '../helpers/temp';

const dir = tempDir('bad-input');
const companions: Record<string, string> = {};
for (const [name, content] of Object.entries(COMPANION_FILES)) {
  companions[name] = path.join(dir, `companion-${name}.csv`);
  writeFileSync(companions[name], content);
}

/** The stack-trace line of a Node error, which a user must never see for a mistake of theirs. */
const STACK = /^\s+at .+:\d+:\d+\)?$/m;

function expectClearError(result: { code: number | null; stdout: string; stderr: string }, message: RegExp): void {
  const output = `${result.stdout}${result.stderr}`;
  expect(output).toMatch(message);
  expect(output).not.toMatch(STACK);
  expect(output).not.toContain('unexpected error');
  expect(result.code, output).toBe(2);
}

describe('bad flags of the allot binary', () => {
  // A server is there, so no row can pass by failing to connect first.
  const env = { TEMPORAL_ADDRESS: inject('temporalAddress') };

  it.each(CLI_ROWS.map((r) => [r.name, r] as const))('%s', async (_, row) => {
    expectClearError(await allot(row.args, { ...env, ...row.env }, 60_000), row.expect);
  });
});

describe('bad files for allot simulate', () => {
  it.each(FILE_ROWS.map((r, i) => [r.name, r, i] as const))('%s', async (_, row, i) => {
    const file = path.join(dir, `${i}-${row.file}`);
    writeFileSync(file, row.content);
    const args = row.args.map((a) =>
      a.replace('{file}', file).replace(/^\{(\w+)\}$/, (m, name: string) => companions[name] ?? m),
    );
    expectClearError(await allot(['simulate', ...args], {}, 60_000), row.expect);
  });
});
