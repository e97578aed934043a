/**
 * Hardware detection against fake `nvidia-smi` and `lspci` that print the real tools' formats,
 * for a 1×H100 machine, an 8×A100 machine and a MIG-enabled A100, and on this machine as it is.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core';
import { detectGpus, schedulableGpus, shortModel } from '../../src/workers/detect/gpus';
import { parseMigList } from '../../src/workers/detect/nvidia-smi';
import { detectInventory } from '../../src/workers/inventory';
import { tempDir } from '../helpers/temp';

const FAKES = path.resolve(__dirname, '../fixtures/nvidia-smi');
const ORIGINAL_PATH = process.env.PATH ?? '';

function usePath(...dirs: string[]): void {
  process.env.PATH = [...dirs, ORIGINAL_PATH].join(path.delimiter);
}

function onPath(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

afterEach(() => {
  process.env.PATH = ORIGINAL_PATH;
});

describe('detection with a fake 1×H100 machine', () => {
  it('finds one H100 with its index, UUID, bus id and memory', async () => {
    usePath(path.join(FAKES, 'h100x1'));
    const gpus = await detectGpus();
    expect(gpus).toEqual([
      {
        index: 0,
        uuid: expect.stringMatching(/^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/) as string,
        vendor: 'NVIDIA Corporation',
        name: 'NVIDIA H100 80GB HBM3',
        model: 'H100',
        memoryMiB: 81559,
        busId: '00000000:18:00.0',
        migEnabled: false,
        mig: [],
      },
    ]);
  });

  it('is what systeminformation itself reports, completed: it merges nvidia-smi into lspci by bus address', () => {
    // systeminformation copies the environment when it loads, so ask it in a process of its own.
    const script = "require('systeminformation').graphics().then((g) => console.log(JSON.stringify(g.controllers)))";
    const out = execFileSync(process.execPath, ['-e', script], {
      env: { ...process.env, PATH: [path.join(FAKES, 'h100x1'), ORIGINAL_PATH].join(path.delimiter) },
      encoding: 'utf8',
    });
    const controllers = JSON.parse(out) as { vendor: string; busAddress?: string; name?: string; vram?: number }[];
    const nvidia = controllers.filter((c) => /nvidia/i.test(c.vendor));
    expect(nvidia).toHaveLength(1);
    expect(nvidia[0]).toMatchObject({ busAddress: '18:00.0', name: 'NVIDIA H100 80GB HBM3', vram: 81559 });
    // The ASPEED on the motherboard is a controller too, but not a GPU that steps can use.
    expect(controllers.some((c) => /aspeed/i.test(c.vendor))).toBe(true);
  });
});

describe('detection with a fake 8×A100 machine', () => {
  it('finds eight A100s indexed 0..7 in nvidia-smi order, each with its own UUID', async () => {
    usePath(path.join(FAKES, 'a100x8'));
    const gpus = await detectGpus();
    expect(gpus.map((g) => g.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(new Set(gpus.map((g) => g.model))).toEqual(new Set(['A100']));
    expect(gpus.every((g) => g.memoryMiB === 81920)).toBe(true);
    expect(new Set(gpus.map((g) => g.uuid)).size).toBe(8);
    expect(gpus.map((g) => g.busId?.slice(9, 11))).toEqual(['07', '0F', '47', '4E', '87', '90', 'B7', 'BD']);
  });

  it('becomes a node inventory of eight schedulable devices named by index', async () => {
    usePath(path.join(FAKES, 'a100x8'));
    const inv = await detectInventory('dgx-1', { labels: { zone: 'a' } });
    expect(inv.spec.gpus).toHaveLength(8);
    expect(inv.spec.gpus[3]).toMatchObject({ index: 3, model: 'A100', memoryMiB: 81920 });
    expect(inv.visibleIds[7]).toBe('7');
    expect(inv.spec.labels).toEqual({ zone: 'a' });
    expect(inv.spec.cpuMilli).toBeGreaterThan(0);
    expect(inv.spec.memoryMiB).toBeGreaterThan(0);
  });

  it('lets flags override the detected model and memory', async () => {
    usePath(path.join(FAKES, 'a100x8'));
    const inv = await detectInventory('dgx-1', { gpuModel: 'A100-80G', gpuMemory: '80Gi', cpu: '64', memory: '1Ti' });
    expect(inv.spec.gpus.every((g) => g.model === 'A100-80G' && g.memoryMiB === 81920)).toBe(true);
    expect(inv.spec.cpuMilli).toBe(64_000);
    expect(inv.spec.memoryMiB).toBe(1024 * 1024);
  });

  it('finds the GPUs in a container whose lspci lists nothing', async () => {
    const empty = tempDir('lspci');
    writeFileSync(path.join(empty, 'lspci'), '#!/bin/sh\nexit 0\n');
    chmodSync(path.join(empty, 'lspci'), 0o755);
    usePath(empty, path.join(FAKES, 'a100x8'));
    const gpus = await detectGpus();
    expect(gpus).toHaveLength(8);
    expect(gpus[0]).toMatchObject({ index: 0, model: 'A100', vendor: 'NVIDIA Corporation' });
  });
});

describe('detection with a fake MIG-enabled A100', () => {
  it('lists the MIG instances of the GPU with their profiles and UUIDs', async () => {
    usePath(path.join(FAKES, 'a100-mig'));
    const [gpu, ...others] = await detectGpus();
    expect(others).toEqual([]);
    expect(gpu).toMatchObject({ index: 0, model: 'A100', memoryMiB: 40960, migEnabled: true });
    expect(gpu?.mig.map((m) => [m.profile, m.memoryMiB])).toEqual([
      ['3g.20gb', 20480],
      ['2g.10gb', 10240],
      ['1g.5gb', 5120],
      ['1g.5gb', 5120],
    ]);
    expect(gpu?.mig.every((m) => /^MIG-[0-9a-f-]{36}$/.test(m.uuid))).toBe(true);
  });

  it('offers each MIG instance as a device that workloads select by its MIG UUID', async () => {
    usePath(path.join(FAKES, 'a100-mig'));
    const inv = await detectInventory('mig-node', {});
    expect(inv.spec.gpus.map((g) => [g.index, g.model, g.memoryMiB])).toEqual([
      [1, 'A100 MIG 3g.20gb', 20480],
      [2, 'A100 MIG 2g.10gb', 10240],
      [3, 'A100 MIG 1g.5gb', 5120],
      [4, 'A100 MIG 1g.5gb', 5120],
    ]);
    expect(inv.visibleIds[1]).toBe(inv.detected?.[0]?.mig[0]?.uuid);
    expect(inv.visibleIds[1]).toMatch(/^MIG-/);
  });
});

describe('detection on a machine without GPUs', () => {
  it('reports 0 GPUs and no error when neither lspci nor nvidia-smi exists', async () => {
    const bare = tempDir('bare');
    process.env.PATH = bare;
    await expect(detectGpus()).resolves.toEqual([]);
  });

  it.skipIf(onPath('nvidia-smi'))('reports 0 GPUs and no error on this machine, which has none', async () => {
    const inv = await detectInventory('here', {});
    expect(inv.spec.gpus).toEqual([]);
    expect(inv.detected).toEqual([]);
  });
});

describe('inventory flags', () => {
  it('declares GPUs instead of detecting them', async () => {
    usePath(path.join(FAKES, 'a100x8'));
    const inv = await detectInventory('n', { gpus: '2', gpuModel: 'L4', gpuMemory: '24Gi' });
    expect(inv.spec.gpus).toEqual([
      { index: 0, model: 'L4', memoryMiB: 24576 },
      { index: 1, model: 'L4', memoryMiB: 24576 },
    ]);
    expect(inv.detected).toBeUndefined();
  });

  it('reports every bad flag at once, naming the flag, the value and the allowed form', async () => {
    const err = await detectInventory('n', { gpus: 'two', memory: 'lots', gpuModel: 'A100|H100' }).catch((e) => e);
    expect(err).toBeInstanceOf(ValidationError);
    const text = String((err as Error).message);
    expect(text).toMatch(/--gpus.*whole number of GPUs.*"two"/);
    expect(text).toMatch(/--memory.*"lots"/);
    expect(text).toMatch(/--gpu-model.*one model name/);
  });
});

describe('parsing', () => {
  it.each([
    ['NVIDIA A100-SXM4-80GB', 'A100'],
    ['NVIDIA H100 80GB HBM3', 'H100'],
    ['Tesla V100-SXM2-16GB', 'V100'],
    ['NVIDIA GeForce RTX 4090', 'RTX 4090'],
    ['NVIDIA L40S', 'L40S'],
    ['NVIDIA A10G', 'A10G'],
  ])('the short model of %s is %s', (name, model) => {
    expect(shortModel(name)).toBe(model);
  });

  it('reads MIG instances of older drivers, whose UUIDs name the parent GPU', () => {
    const out = [
      'GPU 0: A100-SXM4-40GB (UUID: GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f)',
      '  MIG 1g.5gb Device 0: (UUID: MIG-GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f/7/0)',
      'GPU 1: A100-SXM4-40GB (UUID: GPU-0d1e8c79-1f2b-4f55-7f4f-7a8d2ae1dc3f)',
    ].join('\n');
    expect(parseMigList(out)).toEqual([
      { gpuIndex: 0, device: 0, profile: '1g.5gb', uuid: 'MIG-GPU-5c89852c-d268-c3f3-1b07-005d5ae1dc3f/7/0' },
    ]);
  });

  it('numbers MIG devices after the last physical GPU, keeping the others by index', () => {
    const { devices } = schedulableGpus([
      { index: 0, vendor: 'NVIDIA', name: 'A100', model: 'A100', memoryMiB: 40960, migEnabled: false, mig: [] },
      {
        index: 1,
        vendor: 'NVIDIA',
        name: 'A100',
        model: 'A100',
        memoryMiB: 40960,
        migEnabled: true,
        mig: [{ profile: '7g.40gb', uuid: 'MIG-x', memoryMiB: 40960 }],
      },
    ]);
    expect(devices.map((d) => [d.index, d.model])).toEqual([
      [0, 'A100'],
      [2, 'A100 MIG 7g.40gb'],
    ]);
  });
});
