/**
 * Runs the real `allot` binary as a user would.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';

/** The `allot` binary of this checkout. */
export const ALLOT_BIN = path.resolve(__dirname, '../../bin/allot.js');
/** The repository root (the working directory of CLI runs). */
export const REPO_ROOT = path.resolve(__dirname, '../..');

/** What a finished command printed and returned. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `allot ARGS` to completion. */
export function allot(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ALLOT_BIN, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`allot ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts a long-running `allot ARGS` and resolves once its output contains `ready`. */
export function startAllot(
  args: string[],
  ready: RegExp,
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 120_000,
): Promise<{ child: ChildProcess; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ALLOT_BIN, ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`allot ${args.join(' ')} not ready in time:\n${out}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, output: () => out });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`allot ${args.join(' ')} exited with ${code}:\n${out}`));
    });
  });
}

/** A running `allot dev`, and the environment that points `allot` commands at it. */
export interface DevRun {
  dev: { child: ChildProcess; output: () => string };
  env: NodeJS.ProcessEnv;
}

/**
 * Starts `allot dev FLAGS` on free ports, its data under `work/dev` and its node named `local`, and
 * resolves once it is up.
 */
export async function startDev(work: string, flags: string[]): Promise<DevRun> {
  const [port, uiPort] = [await freePort(), await freePort()];
  const location = ['--data-dir', path.join(work, 'dev'), '--port', String(port), '--ui-port', String(uiPort)];
  const dev = await startAllot(['dev', ...flags, ...location, '--node-id', 'local'], /allot dev is up/);
  return { dev, env: { TEMPORAL_ADDRESS: `127.0.0.1:${port}` } };
}

/** Stops a long-running `allot` (SIGTERM) and waits until it has exited. */
export async function stopAllot(run: { child: ChildProcess } | undefined): Promise<void> {
  if (!run || run.child.exitCode !== null) return;
  const exited = new Promise((r) => run.child.once('exit', r));
  run.child.kill('SIGTERM');
  await exited;
}

/** A free TCP port on localhost. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
