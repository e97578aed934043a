/**
 * Prometheus metrics (`prom-client`) of the control worker and of node agents, served at
 * `GET /metrics`:
 *
 * ```ts
 * const registry = createRegistry();
 * const sinks = registerControlMetrics(registry, client, ['default']); // give to Worker.create
 * registerAgentMetrics(registry, { inventory, ledger, running, draining: () => false });
 * const server = await serveMetrics(registry, 9464);
 * ```
 *
 * - metrics/worker.ts: the control worker's pool gauges (`allot_pool_*`), one `status` and one
 *   `capacity` query per pool per scrape (metrics/pool-snapshot.ts);
 * - metrics/step-events.ts: its step metrics (`allot_step_*`), counted through a workflow sink;
 * - metrics/agent.ts: a node agent's metrics (`allot_node_*`);
 * - metrics/registry.ts: the registry and the `/metrics` endpoint.
 */
export type { AgentView } from './metrics/agent';
export { registerAgentMetrics, registerStoreMetrics } from './metrics/agent';
export type { MetricsServer } from './metrics/registry';
export { createRegistry, serveMetrics } from './metrics/registry';
export { WAIT_BUCKETS, noMetricsSinks } from './metrics/step-events';
export { registerControlMetrics } from './metrics/worker';
