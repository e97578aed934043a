/**
 * `allot submit --limit NAME=N` into the step's `limits`, without a server: a flag is never
 * dropped on the way, so a step never runs without a unit it asked for.
 */
import { describe, expect, it } from 'vitest';
import { buildSubmitStep } from '../../src/cli/commands/submit';
import { UserError } from '../../src/cli/errors';

describe('submit --limit', () => {
  it('puts each limit into the step', () => {
    const step = buildSubmitStep(['true'], { limit: ['fs=1', 'db=2'], wait: true });
    expect(step.limits).toEqual({ fs: 1, db: 2 });
  });

  it.each(['__proto__=1', 'constructor=x', 'fs=0', 'fs=1.5'])('refuses --limit %s, naming it', (flag) => {
    expect(() => buildSubmitStep(['true'], { limit: [flag], wait: true })).toThrow(UserError);
    expect(() => buildSubmitStep(['true'], { limit: [flag], wait: true })).toThrow(/--limit/);
  });
});
