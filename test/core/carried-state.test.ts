import { describe, expect, it } from 'vitest';
import type { AcquireInput } from '../../src/core';
import {
  MAX_QUEUED,
  PoolState,
  RELEASED_MEMORY,
  STATUS_QUEUE_LIMIT,
  emptyPoolState,
  hash53,
  parseResources,
  statusQueueLimit,
} from '../../src/core';
import { CARRIED_STATE_LIMIT, PLAIN_STATE_LIMIT, packState, unpackState } from '../../src/workflows/carry';

const resources = parseResources({ gpu: 1, cpu: '4', memory: '16Gi' }).request;
const request = (i: number, extra: Partial<AcquireInput> = {}): AcquireInput => {
  if (!resources) throw new Error('bad fixture');
  const workflowId = `pipeline-${i % 977}/train-${i % 7}`;
  const runId = `${(i * 2654435761) >>> 0}`.padStart(10, '0') + '-4b2c-9f1e-6d3a0c8e7b51';
  return {
    requestId: `${workflowId}#${runId}`,
    owner: { kind: 'workflow', workflowId },
    resources,
    team: 'vision',
    label: `train-${i % 7}`,
    submittedAt: 1_764_650_000_000 + i,
    ...extra,
  };
};

describe('the state a pool carries across continue-as-new', () => {
  it('hash53 is stable, short and spreads', () => {
    expect(hash53('')).toBe(hash53(''));
    expect(hash53('pipeline-1/train#a')).toBe(hash53('pipeline-1/train#a'));
    const keys = new Set(Array.from({ length: 50_000 }, (_, i) => hash53(`wf-${i}#run`)));
    expect(keys.size).toBe(50_000);
    for (const k of [...keys].slice(0, 100)) expect(k.length).toBeLessThanOrEqual(11);
  });

  it('remembers released ids given in the old form, by hash, and forgets the oldest beyond RELEASED_MEMORY', () => {
    const old = { ...emptyPoolState('p'), released: ['r-old'] };
    delete (old as { releasedKeys?: string[] }).releasedKeys;
    const p = new PoolState(old);
    expect(p.acquire(request(1, { requestId: 'r-old' }), 0)).toEqual({ status: 'released' });
    for (let i = 0; i < RELEASED_MEMORY + RELEASED_MEMORY / 5; i++) {
      p.acquire(request(i, { requestId: `r-${i}` }), 0);
      p.release(`r-${i}`);
    }
    const carried = p.toJSON();
    expect(carried.released).toEqual([]);
    expect(carried.releasedKeys!.length).toBeLessThanOrEqual(RELEASED_MEMORY + RELEASED_MEMORY / 10);
    const next = new PoolState(unpackOrPlain(carried));
    expect(next.acquire(request(0, { requestId: `r-${RELEASED_MEMORY + RELEASED_MEMORY / 5 - 1}` }), 1)).toEqual({
      status: 'released',
    });
    expect(next.acquire(request(0, { requestId: 'r-old' }), 1)).toMatchObject({ status: 'queued' });
  });

  it('carries 10,000 queued requests deflated, well under the limit, and reads them back the same', () => {
    const p = new PoolState(emptyPoolState('p'));
    for (let i = 0; i < 10_000; i++) p.acquire(request(i), i);
    p.schedule(20_000);
    const carried = packState(p.toJSON());
    expect('packed' in carried).toBe(true);
    expect(carried.bytes).toBeLessThan(CARRIED_STATE_LIMIT / 2);
    expect(unpackOrPlain(p.toJSON())).toEqual(JSON.parse(JSON.stringify(p.toJSON())));
    const back = 'packed' in carried ? unpackState(carried.packed) : carried.state;
    expect(back).toEqual(JSON.parse(JSON.stringify(p.toJSON())));
  });

  it('carries a small state as plain JSON', () => {
    const p = new PoolState(emptyPoolState('p'));
    p.acquire(request(1), 0);
    const carried = packState(p.toJSON());
    expect('state' in carried && carried.bytes <= PLAIN_STATE_LIMIT).toBe(true);
  });

  it(`turns away acquires beyond ${MAX_QUEUED} queued with QueueFull, naming the pool and the count`, () => {
    const p = new PoolState(emptyPoolState('big'));
    for (let i = 0; i < MAX_QUEUED; i++) expect(p.acquire(request(i), 0).status).toBe('queued');
    const outcome = p.acquire(request(MAX_QUEUED), 0);
    expect(outcome).toMatchObject({ status: 'rejected', reason: 'QueueFull' });
    expect(outcome.status === 'rejected' && outcome.message).toContain(`pool big already holds ${MAX_QUEUED} queued`);
    expect(p.queue).toHaveLength(MAX_QUEUED);
    expect(p.rejectionOf(request(MAX_QUEUED).requestId)?.reason).toBe('QueueFull');
  });

  it('sheds the newest queued requests, and only those, when asked to', () => {
    const p = new PoolState(emptyPoolState('p'));
    for (let i = 0; i < 10; i++) p.acquire(request(i, { requestId: `r-${i}` }), i);
    const shed = p.shedNewest(3, 'too big');
    expect(shed.map((r) => r.requestId)).toEqual(['r-9', 'r-8', 'r-7']);
    expect(shed.every((r) => r.reason === 'QueueFull' && r.message === 'too big')).toBe(true);
    expect(p.queue.map((r) => r.requestId)).toEqual(Array.from({ length: 7 }, (_, i) => `r-${i}`));
    expect(p.lookup('r-8')).toMatchObject({ status: 'rejected', reason: 'QueueFull' });
  });
});

