/**
 * Accounting: each lease's team, pipeline, step, resources, start and end are recorded in the
 * step's memo, and `allot usage` sums them. The expected GPU-hours come from the step histories
 * (grant received → release sent), independently of the records.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchAccounting } from '../../src/cli/accounting';
import { usageReport } from '../../src/cli/usage-report';
import type { StepInput } from '../../src/workflows/step-types';
import type { World } from '../helpers/harness';
import { createWorld, eventually, gpus } from '../helpers/harness';

let world: World;

beforeAll(async () => {
  world = await createWorld('accounting');
  await world.addAgent({ gpus: gpus(4) });
});
afterAll(async () => world?.close());

/**
 * GPU-hours of a step from its history: from the grant (the pool's grant time, carried in the grant
 * signal) until the step releases: its release signal, or, when the agent gave the lease back as
 * the workload ended (`released` in the launch's result), the workflow task that took that result.
 */
async function gpuHoursFromHistory(workflowId: string, gpu: number): Promise<number> {
  const history = await world.client.workflow.getHandle(workflowId).fetchHistory();
  let granted: number | undefined;
  let releasedByAgent = false;
  let hours = 0;
  for (const e of history.events ?? []) {
    const at = Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
    const signaled = e.workflowExecutionSignaledEventAttributes;
    if (signaled?.signalName === 'grant') {
      const data = signaled.input?.payloads?.[0]?.data;
      granted = data ? (JSON.parse(Buffer.from(data).toString('utf8')) as { grantedAt: number }).grantedAt : at;
    }
    const completed = e.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data;
    if (completed)
      releasedByAgent =
        (JSON.parse(Buffer.from(completed).toString('utf8')) as { released?: boolean }).released === true;
    const released =
      e.signalExternalWorkflowExecutionInitiatedEventAttributes?.signalName === 'release' ||
      (releasedByAgent &&
        e.workflowTaskStartedEventAttributes !== undefined &&
        e.workflowTaskStartedEventAttributes !== null);
    if (released && granted !== undefined) {
      hours += (gpu * (at - granted)) / 3_600_000;
      granted = undefined;
      releasedByAgent = false;
    }
  }
  return hours;
}

describe('accounting', () => {
  it('reports GPU-hours per team that match the sum of the steps leases to within 1%', async () => {
    const since = Date.now() - 1000;
    const steps: (StepInput & { gpu: number })[] = [
      { name: 'a1', team: 'alpha', gpu: 2, command: ['sleep', '3'], resources: { gpu: 2 } },
      { name: 'a2', team: 'alpha', gpu: 1, command: ['sleep', '2'], resources: { gpu: 1 } },
      { name: 'b1', team: 'beta', gpu: 1, command: ['sleep', '3'], resources: { gpu: 1, cpu: 2, memory: '2Gi' } },
    ];
    const handles = await Promise.all(
      steps.map(({ gpu: _gpu, ...s }, i) =>
        world.client.workflow.start('allotStep', {
          taskQueue: world.taskQueue,
          workflowId: `acct-${Date.now()}-${i}`,
          args: [{ ...s, pool: world.pool }],
        }),
      ),
    );
    await Promise.all(handles.map((h) => h.result()));
    const expected: Record<string, number> = {};
    for (const [i, s] of steps.entries()) {
      const h = handles[i];
      if (!h || !s.team) continue;
      expected[s.team] = (expected[s.team] ?? 0) + (await gpuHoursFromHistory(h.workflowId, s.gpu));
    }
    const records = await eventually(
      async () => {
        const r = await fetchAccounting(world.client, Date.now(), world.pool);
        return r.length === 3 && r.every((x) => x.record.leases.every((l) => l.end !== undefined)) ? r : undefined;
      },
      20_000,
      'accounting records in visibility',
    );
    const rows = usageReport(records, { since, until: Date.now(), by: 'team', now: Date.now() });
    for (const team of ['alpha', 'beta']) {
      const row = rows.find((r) => r.key === team);
      expect(row, team).toBeDefined();
      expect(Math.abs((row?.gpuHours ?? 0) - (expected[team] ?? 0)) / (expected[team] ?? 1)).toBeLessThan(0.01);
    }
    expect(rows.find((r) => r.key === 'beta')?.cpuHours).toBeGreaterThan(0);
    const byStep = usageReport(records, { since, until: Date.now(), by: 'step', now: Date.now() });
    expect(byStep.map((r) => r.key).sort()).toEqual(['a1', 'a2', 'b1']);
  });
});
