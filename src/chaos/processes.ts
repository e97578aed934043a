/**
 * The processes a chaos run kills and restarts: the Temporal dev server (its database on disk, so
 * it comes back with everything), `allot worker` and `allot agent`, each a real process with its
 * output in a log file.
 */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { findTemporalCli } from '../workers/temporal-cli';
import { SEARCH_ATTRIBUTE_LIST } from '../workflows/search-attributes';

/** The `allot` binary of this checkout (built by `npm run build`). */
export const ALLOT_BIN = path.resolve(__dirname, '..', '..', 'bin', 'allot.js');

/** Every process a run started and that still runs: killed if the run itself ends early. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** How to start one process, and how to know it is ready. */
export interface ProcessSpec {
  /** Name in reports, e.g. `agent chaos-n1`. */
  name: string;
  kind: 'server' | 'worker' | 'agent';
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Resolves once the process serves; rejects if it cannot. */
  ready: (output: () => string, child: ChildProcess) => Promise<void>;
  logFile: string;
}

/** A process the run manages: started, killed with -9, started again. */
export class ManagedProcess {
  private child: ChildProcess | undefined;
  private planned = false;
  private output = '';
  /** Exits the run did not cause, with their exit code or signal. */
  readonly unplannedExits: string[] = [];

  constructor(readonly spec: ProcessSpec) {}

  get name(): string {
    return this.spec.name;
  }

  /** Whether the process runs now. */
  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and waits until it is ready. */
  async start(timeoutMs = 180_000): Promise<void> {
    this.planned = false;
    this.output = '';
    const log = createWriteStream(this.spec.logFile, { flags: 'a' });
    log.write(`\n=== start ${new Date().toISOString()}\n`);
    const child = spawn(this.spec.command, this.spec.args, { env: this.spec.env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    running.add(child);
    const collect = (d: Buffer): void => {
      log.write(d);
      this.output = (this.output + d.toString()).slice(-20_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.once('exit', (code, signal) => {
      running.delete(child);
      log.end(`=== exit ${code ?? signal ?? ''}\n`);
      if (!this.planned) this.unplannedExits.push(`${this.name} exited with ${code ?? signal} on its own`);
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.spec.ready(() => this.output, child),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${this.name} not ready in ${timeoutMs} ms`)), timeoutMs);
        }),
        new Promise<never>((_, reject) =>
          child.once('exit', (code) =>
            reject(new Error(`${this.name} exited with ${code} while starting:\n${this.output.slice(-2000)}`)),
          ),
        ),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends SIGKILL and waits until the process is gone. */
  kill9(): Promise<void> {
    return this.signal('SIGKILL');
  }

  /** Sends SIGTERM, then SIGKILL after `graceMs`, and waits until the process is gone. */
  async stop(graceMs = 10_000): Promise<void> {
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    await this.signal('SIGTERM');
    clearTimeout(timer);
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    this.planned = true;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await gone;
  }
}

/** Resolves once the output matches `pattern`. */
function outputMatches(pattern: RegExp): ProcessSpec['ready'] {
  return async (output) => {
    while (!pattern.test(output())) await new Promise((r) => setTimeout(r, 100));
  };
}

/** `temporal server start-dev` on a database file, with allot's search attributes. */
export function devServerSpec(dbFile: string, port: number, logFile: string): ProcessSpec {
  const cli = findTemporalCli().path;
  if (!cli) throw new Error('no Temporal CLI: run `npm run setup`');
  const args = ['server', 'start-dev', '--db-filename', dbFile, '--port', String(port), '--headless'];
  args.push('--log-level', 'error');
  for (const a of SEARCH_ATTRIBUTE_LIST)
    args.push('--search-attribute', `${a.name}=${a.type === 'INT' ? 'Int' : 'Keyword'}`);
  return {
    name: 'temporal server',
    kind: 'server',
    command: cli,
    args,
    env: process.env,
    logFile,
    ready: async () => {
      for (;;) {
        const healthy = await new Promise<boolean>((resolve) => {
          const probe = spawn(cli, ['operator', 'cluster', 'health', '--address', `127.0.0.1:${port}`], {
            stdio: 'ignore',
          });
          probe.once('exit', (code) => resolve(code === 0));
        });
        if (healthy) return;
        await new Promise((r) => setTimeout(r, 300));
      }
    },
  };
}

/** `allot worker` with the chaos pipeline. */
export function workerSpec(env: NodeJS.ProcessEnv, logFile: string): ProcessSpec {
  return {
    name: 'control worker',
    kind: 'worker',
    command: process.execPath,
    args: [ALLOT_BIN, 'worker', '--workflows', path.join(__dirname, 'pipelines.ts')],
    env,
    logFile,
    ready: outputMatches(/control worker polling/),
  };
}

/** `allot agent` for one node with a static inventory. */
export function agentSpec(
  nodeId: string,
  gpus: number,
  dataDir: string,
  env: NodeJS.ProcessEnv,
  logFile: string,
): ProcessSpec {
  return {
    name: `agent ${nodeId}`,
    kind: 'agent',
    command: process.execPath,
    args: [
      ALLOT_BIN,
      'agent',
      '--node-id',
      nodeId,
      '--gpus',
      String(gpus),
      '--gpu-model',
      'A100',
      '--gpu-memory',
      '80Gi',
      '--cpu',
      '4',
      '--memory',
      '8Gi',
      '--data-dir',
      dataDir,
      '--drain-timeout',
      '1',
    ],
    env,
    logFile,
    ready: outputMatches(/registered with pool/),
  };
}
