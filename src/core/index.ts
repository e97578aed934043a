/**
 * The pure scheduling core of allot: no Node, no Temporal, no clock. `now` is always a parameter.
 *
 * ```ts
 * import { PoolState, emptyPoolState, parseResources } from './core';
 * const pool = new PoolState(emptyPoolState('default'));
 * pool.registerNode({ id: 'n1', cpuMilli: 8000, memoryMiB: 32768, gpus: [{ index: 0, model: 'A100', memoryMiB: 81920 }], labels: {} }, 0);
 * pool.acquire({ requestId: 'r1', owner: { kind: 'client', name: 'me' }, resources: parseResources({ gpu: 1 }).request! }, 0);
 * pool.schedule(0); // [{ kind: 'grant', lease: { nodeId: 'n1', gpus: [{ index: 0, ... }] } }]
 * ```
 */
export * from './errors';
export * from './quantity';
export * from './types';
export * from './resources';
export * from './ordering';
export * from './decide';
export * from './apply-decisions';
export * from './decisions';
export * from './health';
export * from './admin';
export * from './capacity';
export * from './template-input';
export * from './pool-data';
export * from './pool-state';
export { MAX_QUEUED } from './request-queue';
export { CARRIED_WAITS, RELEASED_MEMORY } from './request-memory';
export type { NodeReport, Registration } from './node-registry';
export { RESUME_MARGIN_MS } from './pool-health';
export type { TemplateNodes } from './pool-scaling';
export * from './pool-status';
export * from './validation';
export * from './priority';
export * from './cluster';
export * from './fit';
export * from './shape';
export * from './node-usage';
export * from './best-fit';
export * from './fragmentation';
export * from './placer';
export * from './quota';
export * from './fair-share';
export * from './usage-history';
export * from './preemption';
export * from './backfill';
export * from './policy';
export * from './reasons';
export * from './describe';
export * from './hash';
export * from './named-limits';
