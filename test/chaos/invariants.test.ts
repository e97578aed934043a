/**
 * The chaos run's invariant checker finds every kind of violation it claims to find, from records
 * shaped as the workloads, the pool and the agents write them, and reports nothing on a clean run.
 */
import { describe, expect, it } from 'vitest';
import type { PoolStatus } from '../../src/core';
import type { RunRecord } from '../../src/chaos/invariants';
import { checkFinal, checkPoolSample, checkRuns, parseRunFile } from '../../src/chaos/invariants';

/** A run of `step` on `node`, alive from `start` to `lastSeen`. */
function run(step: string, start: number, lastSeen: number, patch: Partial<RunRecord> = {}): RunRecord {
  return {
    step,
    node: 'n1',
    gpus: [0],
    lease: `lease-${step}-${start}`,
    attempt: 1,
    pid: start,
    start,
    lastSeen,
    ended: true,
    file: `${step}-${start}.log`,
    ...patch,
  };
}

function status(patch: Partial<PoolStatus> = {}): PoolStatus {
  return {
    pool: 'default',
    nodes: [
      {
        id: 'n1',
        status: 'Ready',
        labels: {},
        cpu: { capacityMilli: 4000, usedMilli: 0 },
        memory: { capacityMiB: 8192, usedMiB: 0 },
        gpus: [
          { index: 0, model: 'A100', memoryMiB: 81920, used: 0, holders: [] },
          { index: 1, model: 'A100', memoryMiB: 81920, used: 0, holders: [] },
        ],
      },
    ],
    leases: [],
    queued: 0,
    queuedByTeam: [],
    queuedByReason: [],
    queue: [],
    ...patch,
  };
}

describe('the chaos invariant checker', () => {
  it('reads a run file: header, ticks, end; and a killed run by its last tick', () => {
    const header = JSON.stringify({
      step: 'p1/train-0',
      node: 'n2',
      gpus: '0,1',
      lease: 'l-7',
      attempt: 2,
      pid: 9,
      start: 100,
    });
    expect(parseRunFile(`${header}\nt 200\nt 300\nend 350\n`, 'f')).toMatchObject({
      step: 'p1/train-0',
      node: 'n2',
      gpus: [0, 1],
      start: 100,
      lastSeen: 350,
      ended: true,
    });
    expect(parseRunFile(`${header}\nt 200\nt 30`, 'f')).toMatchObject({ lastSeen: 200, ended: false });
    expect(parseRunFile('not json\n', 'f')).toBeUndefined();
  });

  it('finds nothing wrong in runs one after another, on distinct GPUs, or sharing halves of one', () => {
    const runs = [
      run('a', 0, 100, { ended: false }),
      run('a', 100, 200),
      run('b', 0, 200, { gpus: [1] }),
      run('c', 300, 400, { fraction: 0.5 }),
      run('d', 350, 450, { fraction: 0.5 }),
    ];
    expect(checkRuns(runs, ['a', 'b', 'c', 'd'])).toEqual([]);
  });

  it('finds a step that never ran to its end', () => {
    const violations = checkRuns([run('a', 0, 100, { ended: false })], ['a', 'b']);
    expect(violations.map((v) => v.invariant)).toEqual(['step lost', 'step lost']);
    expect(violations[1]?.message).toContain('step b never ran');
  });

  it('finds two runs of one step alive at once, even on different nodes', () => {
    const violations = checkRuns([run('a', 0, 150, { ended: false }), run('a', 100, 300, { node: 'n2' })], ['a']);
    expect(violations).toEqual([
      { invariant: 'ran twice at once', message: expect.stringContaining('step a: attempt 1 on n1') as string },
    ]);
  });

  it('finds a GPU held whole by one step while another runs on it', () => {
    const violations = checkRuns([run('a', 0, 200), run('b', 150, 300)], ['a', 'b']);
    expect(violations.map((v) => v.invariant)).toEqual(['GPU double-booked']);
    expect(violations[0]?.message).toMatch(/n1 GPU 0 held 200% at 150/);
  });

  it('finds three halves of one GPU at once', () => {
    const halves = ['a', 'b', 'c'].map((s, i) => run(s, i * 10, 100, { fraction: 0.5 }));
    expect(checkRuns(halves, ['a', 'b', 'c']).map((v) => v.invariant)).toEqual(['GPU double-booked']);
  });

  it('finds a pool that granted more than a node has', () => {
    const bad = status();
    const node = bad.nodes[0];
    if (!node?.gpus[0]) throw new Error('fixture');
    node.gpus[0].used = 1.5;
    node.cpu.usedMilli = 5000;
    expect(checkPoolSample(bad, 7).map((v) => v.message)).toEqual([
      'pool at 7: node n1 has 5000 of 4000 milli-CPU granted',
      'pool at 7: node n1 GPU 0 is 150% granted',
    ]);
    expect(checkPoolSample(status(), 7)).toEqual([]);
  });

  it('finds leases, queued requests and ledger claims left at the end, and pipelines that did not complete', () => {
    const lease = {
      leaseId: 'default-9',
      requestId: 'r',
      owner: { kind: 'workflow' as const, workflowId: 'p1/a' },
      nodeId: 'n1',
      cpuMilli: 500,
      memoryMiB: 256,
      gpus: [{ index: 0, milli: 1000, memoryMiB: 81920 }],
      priority: 0,
      team: 'default',
      label: 'a',
      submittedAt: 0,
      grantedAt: 0,
      heldMs: 5,
    };
    const violations = checkFinal(
      status({ leases: [lease] }),
      [{ node: 'n2', claims: [{ leaseId: 'default-3', stepId: 'p1/b' }] }],
      [
        { workflowId: 'p1', status: 'completed' },
        { workflowId: 'p2', status: 'failed', message: 'FAILED: step gave up' },
      ],
    );
    expect(violations.map((v) => `${v.invariant}: ${v.message}`)).toEqual([
      'not freed: lease default-9 of a on n1 is still held',
      'not freed: agent n2 still has lease default-3 of p1/b in its ledger',
      'step lost: pipeline p2 failed: FAILED: step gave up',
    ]);
    expect(checkFinal(status(), [{ node: 'n1', claims: [] }], [{ workflowId: 'p1', status: 'completed' }])).toEqual([]);
  });
});
