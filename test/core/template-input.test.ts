import { describe, expect, it } from 'vitest';
import { parseAutoscaleFlag } from '../../src/core';

describe('the --autoscale flag', () => {
  it('reads a100x2=3 as two A100 GPUs, at most three nodes', () => {
    const a100x2 = parseAutoscaleFlag('a100x2=3', {}).template;
    expect(a100x2).toMatchObject({ name: 'a100x2', max: 3, spec: { gpus: [{ model: 'A100' }, { model: 'A100' }] } });
  });

  it('rejects a malformed --autoscale naming the flag and the form', () => {
    const { issues } = parseAutoscaleFlag('a100-2', {});
    expect(issues[0]?.message).toMatch(/must be <model>x<gpus>=<max nodes>.*"a100-2"/);
  });
});
