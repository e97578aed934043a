/**
 * Unmet demand and node templates, for `allot status`.
 */
import type { CapacityReport } from '../workflows/messages';
import { formatDuration, table } from './format';

export { fetchCapacity } from '../workers/pool-client';

/** Demand and templates as text; empty when there is neither. */
export function renderCapacity(c: CapacityReport | undefined): string {
  if (!c || (c.demand.length === 0 && c.templates.length === 0)) return '';
  const out: string[] = [''];
  if (c.demand.length === 0) out.push('demand: none waiting for resources');
  else {
    out.push('demand (queued work waiting for resources, by the node that would serve it):');
    out.push(
      table(
        ['NODE SHAPE', 'TEMPLATE', 'REQUESTS', 'GPUS', 'OLDEST WAIT'],
        c.demand.map((d) => [
          d.shape,
          d.template ?? '-',
          String(d.requests),
          String(d.gpus),
          formatDuration(d.oldestWaitMs),
        ]),
      ),
    );
  }
  if (c.templates.length > 0) {
    out.push('');
    out.push(
      table(
        ['TEMPLATE', 'SHAPE', 'NODES', 'PENDING', 'MAX'],
        c.templates.map((t) => [
          t.name,
          t.shape,
          t.nodes.length === 0 ? '0' : `${t.nodes.length} (${t.nodes.join(', ')})`,
          String(t.pending),
          String(t.max),
        ]),
      ),
    );
  }
  return out.join('\n');
}
