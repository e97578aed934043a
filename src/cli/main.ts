/**
 * The `allot` command line: each command lives in `commands/<command>.ts`; this file puts them
 * in the order `allot --help` lists them and runs the one asked for.
 */
import { Command, CommanderError } from 'commander';
import { ValidationError } from '../core';
import { registerAgent } from './commands/agent';
import { registerCancel } from './commands/cancel';
import { registerCodecServer } from './commands/codec-server';
import { registerDev } from './commands/dev';
import { registerDrain } from './commands/drain';
import { registerLimit } from './commands/limit';
import { registerLogs } from './commands/logs';
import { registerPolicy } from './commands/policy';
import { registerQueue } from './commands/queue';
import { registerQuota } from './commands/quota';
import { registerRun } from './commands/run';
import { registerSchedule } from './commands/schedule';
import { registerSetup } from './commands/setup';
import { registerSimulate } from './commands/simulate';
import { registerStatus } from './commands/status';
import { registerSubmit } from './commands/submit';
import { registerTemplate } from './commands/template';
import { registerUsage } from './commands/usage';
import { registerWorker } from './commands/worker';
import { reportError } from './errors';
import type { Exit } from './options';

/** The commands, in the order `allot --help` lists them. */
const COMMANDS: readonly ((program: Command, exit: Exit) => void)[] = [
  registerSetup,
  registerDev,
  registerWorker,
  registerAgent,
  registerSubmit,
  registerRun,
  registerStatus,
  registerQueue,
  registerQuota,
  registerLimit,
  registerTemplate,
  registerPolicy,
  registerUsage,
  registerDrain,
  registerCancel,
  registerSchedule,
  registerLogs,
  registerSimulate,
  registerCodecServer,
];

/** Builds the command tree; `exit` receives the exit code of the command that ran. */
export function buildProgram(exit: Exit): Command {
  const program = new Command('allot')
    .description(
      'Durable GPU/CPU scheduling for ML pipeline steps, on Temporal.\nConnection: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS and profiles as the Temporal CLI reads them.',
    )
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .exitOverride();
  for (const register of COMMANDS) register(program, exit);
  return program;
}

/** Entry point of the `allot` binary. */
export function main(argv: string[]): void {
  let code: number | undefined;
  const program = buildProgram((c) => (code = c));
  program
    .parseAsync(argv)
    .then(() => {
      process.exitCode = code ?? 0;
      if (code !== undefined) setTimeout(() => process.exit(code), 100).unref();
    })
    .catch((err: unknown) => {
      if (err instanceof CommanderError) {
        process.exit(err.exitCode === 0 ? 0 : 2);
      }
      process.exit(reportError(err));
    });
}

export { ValidationError };
