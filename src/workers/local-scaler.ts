/**
 * The reference scaler of `allot dev --autoscale`: a "node" is a local `allot agent` process with
 * the template's static inventory. Scale-up starts agent processes (they register themselves);
 * scale-down stops one with SIGTERM (it is already drained and idle).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { TEMPLATE_LABEL } from '../core';
import type { Scaler } from '../activities/scaler';
import { PACKAGE_ROOT } from './temporal-cli';

/** Options of the local scaler. */
export interface LocalScalerOptions {
  /** Temporal address the agents connect to. */
  address: string;
  namespace: string;
  /** Root of the agents' data directories. */
  dataDir: string;
  /** Told when agents start and stop. */
  notice: (message: string) => void;
}

/** A scaler that runs agents as local processes, and stops them all on request. */
export function localAgentScaler(options: LocalScalerOptions): Scaler & { stopAll(): Promise<void> } {
  const agents = new Map<string, ChildProcess>();
  let counter = 0;
  const stop = (nodeId: string): Promise<void> =>
    new Promise((resolve) => {
      const child = agents.get(nodeId);
      if (!child || child.exitCode !== null) {
        agents.delete(nodeId);
        resolve();
        return;
      }
      const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
      child.once('exit', () => {
        clearTimeout(kill);
        agents.delete(nodeId);
        resolve();
      });
      child.kill('SIGTERM');
    });
  return {
    async scaleUp({ pool, template, count }) {
      const started: Promise<void>[] = [];
      for (let i = 0; i < count; i++) {
        const nodeId = `${template.name}-${Date.now().toString(36)}-${++counter}`;
        const gpu = template.spec.gpus[0];
        const args = [
          path.join(PACKAGE_ROOT, 'bin', 'allot.js'),
          'agent',
          '--pool',
          pool,
          '--node-id',
          nodeId,
          '--gpus',
          String(template.spec.gpus.length),
          '--cpu',
          `${template.spec.cpuMilli}m`,
          '--memory',
          `${template.spec.memoryMiB}Mi`,
          '--data-dir',
          options.dataDir,
          '--label',
          `${TEMPLATE_LABEL}=${template.name}`,
          ...Object.entries(template.spec.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
          ...(gpu ? ['--gpu-model', gpu.model, '--gpu-memory', `${gpu.memoryMiB}Mi`] : []),
        ];
        const child = spawn(process.execPath, args, {
          env: { ...process.env, TEMPORAL_ADDRESS: options.address, TEMPORAL_NAMESPACE: options.namespace },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        agents.set(nodeId, child);
        started.push(
          new Promise<void>((resolve, reject) => {
            let out = '';
            const timer = setTimeout(
              () =>
                reject(
                  ApplicationFailure.create({
                    message: `agent ${nodeId} did not register in 60 s`,
                    type: 'ScalerFailed',
                  }),
                ),
              60_000,
            );
            let registered = false;
            child.stderr?.on('data', (d: Buffer) => {
              out += d.toString();
              if (!registered && /registered with pool/.test(out)) {
                registered = true;
                clearTimeout(timer);
                options.notice(`[autoscale] started agent ${nodeId} (${template.name})`);
                resolve();
              }
            });
            child.once('exit', (code) => {
              clearTimeout(timer);
              agents.delete(nodeId);
              reject(
                ApplicationFailure.create({
                  message: `agent ${nodeId} exited with ${code}: ${out.trim().split('\n').pop() ?? ''}`,
                  type: 'ScalerFailed',
                }),
              );
            });
          }),
        );
      }
      await Promise.all(started);
    },
    async scaleDown({ nodeId }) {
      await stop(nodeId);
      options.notice(`[autoscale] stopped agent ${nodeId}`);
    },
    async stopAll() {
      await Promise.all([...agents.keys()].map(stop));
    },
  };
}
