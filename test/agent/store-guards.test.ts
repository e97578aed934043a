/**
 * artifacts moved by a superseded attempt, inputs whose check is skipped, and bad
 * input through the CLI and the pool's setStore. Each test states the invariant it expects.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stageInputs, uploadOutputs } from '../../src/activities/artifacts';
import { storeUrl } from '../../src/cli/options';
import { UserError } from '../../src/cli/errors';
import { agent } from '../../src/cli/commands/agent';
import { openStore } from '../../src/store';
import { validateStepInput } from '../../src/workflows/step-validation';
import { checkStore } from '../../src/workflows/pool-validation';
import { tempDir } from '../helpers/temp';

describe('outputs of a superseded attempt', () => {
  it('a late upload by a cut-off attempt replaces the artifact the step already returned, and the next step fails', async () => {
    const store = openStore(`file://${tempDir('store')}`);
    const oldWork = tempDir('old-attempt');
    const newWork = tempDir('new-attempt');
    mkdirSync(path.join(oldWork, 'out'));
    mkdirSync(path.join(newWork, 'out'));
    writeFileSync(path.join(oldWork, 'out', 'model.bin'), 'weights of attempt 1 (seed 1)');
    writeFileSync(path.join(newWork, 'out', 'model.bin'), 'weights of attempt 2 (seed 2)');
    const outputs = { model: 'out/model.bin' };
    // Attempt 2 (the current lease) succeeds: its reference is the step's result, and the next
    // step is handed it.
    const accepted = await uploadOutputs({
      store,
      stepId: 'P/train',
      attempt: 2,
      outputs,
      workDir: newWork,
      log: () => {},
    });
    // Attempt 1's agent was cut off while its workload exited 0; its afterRun uploads late,
    // with no check of its lease: removePrefix, then its own file at the same key.
    await uploadOutputs({ store, stepId: 'P/train', attempt: 1, outputs, workDir: oldWork, log: () => {} });
    // Invariant (nothing accepted is lost): the accepted reference still reads back.
    await expect(
      stageInputs({ store, inputs: accepted, workDir: tempDir('next-step'), log: () => {} }),
    ).resolves.toBeDefined();
  });
});

describe('input checks', () => {
  it('an input reference without sha256 is accepted, so the documented check never runs', async () => {
    // docs/security.md: "Every artifact is referenced with its sha256, and a step whose input
    // does not match fails before its workload starts."
    const { issues } = validateStepInput({
      name: 'eval',
      command: ['true'],
      inputs: { model: { uri: 's3://bucket/artifacts/P/train/model/model.bin', size: 7 } },
    });
    expect(issues.map((i) => i.path.join('.'))).toContain('inputs.model.sha256');
  });
});

describe('bad store URLs', () => {
  it('--store with an encoded "/" is a user error naming the flag, not an unexpected error with a stack', () => {
    let err: unknown;
    try {
      storeUrl('file:///srv/a%2Fb');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain('--store');
  });

  it('--store "" is refused, not taken as the current folder', () => {
    expect(() => storeUrl('')).toThrow(/--store/);
  });

  it('--checkpoint-sync past 24.8 days is refused (setInterval would fire every 1 ms)', async () => {
    // The store error comes after the --checkpoint-sync check: reaching it means 3000000 s passed.
    await expect(
      agent({ pool: 'default', dataDir: tempDir('data'), checkpointSync: '3000000', store: 'ftp://x' }),
    ).rejects.toThrow(/--checkpoint-sync/);
  });

  it("the pool's setStore takes only what an agent can open (the CLI refuses a query)", () => {
    // An update sent by a client directly, bypassing the CLI: the pool records it and every agent
    // then runs without a store ("cannot be used here"), while the client got no error.
    expect(() => checkStore({ url: 'file:///srv/store?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=abc' })).toThrow();
    expect(() => checkStore({ url: 's3://bucket/prefix?versionId=1' })).toThrow();
  });
});
