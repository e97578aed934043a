/**
 * A step's checkpoint folder kept in the store: restored on another node, kept when this node's
 * copy is the newer one, never sent while the workload still writes a file, sent whole after the
 * workload ends, and removed after success. Against a folder store and, where SeaweedFS is
 * installed, a real S3 server.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointSync, latestCheckpoint } from '../../src/activities/checkpoint-sync';
import type { CheckpointManifest } from '../../src/activities/checkpoint-sync';
import { filesOpenForWriting } from '../../src/activities/files';
import { openStore } from '../../src/store';
import type { Store } from '../../src/store/types';
import { eventually } from '../helpers/harness';
import { s3SkipReason, startS3Server } from '../helpers/s3-server';
import type { S3Server } from '../helpers/s3-server';
import { tempDir } from '../helpers/temp';

let s3: S3Server | undefined;

beforeAll(async () => {
  if (!s3SkipReason()) s3 = await startS3Server();
});
afterAll(async () => s3?.stop());

const stores: [string, () => Store | undefined][] = [
  ['a folder store', () => openStore(`file://${tempDir('ckpt-store')}`)],
  [
    'an S3 store',
    () => (s3 ? openStore(`s3://${s3.bucket}/ckpt-${Date.now()}`, { ...process.env, ...s3.env }) : undefined),
  ],
];

async function manifest(store: Store, stepId: string): Promise<CheckpointManifest | undefined> {
  return (await latestCheckpoint(store, stepId))?.manifest;
}

function sync(store: Store, dir: string, nodeId: string, attempt: number, lines: string[] = []): CheckpointSync {
  return new CheckpointSync({
    store,
    stepId: 'pipe-1/train',
    dir,
    nodeId,
    attempt,
    leaseId: `default-${attempt * 10}`,
    intervalMs: 100,
    log: (l) => lines.push(l),
  });
}

describe.each(stores)('checkpoints in %s', (_, makeStore) => {
  it('follows the step to another node: what node A saved, node B restores', async (ctx) => {
    const store = makeStore();
    if (!store) return ctx.skip(s3SkipReason());
    const a = path.join(tempDir('node-a'), 'checkpoints', 'train');
    const b = path.join(tempDir('node-b'), 'checkpoints', 'train');
    const onA = sync(store, a, 'a', 1);
    await onA.restore();
    mkdirSync(path.join(a, 'sub'), { recursive: true });
    writeFileSync(path.join(a, 'epoch.txt'), '6');
    writeFileSync(path.join(a, 'sub', 'weights.bin'), Buffer.alloc(100_000, 7));
    await onA.finish();
    const lines: string[] = [];
    const onB = sync(store, b, 'b', 2, lines);
    mkdirSync(b, { recursive: true });
    writeFileSync(path.join(b, 'stale.txt'), 'from an attempt long ago');
    await onB.restore();
    expect(readFileSync(path.join(b, 'epoch.txt'), 'utf8')).toBe('6');
    expect(readFileSync(path.join(b, 'sub', 'weights.bin'))).toEqual(Buffer.alloc(100_000, 7));
    expect(() => readFileSync(path.join(b, 'stale.txt'))).toThrow();
    expect(lines.join('\n')).toContain('restored checkpoint from');
    expect(lines.join('\n')).toContain('saved by node a in attempt 1');
  });

  it("keeps this node's copy when the store's latest is the one it saved (it may be newer)", async (ctx) => {
    const store = makeStore();
    if (!store) return ctx.skip(s3SkipReason());
    const dir = path.join(tempDir('node-a'), 'checkpoints', 'train');
    const first = sync(store, dir, 'a', 1);
    await first.restore();
    writeFileSync(path.join(dir, 'epoch.txt'), '3');
    await first.finish();
    // The agent died before it could send epoch 4: the node's copy is ahead of the store's.
    writeFileSync(path.join(dir, 'epoch.txt'), '4');
    const again = sync(store, dir, 'a', 2);
    await again.restore();
    expect(readFileSync(path.join(dir, 'epoch.txt'), 'utf8')).toBe('4');
    await again.finish();
    const m = await manifest(store, 'pipe-1/train');
    expect(m?.attempt).toBe(2);
  });

  it("replaces this node's copy when another node saved since", async (ctx) => {
    const store = makeStore();
    if (!store) return ctx.skip(s3SkipReason());
    const a = path.join(tempDir('node-a'), 'checkpoints', 'train');
    const b = path.join(tempDir('node-b'), 'checkpoints', 'train');
    const onA = sync(store, a, 'a', 1);
    await onA.restore();
    writeFileSync(path.join(a, 'epoch.txt'), '2');
    await onA.finish();
    const onB = sync(store, b, 'b', 2);
    await onB.restore();
    writeFileSync(path.join(b, 'epoch.txt'), '5');
    await onB.finish();
    const backOnA = sync(store, a, 'a', 3);
    await backOnA.restore();
    expect(readFileSync(path.join(a, 'epoch.txt'), 'utf8')).toBe('5');
  });

  it('an attempt whose step has moved on does not overwrite the later attempt, nor remove its blobs', async (ctx) => {
    const store = makeStore();
    if (!store) return ctx.skip(s3SkipReason());
    const a = path.join(tempDir('node-a'), 'checkpoints', 'train');
    const b = path.join(tempDir('node-b'), 'checkpoints', 'train');
    const lines: string[] = [];
    const onA = sync(store, a, 'a', 1, lines);
    await onA.restore();
    writeFileSync(path.join(a, 'epoch.txt'), '3');
    writeFileSync(path.join(a, 'config.txt'), 'lr 0.1');
    await onA.finish();
    // Node a is cut off; attempt 2 restores on node b. Then a late save of node a lands (epoch 4,
    // config changed): it removes the blob of the old config, which b restored and still lists.
    const onB = sync(store, b, 'b', 2);
    await onB.restore();
    writeFileSync(path.join(a, 'epoch.txt'), '4');
    writeFileSync(path.join(a, 'config.txt'), 'lr 0.2');
    await onA.finish();
    writeFileSync(path.join(b, 'epoch.txt'), '5');
    await onB.finish();
    expect((await manifest(store, 'pipe-1/train'))?.nodeId).toBe('b');
    // Node a's next save is refused: the store's checkpoint is a later attempt's.
    writeFileSync(path.join(a, 'epoch.txt'), '6');
    await onA.finish();
    expect((await manifest(store, 'pipe-1/train'))?.nodeId).toBe('b');
    expect(lines.join('\n')).toContain('a later attempt of this step');
    // And what b saved restores whole, with the config it restored.
    const c = path.join(tempDir('node-c'), 'checkpoints', 'train');
    await sync(store, c, 'c', 3).restore();
    expect(readFileSync(path.join(c, 'epoch.txt'), 'utf8')).toBe('5');
    expect(readFileSync(path.join(c, 'config.txt'), 'utf8')).toBe('lr 0.1');
  });

  it('removes the checkpoint after success, from the store and the node', async (ctx) => {
    const store = makeStore();
    if (!store) return ctx.skip(s3SkipReason());
    const dir = path.join(tempDir('node-a'), 'checkpoints', 'train');
    const s = sync(store, dir, 'a', 1);
    await s.restore();
    writeFileSync(path.join(dir, 'epoch.txt'), '9');
    await s.finish();
    expect(await store.list('checkpoints/')).not.toEqual([]);
    await s.remove();
    expect(await store.list('checkpoints/')).toEqual([]);
    const next = sync(store, dir, 'a', 1);
    await next.restore();
    expect(() => readFileSync(path.join(dir, 'epoch.txt'))).toThrow();
  });
});

describe('a half-written checkpoint', () => {
  it('is not sent while the workload holds it open for writing; the renamed, whole file is', async () => {
    const store = openStore(`file://${tempDir('ckpt-store')}`);
    const dir = path.join(tempDir('node-a'), 'checkpoints', 'train');
    mkdirSync(dir, { recursive: true });
    // A writer that opens ckpt.tmp, writes half, and waits before it finishes and renames it.
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('fs');
         const fd = fs.openSync(process.argv[1] + '/ckpt.tmp', 'w');
         fs.writeSync(fd, 'half');
         setTimeout(() => { fs.writeSync(fd, ' and whole'); fs.closeSync(fd); fs.renameSync(process.argv[1] + '/ckpt.tmp', process.argv[1] + '/ckpt'); }, 1500);`,
        dir,
      ],
      { detached: true, stdio: 'ignore' },
    );
    const pid = writer.pid as number;
    await eventually(() => filesOpenForWriting(pid)?.has(path.join(dir, 'ckpt.tmp')) || undefined);
    const s = new CheckpointSync({
      store,
      stepId: 'pipe-2/train',
      dir,
      nodeId: 'a',
      attempt: 1,
      leaseId: 'default-1',
      intervalMs: 100,
      log: () => undefined,
      openForWriting: () => filesOpenForWriting(pid),
    });
    await s.restore();
    s.start();
    await new Promise((r) => setTimeout(r, 700));
    expect(await manifest(store, 'pipe-2/train')).toBeUndefined();
    await new Promise<void>((r) => writer.once('exit', () => r()));
    const saved = await eventually(async () => (await manifest(store, 'pipe-2/train'))?.files.map((f) => f.path));
    expect(saved).toEqual(['ckpt']);
    await s.finish();
  });

  it('where writers cannot be told, is sent only once it has stayed the same for a pass', async () => {
    const store = openStore(`file://${tempDir('ckpt-store')}`);
    const dir = path.join(tempDir('node-a'), 'checkpoints', 'train');
    mkdirSync(dir, { recursive: true });
    const s = new CheckpointSync({
      store,
      stepId: 'pipe-3/train',
      dir,
      nodeId: 'a',
      attempt: 1,
      leaseId: 'default-1',
      intervalMs: 200,
      log: () => undefined,
      openForWriting: () => undefined,
    });
    await s.restore();
    s.start();
    let n = 0;
    const growing = setInterval(() => writeFileSync(path.join(dir, 'growing.bin'), Buffer.alloc(++n * 10, 1)), 50);
    await new Promise((r) => setTimeout(r, 900));
    expect(await manifest(store, 'pipe-3/train')).toBeUndefined();
    clearInterval(growing);
    writeFileSync(path.join(dir, 'done.tmp'), 'x');
    renameSync(path.join(dir, 'done.tmp'), path.join(dir, 'done'));
    const saved = await eventually(async () => {
      const files = (await manifest(store, 'pipe-3/train'))?.files.map((f) => f.path);
      return files?.length === 2 ? files : undefined;
    });
    expect(saved).toEqual(['done', 'growing.bin']);
    await s.finish();
  });
});