describe('the status of a large queue', () => {
  it('lists the first queued requests in order, and counts all of them per team and per reason', () => {
    const p = new PoolState(emptyPoolState('p'));
    for (let i = 0; i < 30; i++) p.acquire(request(i, { requestId: `r-${i}`, team: i % 3 === 0 ? 'a' : 'default' }), i);
    const s = p.status(100, 5);
    expect(s.queue.map((q) => q.requestId)).toEqual(['r-0', 'r-1', 'r-2', 'r-3', 'r-4']);
    expect(s.queued).toBe(30);
    expect(s.queuedByTeam.map((t) => [t.team, t.count])).toEqual([
      ['a', 10],
      ['default', 20],
    ]);
    expect(s.queuedByReason).toEqual([{ reason: 'Pending', count: 30 }]);
    expect(p.status(100, 0).queue).toHaveLength(0);
    expect(p.status(100, 0).queuedByReason).toEqual(s.queuedByReason);
    expect(p.status(100).queue).toHaveLength(30);
  });

  it.each([
    [undefined, STATUS_QUEUE_LIMIT],
    [{}, STATUS_QUEUE_LIMIT],
    [{ queueLimit: 0 }, 0],
    [{ queueLimit: 50 }, 50],
    [{ queueLimit: -1 }, 'queueLimit must be an integer from 0 to 20000, got -1 (number)'],
    [{ queueLimit: '5' }, 'queueLimit must be an integer from 0 to 20000, got "5" (string)'],
    [{ queueLimit: 1.5 }, 'queueLimit must be an integer from 0 to 20000, got 1.5 (number)'],
    [7, 'status options must be an object like {"queueLimit": 100}, got 7 (number)'],
  ])('reads status options %j as %j', (options, expected) => {
    expect(statusQueueLimit(options)).toBe(expected);
  });
});

function unpackOrPlain(state: ReturnType<PoolState['toJSON']>): ReturnType<PoolState['toJSON']> {
  const carried = packState(state);
  return 'packed' in carried
    ? unpackState(carried.packed)
    : (JSON.parse(JSON.stringify(carried.state)) as typeof state);
}
