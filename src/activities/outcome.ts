/**
 * What a launch's ended workload means: the step's result, or the failure the agent raises for it
 * (a limit, a cancellation, a handback, fencing), each with {@link LaunchFailureDetails}.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import type { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { formatMemory } from '../core';
import { LaunchFailure } from '../workflows/failures';
import type { LaunchInput, LaunchResult } from '../workflows/step-types';
import type { StepUsage } from '../workflows/usage-types';
import type { AgentContext, LaunchOutcome, Stopped } from './context';
import { LOG_TAIL_LINES, tail } from './log-tail';
import type { WorkloadMonitor } from './monitor';

const MiB = 1024 * 1024;

/** Details of the failures the launch raises for a workload it ran. */
export interface LaunchFailureDetails {
  exitCode: number | null;
  signal: string | null;
  runningMs: number;
  logFile: string;
  logTail: string[];
  usage?: StepUsage;
  /** For `MemoryLimitExceeded`: the highest memory seen and the limit, MiB. */
  peakMiB?: number;
  limitMiB?: number;
  /** For `TimeLimitExceeded`: the limit, ms. */
  timeLimitMs?: number;
}

/** How a workload ended, as the launch saw it. */
export interface EndedWorkload {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why the agent stopped it itself, if it did. */
  stopped?: Stopped;
  monitor?: WorkloadMonitor;
  runningMs: number;
  /** The kernel killed it in its cgroup for memory. */
  oomKilled: boolean;
  /** How its memory limit was enforced. */
  enforcement: 'none' | 'cgroup' | 'polling';
  paths: { log: string; output: string };
}

/**
 * The step's result for a workload that ended on its own, or the failure the agent raises for
 * one it stopped (memory, time, handback, fencing) or whose activity was cancelled. It tells the
 * agent (`ctx.onEnded`) how the launch ended.
 */
export function workloadOutcome(
  ctx: AgentContext,
  input: LaunchInput,
  activity: Context,
  exit: EndedWorkload,
): LaunchResult {
  const { runningMs, oomKilled, enforcement, paths } = exit;
  const limitBytes = input.memoryLimitMiB !== undefined ? input.memoryLimitMiB * MiB : undefined;
  const usage: StepUsage | undefined = exit.monitor
    ? {
        ...exit.monitor.usage(),
        ...(input.requested ? { requested: input.requested } : {}),
        memoryEnforcement: enforcement,
      }
    : undefined;
  const report = (outcome: LaunchOutcome): void => ctx.onEnded?.(input, outcome, usage);
  const details = (extra: Partial<LaunchFailureDetails> = {}): LaunchFailureDetails => ({
    exitCode: exit.code,
    signal: exit.signal,
    runningMs,
    logFile: paths.log,
    logTail: tail(paths.log, LOG_TAIL_LINES),
    ...(usage ? { usage } : {}),
    ...extra,
  });

  if (exit.stopped?.why === 'memory' || oomKilled) {
    const peakBytes = Math.max(
      exit.stopped?.why === 'memory' ? exit.stopped.peakBytes : 0,
      exit.monitor?.peakMemoryBytes ?? 0,
      limitBytes !== undefined && oomKilled ? limitBytes : 0,
    );
    const peakMiB = Math.round(peakBytes / MiB);
    const limitMiB = input.memoryLimitMiB ?? 0;
    const used =
      peakMiB > limitMiB
        ? `used ${formatMemory(peakMiB)} of memory (peak), over its limit of ${formatMemory(limitMiB)}`
        : `reached its memory limit of ${formatMemory(limitMiB)} (peak ${formatMemory(peakMiB)})`;
    const message = `step ${input.name} ${used} and was killed; ask for more with resources.memory or memoryLimit (--memory / --memory-limit)`;
    appendFileSync(paths.log, `allot: ${message}\n`);
    report('memory_limit');
    throw ApplicationFailure.create({
      message,
      type: LaunchFailure.MemoryLimitExceeded,
      nonRetryable: true,
      details: [details({ peakMiB, limitMiB })],
    });
  }
  if (activity.cancellationSignal.aborted) {
    report('cancelled');
    const reason: unknown = activity.cancellationSignal.reason;
    // The details (log file, tail, usage) go into the history with the cancellation.
    if (reason instanceof CancelledFailure) throw new CancelledFailure(reason.message, [details()]);
    if (reason instanceof ApplicationFailure) {
      throw ApplicationFailure.create({
        message: reason.message,
        type: reason.type ?? undefined,
        nonRetryable: reason.nonRetryable ?? undefined,
        details: [details()],
      });
    }
    throw reason instanceof Error ? reason : ApplicationFailure.create({ message: 'cancelled', type: 'Cancelled' });
  }
  if (exit.stopped?.why === 'time') {
    const message = `step ${input.name} ran past its time limit of ${formatLimit(input.timeLimitMs ?? 0)} and was stopped`;
    appendFileSync(paths.log, `allot: ${message}\n`);
    report('time_limit');
    throw ApplicationFailure.create({
      message,
      type: LaunchFailure.TimeLimitExceeded,
      nonRetryable: true,
      details: [details({ timeLimitMs: input.timeLimitMs })],
    });
  }
  if (exit.stopped?.why === 'handback') {
    const message = `node ${ctx.nodeId} is stopping; step ${input.name} was stopped and handed back to be run again`;
    appendFileSync(paths.log, `allot: ${message}\n`);
    report('handed_back');
    throw ApplicationFailure.create({
      message,
      type: LaunchFailure.NodeDraining,
      nonRetryable: true,
      details: [details()],
    });
  }
  if (exit.stopped?.why === 'fenced' || exit.stopped?.why === 'not-held') {
    const fenced = exit.stopped.why === 'fenced';
    const message = fenced
      ? `node ${ctx.nodeId} could not reach Temporal; it stopped step ${input.name} so that it can run elsewhere`
      : `pool ${ctx.pool ?? input.pool} no longer holds lease ${input.leaseId}; node ${ctx.nodeId} stopped step ${input.name}`;
    appendFileSync(paths.log, `allot: ${message}\n`);
    report('handed_back');
    throw ApplicationFailure.create({
      message,
      type: fenced ? LaunchFailure.NodeFenced : LaunchFailure.LeaseNotHeld,
      nonRetryable: true,
      details: [details()],
    });
  }
  report(exit.code === 0 ? 'succeeded' : 'failed');
  return {
    exitCode: exit.code,
    signal: exit.signal,
    outputs: readOutputs(paths.output, paths.log),
    runningMs,
    logFile: paths.log,
    logTail: tail(paths.log, LOG_TAIL_LINES),
    ...(usage ? { usage } : {}),
  };
}

function formatLimit(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function readOutputs(file: string, logFile: string): Record<string, unknown> {
  if (!existsSync(file)) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
    return { value: parsed };
  } catch (err) {
    appendFileSync(logFile, `allot: ignored $ALLOT_OUTPUT, which is not valid JSON: ${(err as Error).message}\n`);
    return {};
  }
}
