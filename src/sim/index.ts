/**
 * The simulator of `allot simulate`: scenarios and public traces run through the very same
 * `decide()` as the pool.
 *
 * ```ts
 * import { parseScenario, simulate, computeMetrics } from './sim';
 * const scenario = parseScenario(JSON.parse(text));
 * const run = simulate(scenario);
 * computeMetrics(scenario, run).meanWait; // seconds
 * ```
 */
export * from './scenario';
export * from './engine';
export * from './metrics';
export * from './packing';
export * from './report';
export * from './html';
export * from './csv';
export * from './traces/alibaba';
export * from './traces/tiresias';
