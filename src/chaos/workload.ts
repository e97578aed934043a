/**
 * The workload of every chaos step: a small Node script that records its run in a file of its own
 * (step, node, GPUs, lease, start), ticks into it every 100 ms while it works, and writes `end`
 * when done. A run killed with its agent stops ticking: its last tick bounds when it last ran.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** Milliseconds between ticks of a running workload. */
export const TICK_MS = 100;

const SCRIPT = `
const fs = require('node:fs');
const path = require('node:path');
const [runsDir, durationMs] = process.argv.slice(2);
const env = process.env;
const safe = (s) => String(s).replace(/[^A-Za-z0-9._-]/g, '_');
const dir = path.join(runsDir, safe(env.ALLOT_STEP_ID));
fs.mkdirSync(dir, { recursive: true });
const file = path.join(dir, 'attempt-' + env.ALLOT_ATTEMPT + '-' + safe(env.ALLOT_LEASE_ID) + '-' + process.pid + '.log');
const start = Date.now();
fs.writeFileSync(file, JSON.stringify({
  step: env.ALLOT_STEP_ID, node: env.ALLOT_NODE_ID, gpus: env.CUDA_VISIBLE_DEVICES,
  fraction: env.ALLOT_GPU_FRACTION ? Number(env.ALLOT_GPU_FRACTION) : undefined,
  lease: env.ALLOT_LEASE_ID, attempt: Number(env.ALLOT_ATTEMPT), pid: process.pid, start,
}) + '\\n');
const tick = setInterval(() => fs.appendFileSync(file, 't ' + Date.now() + '\\n'), ${TICK_MS});
setTimeout(() => {
  clearInterval(tick);
  fs.appendFileSync(file, 'end ' + Date.now() + '\\n');
}, Number(durationMs));
`;

/** Writes the workload script into `dir`; returns its path. */
export function writeWorkload(dir: string): string {
  const file = path.join(dir, 'chaos-workload.js');
  writeFileSync(file, SCRIPT);
  return file;
}
