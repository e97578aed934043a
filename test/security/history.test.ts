/**
 * With ALLOT_CODEC_KEY set, a secret in a step's environment never reaches Temporal in the clear:
 * the plain `temporal` CLI shows no trace of it in the histories of the pipeline, the step or the
 * pool, nor do the worker's and agent's logs; the same CLI pointed at `allot codec-server`'s
 * endpoint shows it. Without a key, the same history shows the secret: the test can tell.
 */
import { randomUUID } from 'node:crypto';
import type { LogEntry } from '@temporalio/worker';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codecFromEnv, generateCodecKey } from '../../src/workers/codec';
import type { CodecServer } from '../../src/workers/codec-server';
import { serveCodec } from '../../src/workers/codec-server';
import { poolWorkflowId } from '../../src/workflows/messages';
import type { StepResult } from '../../src/workflows/step-types';
import type { SecureWorld } from './world';
import { createSecureWorld, temporalCli } from './world';

const logs: string[] = [];
Runtime.install({
  logger: new DefaultLogger('DEBUG', (e: LogEntry) => logs.push(`${e.message} ${JSON.stringify(e.meta ?? {})}`)),
});
const writeErr = process.stderr.write.bind(process.stderr);
process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
  logs.push(String(chunk));
  return writeErr(chunk, ...rest);
}) as typeof process.stderr.write;

const SECRET = `tok-${randomUUID()}`;
const KEY = generateCodecKey();
let encrypted: SecureWorld;
let plain: SecureWorld;
let codecServer: CodecServer;

beforeAll(async () => {
  encrypted = await createSecureWorld('codec', { key: KEY });
  plain = await createSecureWorld('nocodec');
  const codec = codecFromEnv({ ALLOT_CODEC_KEY: KEY });
  if (!codec) throw new Error('no codec');
  codecServer = await serveCodec({ codec, port: 0 });
});

afterAll(async () => {
  await encrypted?.close();
  await plain?.close();
  await codecServer?.close();
});

/** Runs a pipeline of one step that gets SECRET in its environment; returns the pipeline id. */
async function runStepWithSecret(world: SecureWorld): Promise<string> {
  const id = `secret-${randomUUID().slice(0, 8)}`;
  const handle = await world.client.workflow.start('parallelSteps', {
    taskQueue: world.taskQueue,
    workflowId: id,
    args: [
      [
        {
          name: 'uses-token',
          command: ['sh', '-c', 'echo "token of ${#API_TOKEN} characters"'],
          env: { API_TOKEN: SECRET },
          pool: world.pool,
        },
      ],
    ],
  });
  const [result] = (await handle.result()) as StepResult[];
  expect(result?.logTail).toContain(`token of ${SECRET.length} characters`);
  return id;
}

/**
 * `temporal workflow show -o json` of a workflow, as the CLI prints it, followed by every payload
 * in it decoded from base64 (the CLI prints payload bytes as base64): where a person would look.
 */
async function show(workflowId: string, extra: string[] = []): Promise<string> {
  const out = await temporalCli(['workflow', 'show', '-o', 'json', '--workflow-id', workflowId, ...extra]);
  expect(out.code, out.stderr).toBe(0);
  const decoded: string[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (typeof value === 'object' && value !== null) {
      const o = value as Record<string, unknown>;
      if (typeof o.data === 'string' && typeof o.metadata === 'object' && o.metadata !== null) {
        decoded.push(Buffer.from(o.data, 'base64').toString('latin1'));
        for (const v of Object.values(o.metadata))
          if (typeof v === 'string') decoded.push(Buffer.from(v, 'base64').toString());
      }
      Object.values(o).forEach(walk);
    }
  };
  walk(JSON.parse(out.stdout));
  return `${out.stdout}\n${decoded.join('\n')}`;
}

describe('a secret in a step environment, with ALLOT_CODEC_KEY', () => {
  it('appears in no history read with the plain temporal CLI, and in no log', async () => {
    const seen = logs.length;
    const id = await runStepWithSecret(encrypted);
    for (const workflowId of [id, `${id}/uses-token`, poolWorkflowId(encrypted.pool)]) {
      const history = await show(workflowId);
      expect(history.length).toBeGreaterThan(1000);
      expect(history, workflowId).not.toContain(SECRET);
      expect(history).toContain('binary/encrypted');
    }
    expect(logs.slice(seen).join('\n')).not.toContain(SECRET);
  });

  it('is shown by the same CLI through the codec server, as the Temporal UI shows it', async () => {
    const id = await runStepWithSecret(encrypted);
    expect(await show(`${id}/uses-token`, ['--codec-endpoint', codecServer.url])).toContain(SECRET);
  });

  it('is in the clear without a key (what the codec prevents)', async () => {
    const id = await runStepWithSecret(plain);
    expect(await show(`${id}/uses-token`)).toContain(SECRET);
  });
});
