#!/usr/bin/env node
// Builds the SeaweedFS server (Apache-2.0) that the S3 store's tests run against, once per machine.
// `go install` refuses the module (its go.mod has replace directives), so this downloads the module
// with `go mod download` and builds `./weed` in a writable copy of it. The binary is cached under
// the user's cache folder (ALLOT_CACHE_DIR, else XDG_CACHE_HOME/allot, else ~/.cache/allot), outside
// any checkout, so every clone on the machine shares one build.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const MODULE = 'github.com/seaweedfs/seaweedfs';
const VERSION = 'v0.0.0-20261109003541-7506e5f91cd6';

function cacheDir() {
  if (process.env.ALLOT_CACHE_DIR) return process.env.ALLOT_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'allot');
}

function seaweedBinary() {
  return path.join(cacheDir(), 'seaweedfs', VERSION, 'weed');
}

function hasGo() {
  const r = spawnSync('go', ['version'], { stdio: 'ignore' });
  return r.status === 0;
}

/** Builds the binary if it is not cached; returns its path, or throws with what went wrong. */
function installSeaweed(log = (line) => process.stdout.write(`${line}\n`)) {
  const binary = seaweedBinary();
  if (fs.existsSync(binary)) return binary;
  if (!hasGo()) throw new Error('the Go toolchain (`go`) is not on PATH; install Go 1.22 or newer to build SeaweedFS');
  log(`downloading ${MODULE}@${VERSION}`);
  const dl = spawnSync('go', ['mod', 'download', '-json', `${MODULE}@${VERSION}`], { encoding: 'utf8' });
  if (dl.status !== 0) throw new Error(`go mod download failed: ${(dl.stdout || '') + (dl.stderr || '')}`.trim());
  const dir = JSON.parse(dl.stdout).Dir;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'allot-seaweedfs-'));
  try {
    fs.cpSync(dir, work, { recursive: true });
    // The module cache is read-only; the copy must be writable for `go build` to use its go.mod.
    spawnSync('chmod', ['-R', 'u+w', work]);
    log('building weed (several minutes on two cores; once per machine)');
    fs.mkdirSync(path.dirname(binary), { recursive: true });
    const partial = `${binary}.partial`;
    const build = spawnSync('go', ['build', '-o', partial, './weed'], {
      cwd: work,
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, GOFLAGS: '-buildvcs=false' },
    });
    if (build.status !== 0) throw new Error(`go build ./weed failed with exit code ${build.status}`);
    fs.renameSync(partial, binary);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  return binary;
}

module.exports = { seaweedBinary, installSeaweed, SEAWEEDFS_VERSION: VERSION };

if (require.main === module) {
  try {
    const started = Date.now();
    const binary = installSeaweed();
    process.stdout.write(`SeaweedFS ready (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
    void binary;
  } catch (err) {
    process.stderr.write(`could not build SeaweedFS: ${err.message}\n`);
    process.exit(1);
  }
}
