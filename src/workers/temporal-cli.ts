/**
 * Finds the Temporal CLI (which contains the dev server): `TEMPORAL_CLI_PATH`, then the project's
 * `.venv/bin/temporal` (installed by `npm run setup`), then `temporal` on `PATH`; otherwise the
 * SDK downloads it (where the internet is reachable).
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** Where the Temporal CLI comes from. */
export type TemporalCliSource = 'TEMPORAL_CLI_PATH' | '.venv' | 'PATH' | 'download';

/** The root of the allot package (where package.json is). */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

/** Locates the Temporal CLI binary; `path` is absent when the SDK must download it. */
export function findTemporalCli(env: NodeJS.ProcessEnv = process.env): { path?: string; source: TemporalCliSource } {
  const fromEnv = env.TEMPORAL_CLI_PATH;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) {
      throw new Error(
        `TEMPORAL_CLI_PATH is ${JSON.stringify(fromEnv)}, which is not an executable file; unset it or point it at the temporal binary`,
      );
    }
    return { path: fromEnv, source: 'TEMPORAL_CLI_PATH' };
  }
  const venv = path.join(PACKAGE_ROOT, '.venv', 'bin', 'temporal');
  if (isExecutable(venv)) return { path: venv, source: '.venv' };
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'temporal');
    if (isExecutable(candidate)) return { path: candidate, source: 'PATH' };
  }
  return { source: 'download' };
}

/** A one-line description of the choice, for logs. */
export function describeTemporalCli(found: { path?: string; source: TemporalCliSource }): string {
  switch (found.source) {
    case 'TEMPORAL_CLI_PATH':
      return `Temporal CLI from TEMPORAL_CLI_PATH (${found.path ?? ''})`;
    case '.venv':
      return `Temporal CLI from the project's .venv (${found.path ?? ''})`;
    case 'PATH':
      return `Temporal CLI from PATH (${found.path ?? ''})`;
    case 'download':
      return 'no Temporal CLI found (TEMPORAL_CLI_PATH, .venv, PATH); the Temporal SDK will download one';
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
