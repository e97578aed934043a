/**
 * What an agent gives a gang's replica: torchrun's variables, paths of its own when replicas share
 * a node, and the address other nodes reach it at.
 */
import { describe, expect, it } from 'vitest';
import { stepPaths } from '../../src/activities';
import { gangEnvironment } from '../../src/activities/environment';
import { primaryAddress } from '../../src/workers/agent';

describe('a gang replica', () => {
  it("gets torchrun's variables: one node per replica, replica 0's address and port, its GPUs as local world size", () => {
    const gang = { id: 'p/train#run#2', rank: 1, size: 3, masterAddr: '10.0.0.5', masterPort: 29500 };
    expect(gangEnvironment(gang, 8)).toEqual({
      ALLOT_GANG_ID: 'p/train#run#2',
      NNODES: '3',
      NODE_RANK: '1',
      MASTER_ADDR: '10.0.0.5',
      MASTER_PORT: '29500',
      WORLD_SIZE: '3',
      RANK: '1',
      LOCAL_WORLD_SIZE: '8',
    });
    // A replica without GPUs runs one process.
    expect(gangEnvironment(gang, 0).LOCAL_WORLD_SIZE).toBe('1');
  });

  it('has a log, output, work dir and checkpoint folder of its own, apart from replica 0 on the same node', () => {
    const zero = stepPaths('/data', 'p/train', 2);
    const one = stepPaths('/data', 'p/train', 2, 1);
    expect(stepPaths('/data', 'p/train', 2, 0)).toEqual(zero);
    for (const key of ['log', 'output', 'work', 'checkpoint', 'checkpointState'] as const)
      expect(one[key]).not.toBe(zero[key]);
    expect(one.log).toBe('/data/logs/p%2Ftrain/attempt-2-rank-1.log');
    // No step's own folder can be named like a replica's: step folder names never hold "@".
    expect(one.checkpoint).toBe('/data/checkpoints/p%2Ftrain@rank-1');
    expect(stepPaths('/data', 'p/train@rank-1', 2).checkpoint).not.toBe(one.checkpoint);
  });
});

describe('the address an agent advertises', () => {
  const iface = (address: string, family: 'IPv4' | 'IPv6', internal = false) => ({
    address,
    family,
    internal,
    netmask: '',
    mac: '00:00:00:00:00:00',
    cidr: null,
    ...(family === 'IPv6' ? { scopeid: 0 } : {}),
  });

  it("is the host's first non-loopback IPv4 address, else IPv6 (not link-local), else loopback", () => {
    expect(
      primaryAddress({
        lo: [iface('127.0.0.1', 'IPv4', true)],
        eth0: [iface('fe80::1', 'IPv6'), iface('10.1.2.3', 'IPv4')],
      } as never),
    ).toBe('10.1.2.3');
    expect(primaryAddress({ eth0: [iface('fe80::1', 'IPv6'), iface('2001:db8::5', 'IPv6')] } as never)).toBe(
      '2001:db8::5',
    );
    expect(primaryAddress({ lo: [iface('127.0.0.1', 'IPv4', true)] } as never)).toBe('127.0.0.1');
  });
});
