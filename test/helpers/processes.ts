/**
 * Real processes for crash tests: a Temporal dev server on a database file (restartable after
 * kill -9), and allot's worker and agent as separate processes.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { findTemporalCli } from '../../src/workers/temporal-cli';
import { SEARCH_ATTRIBUTE_LIST } from '../../src/workflows/search-attributes';
import { freePort, startAllot } from './cli';

/** A process and a way to wait for its end. */
export interface Proc {
  child: ChildProcess;
  /** Sends SIGKILL and waits until it is gone. */
  kill9(): Promise<void>;
  /** Sends SIGTERM and waits until it is gone. */
  stop(): Promise<void>;
}

function wrap(child: ChildProcess): Proc {
  const gone = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    child,
    async kill9() {
      child.kill('SIGKILL');
      await gone;
    },
    async stop() {
      child.kill('SIGTERM');
      await gone;
    },
  };
}

/** The dev server exited before it answered (for one, a port it needs was taken meanwhile). */
class DevServerExited extends Error {}

/**
 * Starts a dev server on a free port. Test files run side by side, and a port free when chosen
 * can be taken before the server binds it (it binds more than the one given): then it tries
 * another.
 */
export async function startDevServerOnFreePort(dbFile: string): Promise<{ server: Proc; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return { server: await startDevServer(dbFile, port), port };
    } catch (err) {
      if (!(err instanceof DevServerExited) || attempt >= 3) throw err;
    }
  }
}

/** Starts `temporal server start-dev` on a database file; resolves once it answers. */
export async function startDevServer(dbFile: string, port: number): Promise<Proc> {
  const cli = findTemporalCli().path;
  if (!cli) throw new Error('no Temporal CLI: run `npm run setup`');
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    dbFile,
    '--port',
    String(port),
    '--headless',
    '--log-level',
    'error',
  ];
  for (const a of SEARCH_ATTRIBUTE_LIST)
    args.push('--search-attribute', `${a.name}=${a.type === 'INT' ? 'Int' : 'Keyword'}`);
  const child = spawn(cli, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  // Its last words, should it exit before answering.
  let errors = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    errors = (errors + chunk.toString('utf8')).slice(-2_000);
  });
  const proc = wrap(child);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const probe = spawn(cli, ['operator', 'cluster', 'health', '--address', `127.0.0.1:${port}`], {
        stdio: 'ignore',
      });
      probe.once('exit', (code) => resolve(code === 0));
    });
    if (ok) return proc;
    if (child.exitCode !== null)
      throw new DevServerExited(`temporal server exited with ${child.exitCode}: ${errors.trim() || '(no output)'}`);
    if (Date.now() > deadline) throw new Error('temporal server did not become healthy');
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Starts `allot worker` (with the test pipelines) against an address. */
export async function startWorkerProcess(address: string, workflows: string[]): Promise<Proc> {
  const args = ['worker', ...workflows.flatMap((w) => ['--workflows', w])];
  const { child } = await startAllot(args, /control worker polling/, { TEMPORAL_ADDRESS: address }, 120_000);
  return wrap(child);
}

/** Starts `allot agent` against an address. */
export async function startAgentProcess(address: string, nodeId: string, dataDir: string, gpus = 4): Promise<Proc> {
  const { child } = await startAllot(
    ['agent', '--node-id', nodeId, '--gpus', String(gpus), '--cpu', '8', '--memory', '16Gi', '--data-dir', dataDir],
    /registered with pool/,
    { TEMPORAL_ADDRESS: address },
    60_000,
  );
  return wrap(child);
}

/** Whether a process with this pid is alive (or a zombie not yet reaped). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
