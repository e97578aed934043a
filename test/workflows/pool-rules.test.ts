/**
 * Rules of the pool and step workflows that need no server: when a pool run may continue as new
 * with scaling under way, what a health policy change is checked against, and what a step started
 * directly (without allot's client) may ask for.
 */
import { describe, expect, it } from 'vitest';
import type { HealthPolicy } from '../../src/core';
import { validateHealthPolicy } from '../../src/core';
import { MAX_UPDATES_PER_RUN, continueAsNewNow } from '../../src/workflows/pool';
import { validateStepInput } from '../../src/workflows/step-validation';

describe('continuing a pool run as new', () => {
  const run = { suggested: true, historyLength: 5_000, updates: 10, scalingInFlight: 0 };

  it('waits for scaling activities under way, whose outcome would be lost with the run', () => {
    expect(continueAsNewNow(run)).toBe(true);
    expect(continueAsNewNow({ ...run, scalingInFlight: 1 })).toBe(false);
  });

  it('stops waiting before the history or the Updates of the run grow too large', () => {
    expect(continueAsNewNow({ ...run, scalingInFlight: 1, historyLength: 20_000 })).toBe(true);
    expect(continueAsNewNow({ ...run, scalingInFlight: 1, updates: MAX_UPDATES_PER_RUN + 300 })).toBe(true);
  });

  it('continues before the server limit of Updates even when Temporal does not suggest it', () => {
    expect(continueAsNewNow({ ...run, suggested: false })).toBe(false);
    expect(continueAsNewNow({ ...run, suggested: false, updates: MAX_UPDATES_PER_RUN })).toBe(true);
  });
});

describe('a health policy change', () => {
  it('is checked against the policy in force, not the defaults', () => {
    const current: HealthPolicy = { leaseTtlMs: 60_000, nodeNotReadyAfterMs: 90_000, nodeLostAfterMs: 120_000 };
    // Valid against the defaults (NotReady after 15 s), not against a pool whose nodes are NotReady after 90 s.
    expect(validateHealthPolicy({ nodeLostAfterMs: 60_000 })).toEqual([]);
    expect(validateHealthPolicy({ nodeLostAfterMs: 60_000 }, current)).toEqual([
      expect.objectContaining({
        path: ['nodeLostAfterMs'],
        message: expect.stringMatching(/at least nodeNotReadyAfterMs \(90000\)/),
      }),
    ]);
  });
});

describe('a step started directly', () => {
  it('takes replicas and a placement, and refuses a placement that is neither spread nor pack', () => {
    const gang = { name: 'gang', command: ['true'], resources: { gpu: 1 }, replicas: 2 };
    expect(validateStepInput(gang).issues).toEqual([]);
    expect(validateStepInput({ ...gang, replicaPlacement: 'pack' }).issues).toEqual([]);
    expect(validateStepInput({ ...gang, replicaPlacement: 'everywhere' } as never).issues).toEqual([
      expect.objectContaining({ path: ['replicaPlacement'] }),
    ]);
  });
});
