/**
 * Temporary folders for one test file, removed once its tests are done. The removal is the
 * file's first `afterAll`, so it runs last (hooks unwind like a stack): after the file's own hooks
 * have stopped the servers, agents and workloads that wrote there.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];

afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
});

/** A new folder `allot-<name>-XXXXXX` under the system's temporary folder. */
export function tempDir(name: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `allot-${name}-`));
  made.push(dir);
  return dir;
}
