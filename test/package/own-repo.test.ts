/**
 * allot as a user gets it: `npm pack` of this checkout, installed into a fresh project, whose own
 * pipeline module imports `allot/workflow`; then `npx allot setup`, `npx allot dev` and
 * `npx allot run` there, and `allot/client` from a script of that project.
 *
 * Needs the compiled `dist/` (`npm test` builds it) and the npm registry (for allot's
 * dependencies; the local npm cache is preferred). The long parts report their progress on stderr.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findTemporalCli } from '../../src/workers/temporal-cli';
import { freePort, REPO_ROOT } from '../helpers/cli';
import { tempDir } from '../helpers/temp';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';

/** This test's progress, for the person watching CI. */
function progress(line: string): void {
  process.stderr.write(`[own-repo] ${line}\n`);
}

/**
 * The environment of a command in the user's project: none of the `npm_*` variables of the
 * `npm test` this runs under (they would point the nested npm at this repository's settings).
 */
function projectEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

interface Done {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; its stderr lines are shown as they come, prefixed with `label`. */
function runCommand(
  label: string,
  command: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  /** Instead of each stderr line, a count of them every 10 s (npm's fetch log). */
  quiet = false,
): Promise<Done> {
  progress(`$ ${[command, ...args].join(' ')}  (in ${path.basename(cwd)})`);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let lines = 0;
    const ticker = quiet
      ? setInterval(
          () => progress(`${label}: ${((Date.now() - started) / 1000).toFixed(0)} s, ${lines} log lines so far`),
          10_000,
        )
      : undefined;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      for (const line of d.toString().split('\n')) {
        if (!line.trim()) continue;
        lines += 1;
        if (!quiet) process.stderr.write(`  [${label}] ${line}\n`);
      }
    });
    child.on('close', () => clearInterval(ticker));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${label} timed out after ${timeoutMs / 1000} s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      progress(`${label}: exit ${code} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      resolve({ code, stdout, stderr });
    });
  });
}

const PIPELINE = `import { step } from 'allot/workflow';

/** One small step; returns what it printed. */
export async function helloPipeline(): Promise<string[]> {
  const r = await step({ name: 'hello', command: ['sh', '-c', 'echo hello from my pipeline'], resources: { cpu: 1 } });
  return r.logTail;
}
`;

const CLIENT_SCRIPT = `const { connect, poolStatus } = require('allot/client');
(async () => {
  const client = await connect();
  const status = await poolStatus(client);
  process.stdout.write(JSON.stringify({ nodes: status.nodes.map((n) => n.id) }) + '\\n');
  await client.connection.close();
})().catch((err) => { console.error(err); process.exit(1); });
`;

let project: string;
let dev: ChildProcess | undefined;
let devOutput = '';
let devClosed: Promise<void> | undefined;
let devPort: number;
let address: string;

beforeAll(async () => {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'cli', 'main.js')))
    throw new Error('dist/ is missing: run `npm run build` first (`npm test` does)');
  const packDir = tempDir('own-repo-pack');
  project = tempDir('own-repo-project');

  // dist/ is already built; the prepack build would rewrite it under the other test files' feet.
  const pack = await runCommand(
    'npm pack',
    NPM,
    ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir],
    REPO_ROOT,
    projectEnv(),
    60_000,
  );
  expect(pack.code, pack.stderr).toBe(0);
  const [packed] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  if (!packed) throw new Error(`npm pack printed no package: ${pack.stdout}`);
  const tarball = path.join(packDir, path.basename(packed.filename));
  const files = packed.files.map((f) => f.path);
  progress(`packed ${path.basename(tarball)}: ${files.length} files`);
  expect(files).toEqual(
    expect.arrayContaining([
      'package.json',
      'bin/allot.js',
      'dist/cli/main.js',
      'dist/workflow.js',
      'dist/workflow.d.ts',
      'dist/client.js',
      'dist/index.js',
      'requirements.txt',
      'LICENSE',
    ]),
  );
  expect(files.filter((f) => /^(src|test|bench|scripts|examples|docs)\/|\.map$|^dist\/chaos\//.test(f))).toEqual([]);

  const init = await runCommand('npm init', NPM, ['init', '-y'], project, projectEnv(), 60_000);
  expect(init.code, init.stderr).toBe(0);
  const install = await runCommand(
    'npm install',
    NPM,
    ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel', 'http'],
    project,
    projectEnv(),
    180_000,
    true,
  );
  expect(install.code, install.stderr.slice(-4_000)).toBe(0);
  progress(
    `npm install: ${(install.stderr.match(/\(cache hit\)/g) ?? []).length} packages from the npm cache, ${(install.stderr.match(/\(cache miss\)/g) ?? []).length} fetched`,
  );
  mkdirSync(path.join(project, 'pipelines'));
  writeFileSync(path.join(project, 'pipelines', 'index.ts'), PIPELINE);
  writeFileSync(path.join(project, 'pool.js'), CLIENT_SCRIPT);
}, 300_000);

/** True when nothing listens on the port (any more). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Signals the process group of `allot dev`, as Ctrl-C in a terminal does. */
function signalDev(signal: NodeJS.Signals): void {
  if (dev?.pid !== undefined) process.kill(-dev.pid, signal);
}

afterAll(async () => {
  // Whatever of the group still runs (after a failed test): allot, its Temporal server, workloads.
  try {
    signalDev('SIGKILL');
  } catch {
    return; // the group is gone
  }
  await devClosed;
});

/** The Temporal CLI this checkout uses, handed to the project's `allot setup` to find (no download in CI). */
function reusedCli(): NodeJS.ProcessEnv {
  const cli = findTemporalCli();
  return cli.path ? { ALLOT_TEMPORAL_CLI: cli.path } : {};
}

describe('allot installed from its own npm pack into a fresh project', () => {
  it('`npx allot setup` finds the Temporal CLI and says which', async () => {
    const r = await runCommand(
      'allot setup',
      NPX,
      ['--no-install', 'allot', 'setup'],
      project,
      projectEnv(reusedCli()),
      300_000,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/\[1\/\d\] looking for the Temporal CLI: /);
    expect(r.stderr).toMatch(/checking it: temporal version \S+/);
    expect(r.stderr).toMatch(/ready; next: npx allot dev --workflows/);
  });

  it("`npx allot dev --workflows ./pipelines` bundles the project's pipeline and comes up", async () => {
    const [port, uiPort] = [await freePort(), await freePort()];
    address = `127.0.0.1:${port}`;
    devPort = port;
    const args = [
      '--no-install',
      'allot',
      'dev',
      '--workflows',
      './pipelines',
      '--data-dir',
      path.join(project, '.allot', 'dev'),
    ];
    args.push('--port', String(port), '--ui-port', String(uiPort), '--gpus', '0', '--cpu', '2', '--memory', '2Gi');
    progress(`$ npx ${args.join(' ')}`);
    // A process group of its own, like a terminal's foreground job: Ctrl-C signals the whole group
    // (npx, the shell npm runs the binary through, allot); npm does not pass a signal of its own on.
    const child = spawn(NPX, args, {
      cwd: project,
      env: projectEnv(reusedCli()),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    dev = child;
    // Closed once every process that holds its output has ended: allot and its Temporal server too.
    devClosed = new Promise((resolve) => child.once('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`allot dev not up in 120 s:\n${devOutput}`)), 120_000);
      const onData = (d: Buffer): void => {
        devOutput += d.toString();
        for (const line of d.toString().split('\n')) if (line.trim()) process.stderr.write(`  [allot dev] ${line}\n`);
        if (/allot dev is up/.test(devOutput)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`allot dev exited with ${code}:\n${devOutput}`));
      });
    });
    expect(devOutput).toMatch(/\[1\/4\] starting the Temporal dev server: Temporal CLI from ALLOT_TEMPORAL_CLI/);
    expect(devOutput).toMatch(/\[2\/4\] bundling workflows \(pipelines\)/);
  }, 150_000);

  it('`npx allot run helloPipeline` runs the step and prints its output', async () => {
    const r = await runCommand(
      'allot run',
      NPX,
      ['--no-install', 'allot', 'run', 'helloPipeline'],
      project,
      projectEnv({ TEMPORAL_ADDRESS: address }),
      120_000,
    );
    expect(r.code, `${r.stderr}\n--- allot dev ---\n${devOutput}`).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(['hello from my pipeline']);
  });

  it('`allot/client` reads the pool from a script of the project', async () => {
    const r = await runCommand(
      'node pool.js',
      process.execPath,
      ['pool.js'],
      project,
      projectEnv({ TEMPORAL_ADDRESS: address }),
      60_000,
    );
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { nodes: string[] }).nodes).toHaveLength(1);
  });

  it('Ctrl-C (SIGINT to its process group) stops `allot dev` and its Temporal server cleanly', async () => {
    if (!dev || !devClosed) throw new Error('allot dev did not start');
    signalDev('SIGINT');
    // npm itself dies of the SIGINT at once (as in a terminal); allot stops in order after it.
    await devClosed;
    expect(devOutput).toMatch(/stopping \(SIGINT\)…\n(.*\n)*stopped\n$/);
    expect(devOutput).not.toMatch(/unexpected error|\[error\]/);
    expect(await portFree(devPort)).toBe(true);
  });
});
