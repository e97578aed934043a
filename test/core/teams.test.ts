import { describe, expect, it } from 'vitest';
import { PoolState, emptyPoolState, parseResources } from '../../src/core';

const resources = parseResources({ gpu: 1 }).request;

function acquire(pool: PoolState, team: string) {
  if (!resources) throw new Error('bad fixture');
  return pool.acquire({ requestId: `r-${team}`, owner: { kind: 'client', name: 'c' }, resources, team }, 0);
}

describe('teams', () => {
  it('accepts any team while the pool has no quotas', () => {
    expect(acquire(new PoolState(emptyPoolState('p')), 'anyone').status).toBe('queued');
  });

  it('rejects a team it does not know once quotas are set, naming the known teams', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.setTeamQuota({ name: 'vision', nominal: { gpu: 4000 } });
    const outcome = acquire(pool, 'visoin');
    expect(outcome).toMatchObject({ status: 'rejected', reason: 'UnknownTeam' });
    expect(outcome.status === 'rejected' && outcome.message).toMatch(/"visoin".*known teams: vision/);
    expect(pool.queue).toEqual([]);
  });

  it('keeps accepting the default team and known teams', () => {
    const pool = new PoolState(emptyPoolState('p'));
    pool.setTeamQuota({ name: 'vision', nominal: { gpu: 4000 } });
    expect(acquire(pool, 'vision').status).toBe('queued');
    expect(acquire(pool, 'default').status).toBe('queued');
  });
});
