/**
 * Scaler activities, run by the control worker when a pool scales. The work itself is the
 * user's: a command to run, or functions given to the control worker; `allot dev --autoscale`
 * ships a reference scaler that starts and stops local agent processes.
 */
import { spawn } from 'node:child_process';
import { ApplicationFailure } from '@temporalio/common';
import type { NodeTemplate } from '../core';

/** What a scale-up asks for. */
export interface ScaleUpInput {
  pool: string;
  template: NodeTemplate;
  count: number;
}

/** What a scale-down asks for: the node is already drained and idle. */
export interface ScaleDownInput {
  pool: string;
  template: string;
  nodeId: string;
}

/** A scaler: add `count` nodes of a template (their agents register themselves), or remove one. */
export interface Scaler {
  scaleUp(input: ScaleUpInput): Promise<void>;
  scaleDown(input: ScaleDownInput): Promise<void>;
}

/**
 * A scaler that runs a command: `CMD up <template> <count>` and `CMD down <template> <node>`, with
 * `ALLOT_POOL`, `ALLOT_TEMPLATE` (JSON) and `ALLOT_NODE_ID` in its environment. A non-zero exit
 * fails the action (the pool undoes it and tries again after its cooldown).
 */
export function commandScaler(command: string[]): Scaler {
  const run = (args: string[], env: Record<string, string>): Promise<void> =>
    new Promise((resolve, reject) => {
      const [file, ...rest] = command;
      if (!file) {
        reject(ApplicationFailure.nonRetryable('the scaler command is empty', 'NoScaler'));
        return;
      }
      const child = spawn(file, [...rest, ...args], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.once('error', (err) =>
        reject(ApplicationFailure.nonRetryable(`scaler command failed to start: ${err.message}`, 'ScalerFailed')),
      );
      child.once('exit', (code) =>
        code === 0
          ? resolve()
          : reject(ApplicationFailure.create({ message: `scaler command exited with ${code}`, type: 'ScalerFailed' })),
      );
    });
  return {
    scaleUp: ({ pool, template, count }) =>
      run(['up', template.name, String(count)], { ALLOT_POOL: pool, ALLOT_TEMPLATE: JSON.stringify(template) }),
    scaleDown: ({ pool, template, nodeId }) =>
      run(['down', template, nodeId], { ALLOT_POOL: pool, ALLOT_NODE_ID: nodeId }),
  };
}

/** Scaler activities for the control worker; without a scaler they fail with `NoScaler`. */
export function createScalerActivities(scaler?: Scaler) {
  const missing = (): never => {
    throw ApplicationFailure.nonRetryable(
      'the pool has node templates but the control worker has no scaler: start it with --scaler-command, or use allot dev --autoscale',
      'NoScaler',
    );
  };
  return {
    /** Adds nodes of a template. */
    async scaleUp(input: ScaleUpInput): Promise<void> {
      return scaler ? scaler.scaleUp(input) : missing();
    },
    /** Removes a drained, idle node. */
    async scaleDown(input: ScaleDownInput): Promise<void> {
      return scaler ? scaler.scaleDown(input) : missing();
    },
  };
}

/** The scaler activity interface, for `proxyActivities` in the pool workflow. */
export type ScalerActivities = ReturnType<typeof createScalerActivities>;
