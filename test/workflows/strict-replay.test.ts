/**
 * Strict replay of the recorded pool histories: the server checks only that a replay issues the
 * same kinds of commands, so a pool that granted other steps on replay (a different scheduling
 * decision, say) would replay "without nondeterminism" and then hold state its steps never heard
 * of. Here every signal the pool sends on replay is recorded and must be the very signal, to the
 * very step, that the history sent.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import type { InjectedSinks } from '@temporalio/worker';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { noMetricsSinks } from '../../src/workers/metrics';
import type { SignalRecorderSinks } from './strict/signal-recorder';

const FIXTURES = path.resolve(__dirname, '../fixtures/histories');
const manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as Record<string, string>;
const pools = readdirSync(FIXTURES).filter((f) => f.startsWith('pool-') && f.endsWith('.json'));

interface RecordedEvent {
  eventType: string;
  signalExternalWorkflowExecutionInitiatedEventAttributes?: {
    signalName: string;
    workflowExecution: { workflowId: string };
  };
}

/** The signals a history sent to other workflows, in order: `target signal`. */
function sentInHistory(json: { events: RecordedEvent[] }): string[] {
  return json.events
    .map((e) => e.signalExternalWorkflowExecutionInitiatedEventAttributes)
    .filter((a) => a !== undefined)
    .map((a) => `${a.workflowExecution.workflowId} ${a.signalName}`);
}

let code: string;
beforeAll(async () => {
  const bundle = await bundleWorkflowCode({
    workflowsPath: path.resolve(__dirname, '../../src/workflows/index.ts'),
    workflowInterceptorModules: [path.resolve(__dirname, 'strict/signal-recorder.ts')],
    logger: { log: () => {}, trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
  code = bundle.code;
}, 120_000);

describe('strict replay of pool histories', () => {
  it('has pool fixtures', () => expect(pools.length).toBeGreaterThanOrEqual(2));

  it.each(pools)('%s sends the same signals to the same steps on replay', async (file) => {
    const json = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8')) as { events: RecordedEvent[] };
    const sent: string[] = [];
    const recorder: InjectedSinks<SignalRecorderSinks> = {
      signalRecorder: {
        sent: { fn: (_info, target, name) => void sent.push(`${target} ${name}`), callDuringReplay: true },
      },
    };
    const sinks = { ...noMetricsSinks(), ...recorder };
    await Worker.runReplayHistory({ workflowBundle: { code }, sinks }, historyFromJSON(json), manifest[file]);
    expect(sent).toEqual(sentInHistory(json));
  });
});
