/**
 * A step's artifacts on the node: outputs uploaded as references with their size and sha256,
 * inputs downloaded into the work dir and checked, a tampered or missing input refused by name.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ArtifactError, outputPaths, stageInputs, uploadOutputs } from '../../src/activities/artifacts';
import { openStore } from '../../src/store';
import { tempDir } from '../helpers/temp';

const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

function setup() {
  const store = openStore(`file://${tempDir('artifact-store')}`);
  const producer = tempDir('producer-work');
  const consumer = tempDir('consumer-work');
  return { store, producer, consumer };
}

describe('artifacts', () => {
  it('uploads a file and a folder as references, and a later step gets them back, checked', async () => {
    const { store, producer, consumer } = setup();
    const env = outputPaths({ model: 'out/model.npz', plots: 'plots' }, producer);
    expect(env).toEqual({
      ALLOT_OUTPUT_MODEL: path.join(producer, 'out', 'model.npz'),
      ALLOT_OUTPUT_PLOTS: path.join(producer, 'plots'),
    });
    writeFileSync(env.ALLOT_OUTPUT_MODEL as string, 'weights');
    mkdirSync(path.join(producer, 'plots', 'loss'), { recursive: true });
    writeFileSync(path.join(producer, 'plots', 'a.png'), 'png-a');
    writeFileSync(path.join(producer, 'plots', 'loss', 'b.png'), 'png-bb');
    const lines: string[] = [];
    const refs = await uploadOutputs({
      store,
      stepId: 'pipe-1/train',
      attempt: 1,
      outputs: { model: 'out/model.npz', plots: 'plots' },
      workDir: producer,
      log: (l) => lines.push(l),
    });
    expect(refs.model).toEqual({
      uri: store.uri('artifacts/pipe-1/train/1/model/model.npz'),
      size: 7,
      sha256: sha('weights'),
    });
    expect(refs.plots).toMatchObject({ kind: 'directory', size: 11, files: 2 });
    expect(lines.join('\n')).toContain('output model:');

    const got = await stageInputs({ store, inputs: refs, workDir: consumer, log: () => undefined });
    expect(readFileSync(got.ALLOT_INPUT_MODEL as string, 'utf8')).toBe('weights');
    expect(path.basename(got.ALLOT_INPUT_MODEL as string)).toBe('model.npz');
    expect(readFileSync(path.join(got.ALLOT_INPUT_PLOTS as string, 'loss', 'b.png'), 'utf8')).toBe('png-bb');
  });

  it('reads an input from a store given only by its URI (no store of its own)', async () => {
    const { store, producer, consumer } = setup();
    writeFileSync(path.join(producer, 'data.npz'), 'rows');
    const refs = await uploadOutputs({
      store,
      stepId: 'pipe-1/prepare',
      attempt: 1,
      outputs: { data: 'data.npz' },
      workDir: producer,
      log: () => undefined,
    });
    const got = await stageInputs({ store: undefined, inputs: refs, workDir: consumer, log: () => undefined });
    expect(readFileSync(got.ALLOT_INPUT_DATA as string, 'utf8')).toBe('rows');
  });

  it('refuses an input whose sha256 does not match, naming it', async () => {
    const { store, producer, consumer } = setup();
    writeFileSync(path.join(producer, 'model.npz'), 'weights');
    const refs = await uploadOutputs({
      store,
      stepId: 'pipe-1/train',
      attempt: 1,
      outputs: { model: 'model.npz' },
      workDir: producer,
      log: () => undefined,
    });
    const wrong = { ...refs.model, sha256: 'f'.repeat(64) } as NonNullable<typeof refs.model>;
    const staged = stageInputs({ store, inputs: { model: wrong }, workDir: consumer, log: () => undefined });
    await expect(staged).rejects.toThrow(ArtifactError);
    await expect(staged).rejects.toThrow(
      `input model (${wrong.uri}) has changed since it was made: its sha256 is ${sha('weights')}, the step was given ${'f'.repeat(64)}`,
    );
  });

  it('refuses an input that is not in the store, and an output the workload did not leave', async () => {
    const { store, producer, consumer } = setup();
    const missing = { uri: store.uri('artifacts/gone/model.npz'), size: 1, sha256: 'a'.repeat(64) };
    await expect(
      stageInputs({ store, inputs: { model: missing }, workDir: consumer, log: () => undefined }),
    ).rejects.toThrow(`input model (${missing.uri}) is not in the store`);
    await expect(
      uploadOutputs({
        store,
        stepId: 'p/s',
        attempt: 1,
        outputs: { report: 'out/report.json' },
        workDir: producer,
        log: () => undefined,
      }),
    ).rejects.toThrow('output report: the workload left nothing at out/report.json');
  });
});
