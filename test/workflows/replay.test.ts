/**
 * Replays recorded histories against today's workflow code: a change that breaks determinism
 * fails here. Fixtures are recorded by record-histories.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { noMetricsSinks } from '../../src/workers/metrics';

const FIXTURES = path.resolve(__dirname, '../fixtures/histories');
/** History file → the workflow id it was recorded under (ids feed into the workflows' logic). */
const manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as Record<string, string>;
const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.json') && f !== 'manifest.json');

describe('replay of recorded histories', () => {
  it('has fixtures to replay', () => {
    expect(files.length).toBeGreaterThanOrEqual(5);
    expect(Object.keys(manifest).sort()).toEqual([...files].sort());
  });

  it.each(files)('%s replays without nondeterminism', async (file) => {
    const history = historyFromJSON(JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8')));
    await Worker.runReplayHistory(
      { workflowBundle: { codePath: inject('workflowBundlePath') }, sinks: noMetricsSinks() },
      history,
      manifest[file],
    );
  });
});
