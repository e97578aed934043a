/**
 * restoring a checkpoint of many files walks the whole folder once per file (twice),
 * so its cost grows with the square of the file count: measured here on a loaded 2-core machine,
 * 1000 files took 16 s, 2000 took 58 s, 4000 took 248 s. The restore holds the step before its
 * workload starts (heartbeating, so nothing times it out).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type * as Files from '../../src/activities/files';
import { tempDir } from '../helpers/temp';

const walked = { entries: 0 };
vi.mock('../../src/activities/files', async (importOriginal) => {
  const real = await importOriginal<typeof Files>();
  return {
    ...real,
    walkFiles: (dir: string) => {
      const out = real.walkFiles(dir);
      walked.entries += out.length;
      return out;
    },
  };
});

describe('a checkpoint of many files', () => {
  it('restore lists each file a bounded number of times, not once per other file', async () => {
    const { CheckpointSync } = await import('../../src/activities/checkpoint-sync');
    const { openStore } = await import('../../src/store');
    const store = openStore(`file://${tempDir('store')}`);
    const mk = (dir: string, node: string, attempt: number) =>
      new CheckpointSync({ store, stepId: 'P/t', dir, nodeId: node, attempt, leaseId: `d-${attempt}`, log: () => {} });
    const n = 300;
    const a = path.join(tempDir('a'), 'ck');
    const onA = mk(a, 'a', 1);
    await onA.restore();
    for (let i = 0; i < n; i++) writeFileSync(path.join(a, `shard-${i}`), String(i));
    await onA.finish();
    walked.entries = 0;
    await mk(path.join(tempDir('b'), 'ck'), 'b', 2).restore();
    // Linear would be a few times n; the code as landed lists about n² entries (90000 for 300 files).
    expect(walked.entries).toBeLessThan(10 * n);
  });
});
