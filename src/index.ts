/**
 * `allot`: the Node-side API, the same as `allot/client`. Pipeline workflows import
 * `allot/workflow` instead.
 *
 * ```ts
 * import { connect, startPipeline } from 'allot';
 *
 * const client = await connect();
 * await (await startPipeline(client, 'trainPipeline')).result();
 * ```
 */
export * from './client';
